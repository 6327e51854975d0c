"""Read foreign StyleGAN pickles without executing any code from the file.

NVIDIA's pickles carry Python source (TensorFlow `build_module_src`, stylegan2-ada's
`module_src`) that their own loaders `exec()`. `RestrictedUnpickler.find_class` resolves only
an allow-list of globals (table in docs/stylegan_import.md); everything else raises
AssetganError "FILE: refusing to load global MODULE.NAME (the file tries to run code)". The
classes that would run code are replaced by inert stubs that keep the pickled state:

- `dnnlib.tflib.network.Network` -> `TFNetworkStub` (the `__getstate__` dict: version, name,
  static_kwargs, components, build_module_src, build_func_name, variables=[(name, ndarray)]).
- `torch_utils.persistence._reconstruct_persistent_obj(meta)` -> `PersistentObject` (class_name,
  module_src kept as text, the module state: _parameters, _buffers, _modules, _init_kwargs).
- `dnnlib.util.EasyDict` -> `EasyDictStub` (a plain dict subclass).

Tensors: a plain pickle (stylegan2-ada) holds torch tensors pickled through their own
`__reduce_ex__`: `torch._utils._rebuild_tensor_v2(storage, ...)`, whose storage is
`torch.storage._load_from_bytes(bytes)`; we hand those bytes to `torch.load(weights_only=True)`.
A torch zip archive (`torch.save`) is read with the same allow-list plus a `persistent_load`
that builds storages from the archive's raw data records.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assetgan.core.errors import AssetganError

# --- stubs for the globals that would run code -------------------------------------------------


class TFNetworkStub:
    """`dnnlib.tflib.network.Network` as data: the pickled state, build_module_src never run."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"Network state must be a dict, got {type(state).__name__}")
        self.state = state

    @property
    def version(self) -> int:
        return int(self.state.get("version", 0))

    @property
    def name(self) -> str:
        return str(self.state.get("name", ""))

    @property
    def static_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("static_kwargs") or {})

    @property
    def components(self) -> dict[str, Any]:
        return dict(self.state.get("components") or {})

    @property
    def build_func_name(self) -> str:
        return str(self.state.get("build_func_name", ""))

    @property
    def variables(self) -> list[tuple[str, Any]]:
        return list(self.state.get("variables") or [])

    def __repr__(self) -> str:
        return f"TFNetworkStub(name={self.name!r}, version={self.version})"


class PersistentObject:
    """What `torch_utils.persistence._reconstruct_persistent_obj(meta)` describes, without exec.

    `state` is the pickled `nn.Module.__dict__`: `_parameters` and `_buffers` (name -> tensor),
    `_modules` (name -> PersistentObject), `_init_kwargs` and plain attributes.
    """

    def __init__(self, class_name: str, module_src: str, state: dict[str, Any]) -> None:
        self.class_name = class_name
        self.module_src = module_src  # kept as text, never executed
        self.state = state

    @property
    def init_kwargs(self) -> dict[str, Any]:
        return dict(self.state.get("_init_kwargs") or {})

    def named_tensors(self, prefix: str = "") -> dict[str, Any]:
        """Every parameter and persistent buffer of the tree, by dotted name (state_dict order)."""
        tensors: dict[str, Any] = {}
        for path, node in self._walk(prefix):
            skip = set(node.state.get("_non_persistent_buffers_set") or ())
            for group in ("_parameters", "_buffers"):
                for name, value in (node.state.get(group) or {}).items():
                    if value is not None and name not in skip:
                        tensors[path + str(name)] = value
        return tensors

    def class_names(self) -> set[str]:
        """Class names of this object and all its sub-modules."""
        return {node.class_name for _path, node in self._walk("")}

    def _walk(self, prefix: str) -> list[tuple[str, PersistentObject]]:
        """(dotted prefix, node) for this object and its sub-modules, depth first, cycle-safe."""
        order: list[tuple[str, PersistentObject]] = []
        seen: set[int] = set()
        stack: list[tuple[str, PersistentObject]] = [(prefix, self)]
        while stack:
            path, node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            order.append((path, node))
            children = [
                (f"{path}{name}.", child)
                for name, child in (node.state.get("_modules") or {}).items()
                if isinstance(child, PersistentObject)
            ]
            stack.extend(reversed(children))
        return order

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name!r})"


class EasyDictStub(dict):
    """`dnnlib.util.EasyDict` (a dict with attribute access) read as a plain dict."""


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise TypeError("persistent object meta must be a dict with a 'state' dict")
    return PersistentObject(
        class_name=str(meta.get("class_name", "")),
        module_src=str(meta.get("module_src", "")),
        state=meta["state"],
    )


# --- safe stand-ins for the data-building globals ----------------------------------------------


def _numpy_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise TypeError("numpy _reconstruct: only plain ndarrays are accepted")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _numpy_frombuffer(payload: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    # numpy's protocol-5 array pickles: _frombuffer(buffer, dtype, shape, order).
    dtype = np.dtype(dtype)
    if dtype.hasobject or order not in ("C", "F"):
        raise TypeError("numpy _frombuffer: only numeric C/F arrays are accepted")
    flat = np.frombuffer(bytes(payload), dtype=dtype)
    return flat.reshape(tuple(shape), order=order).copy(order=order)


def _numpy_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise TypeError("numpy arrays of Python objects are not accepted")
    return dtype


def _numpy_scalar(dtype: Any, payload: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(payload, bytes):
        raise TypeError("numpy scalar: only numeric scalars are accepted")
    return np.frombuffer(payload, dtype=dtype, count=1)[0]


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TypeError("_codecs.encode: only (str, 'latin1') is accepted")
    return text.encode("latin1")


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    # copyreg._reconstructor (pickle protocols 0 and 1), limited to our stubs.
    if cls not in (TFNetworkStub, EasyDictStub) or base not in (object, dict):
        raise TypeError("copyreg._reconstructor: only the stub classes are accepted")
    return cls.__new__(cls)


def _load_from_bytes(payload: Any) -> Any:
    # torch.storage._load_from_bytes: a legacy torch.save of one storage.
    if not isinstance(payload, bytes | bytearray):
        raise TypeError("_load_from_bytes expects bytes")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: int,
    size: Any,
    stride: Any,
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise TypeError(f"tensor storage must be a torch storage, got {type(storage).__name__}")
    return torch._utils._rebuild_tensor_v2(
        storage, int(storage_offset), tuple(size), tuple(stride), False, collections.OrderedDict()
    )


def _rebuild_parameter(data: Any, requires_grad: bool = False, *_hooks_and_state: Any) -> Any:
    if not isinstance(data, torch.Tensor):
        raise TypeError("parameter data must be a tensor")
    return data  # a plain tensor: hooks and requires_grad are not needed for weights


def _set(items: Any = ()) -> set:
    return set(items)


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(items)


def _ordered_dict(items: Any = ()) -> collections.OrderedDict:
    return collections.OrderedDict(items)


def _torch_device(spec: Any, index: Any = None) -> torch.device:
    return torch.device(str(spec)) if index is None else torch.device(str(spec), int(index))


class _StorageType:
    """The `torch.FloatStorage`-style class names a torch zip archive uses in its storage ids."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

ALLOWED_GLOBALS: dict[str, Any] = {
    "dnnlib.tflib.network.Network": TFNetworkStub,
    "torch_utils.persistence._reconstruct_persistent_obj": _reconstruct_persistent_obj,
    "dnnlib.util.EasyDict": EasyDictStub,
    "dnnlib.EasyDict": EasyDictStub,
    "numpy.core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy._core.multiarray._reconstruct": _numpy_reconstruct,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.core.numeric._frombuffer": _numpy_frombuffer,
    "numpy._core.numeric._frombuffer": _numpy_frombuffer,
    "numpy.ndarray": np.ndarray,
    "numpy.dtype": _numpy_dtype,
    "_codecs.encode": _codecs_encode,
    "copyreg._reconstructor": _reconstructor,
    "builtins.object": object,
    "builtins.set": _set,
    "builtins.frozenset": _frozenset,
    "collections.OrderedDict": _ordered_dict,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.storage._load_from_bytes": _load_from_bytes,
    "torch.device": _torch_device,
}
ALLOWED_GLOBALS.update(
    {f"torch.{name}": _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()}
)


def refusal(where: str, qualified_name: str) -> AssetganError:
    """The one message for a global we will not load."""
    return AssetganError(
        f"{where}: refusing to load global {qualified_name} (the file tries to run code)"
    )


class RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler whose `find_class` only resolves ALLOWED_GLOBALS (and torch dtypes)."""

    def __init__(
        self,
        file: Any,  # binary file object positioned at a pickle
        where: str,  # file name used in error messages
        load_storage: Callable[[tuple], Any] | None = None,  # persistent id -> storage (zip)
    ) -> None:
        super().__init__(file)
        self.where = where
        self.load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocols < 3), mapped as pickle's own find_class maps them.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        qualified = f"{module}.{name}"
        if qualified in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[qualified]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise refusal(self.where, qualified)

    def persistent_load(self, pid: Any) -> Any:
        if self.load_storage is None:
            raise pickle.UnpicklingError("persistent ids are only valid inside a torch archive")
        return self.load_storage(pid)


def _wrap_errors(where: str, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except AssetganError:
        raise
    except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise AssetganError(
            f"{where}: truncated or corrupt pickle ({type(error).__name__}: {error}); "
            "download the file again"
        ) from None
    except (
        TypeError,
        ValueError,
        AttributeError,
        KeyError,
        IndexError,
        RuntimeError,
        OverflowError,
        RecursionError,
    ) as error:
        raise AssetganError(
            f"{where}: unexpected pickle contents ({type(error).__name__}: {error})"
        ) from None


def load_pickle(path: str | Path) -> Any:
    """Unpickle `path` through RestrictedUnpickler. Returns the first pickled object."""
    path = Path(path)
    with path.open("rb") as handle:
        return _wrap_errors(str(path), lambda: RestrictedUnpickler(handle, str(path)).load())


def load_torch_archive(path: str | Path) -> Any:
    """Unpickle a torch zip archive (`torch.save`) through RestrictedUnpickler.

    For archives holding stubbed globals (e.g. a stylegan2-ada network re-saved with
    torch.save); plain weight archives go through `torch.load(weights_only=True)` instead.
    """
    path = Path(path)
    where = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise AssetganError(f"{where}: truncated or corrupt zip archive ({error})") from None
    with archive:
        records = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(records) != 1:
            raise AssetganError(f"{where}: not a torch archive (no single data.pkl record)")
        prefix = records[0][: -len("data.pkl")]

        def load_storage(pid: tuple) -> Any:
            if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
                raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
            storage_type, key = pid[1], str(pid[2])
            if not isinstance(storage_type, _StorageType):
                raise pickle.UnpicklingError("storage id without a storage type")
            payload = bytearray(archive.read(f"{prefix}data/{key}"))
            untyped = torch.frombuffer(payload, dtype=torch.uint8).untyped_storage()
            return torch.storage.TypedStorage(
                wrap_storage=untyped, dtype=storage_type.dtype, _internal=True
            )

        def run() -> Any:
            with archive.open(records[0]) as handle:
                return RestrictedUnpickler(handle, where, load_storage).load()

        return _wrap_errors(where, run)
