"""Model checkpoints: one writer and one reader for every kind of model the project ships.

File layout (docs/formats.md, "Checkpoints"):
- `NAME.safetensors`: the module's state_dict (float32, or float16 with `fp16=True`); header
  metadata `assetgan_kind`, `schema_version`, `config` (the model's config as JSON) and `info`
  (JSON: provenance, training record, metrics). The file alone is enough to rebuild the model.
- `NAME.json`: kind, config, info and fp16 again, for people and tools.

Each stage registers its kinds (`register_kind`) with the schema version it writes and the command
that makes one; `load_model` refuses a file of another kind or schema version with a one-line
error that says so. Stages rebuild their module from `LoadedModel.config` and copy the tensors
in with `load_state_into`. Nothing here unpickles: safetensors holds tensors and strings only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open
from safetensors.torch import save as safetensors_bytes

from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_bytes, atomic_write_json


@dataclass(frozen=True)
class ModelKind:
    """A registered checkpoint kind."""

    name: str  # header `assetgan_kind`, e.g. "stylegan2_generator"
    schema_version: int  # the version this code writes and reads
    what: str  # a human name for messages, e.g. "generator checkpoint"
    made_by: str  # how to make one, for messages, e.g. "`assetgan gan train`"


_KINDS: dict[str, ModelKind] = {}


def register_kind(name: str, schema_version: int, what: str, made_by: str) -> ModelKind:
    """Register (idempotently) a checkpoint kind; a second, different registration is an error."""
    kind = ModelKind(name, schema_version, what, made_by)
    if _KINDS.setdefault(name, kind) != kind:
        raise ValueError(f"checkpoint kind {name!r} registered twice with different settings")
    return kind


def registered_kinds() -> dict[str, ModelKind]:
    """A copy of the registry: kind name -> ModelKind."""
    return dict(_KINDS)


@dataclass(frozen=True)
class LoadedModel:
    """What `load_model` read: everything but the module itself."""

    path: Path  # the file read
    kind: ModelKind  # its registered kind
    tensors: dict[str, torch.Tensor]  # name -> tensor, on CPU, dtype as stored
    config: dict[str, Any]  # the model's config JSON
    info: dict[str, Any]  # provenance JSON ({} when none)


def save_tensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Write a flat name -> tensor dict as safetensors, atomically (CPU, contiguous copies);
    the same tensors and metadata always give the same bytes (`canonical_header`)."""
    flat = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    blob = canonical_header(safetensors_bytes(flat, metadata=metadata))
    return atomic_write_bytes(path, blob)


def canonical_header(blob: bytes) -> bytes:
    """safetensors bytes with the header's metadata in sorted key order. The library writes the
    metadata from a hash map, in an order that changes from process to process, so two saves of
    the same model differed in bytes (and in sha256, which the stages compare)."""
    length = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + length])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads the header to 8 bytes with spaces
    return len(text).to_bytes(8, "little") + text + blob[8 + length :]


def read_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors header metadata; AssetganError if the file is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise AssetganError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise AssetganError(f"{path}: not a readable safetensors file ({error})") from None


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file -> (tensors on CPU, header metadata); AssetganError if unreadable."""
    path = Path(path)
    metadata = read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise AssetganError(f"{path}: not a readable safetensors file ({error})") from None
    return tensors, metadata


def save_model(
    path: str | Path,
    state: dict[str, torch.Tensor],  # the module's state_dict()
    kind: ModelKind,  # a registered kind (header `assetgan_kind` and `schema_version`)
    config: dict[str, Any],  # the module's config, JSON-serialisable
    fp16: bool = False,  # store float tensors as float16 (loaded back as float32)
    info: dict[str, Any] | None = None,  # provenance, JSON-serialisable
) -> Path:
    """The project's model checkpoint: `path` (.safetensors, kind/schema/config/info in the
    header, so the file alone loads) and `path` with suffix .json (the same, for people)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise AssetganError(f"{path}: {kind.what}s must end in .safetensors")
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    metadata = {
        "assetgan_kind": kind.name,
        "schema_version": str(kind.schema_version),
        "config": json.dumps(config, sort_keys=True),
        "info": json.dumps(info or {}, sort_keys=True),
    }
    save_tensors(path, state, metadata)
    sidecar = {"kind": kind.name, "config": config, "info": info or {}, "fp16": fp16}
    atomic_write_json(path.with_suffix(".json"), sidecar)
    return path


def parse_header(path: str | Path, metadata: dict[str, str], kind: ModelKind) -> LoadedModel:
    """Check a header against `kind` (kind name, schema version, JSON) -> LoadedModel without
    tensors. Headers written before `info` was unified call it `summary`; both are read."""
    path = Path(path)
    found = metadata.get("assetgan_kind")
    if found != kind.name or "config" not in metadata:
        raise AssetganError(
            f"{path}: not {_article(kind.what)} {kind.what} (header assetgan_kind is {found!r}, "
            f"expected {kind.name!r}); make one with {kind.made_by}"
        )
    version = metadata.get("schema_version")
    if version != str(kind.schema_version):
        raise AssetganError(
            f"{path}: {kind.what} schema_version {version} is not {kind.schema_version}, the "
            f"version this assetgan reads; re-make it with {kind.made_by}"
        )
    try:
        config = json.loads(metadata["config"])
        info = json.loads(metadata.get("info", metadata.get("summary", "{}")))
    except json.JSONDecodeError as error:
        raise AssetganError(f"{path}: header is not valid JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(info, dict):
        raise AssetganError(f"{path}: header config and info must be JSON objects")
    return LoadedModel(path, kind, {}, config, info)


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def read_header(path: str | Path, kind: ModelKind) -> LoadedModel:
    """Config and info of a checkpoint of `kind`, without loading the weights."""
    return parse_header(path, read_metadata(path), kind)


def load_model(path: str | Path, kind: ModelKind) -> LoadedModel:
    """Tensors, config and info of a checkpoint of `kind`; AssetganError on any mismatch."""
    tensors, metadata = load_tensors(path)
    header = parse_header(path, metadata, kind)
    return LoadedModel(header.path, kind, tensors, header.config, header.info)


def load_state_into(module: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy `state` into `module` (cast to each target's dtype); AssetganError naming mismatches."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise AssetganError(
            f"{where}: tensors do not match the model: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}"
        )
    for name, target in own.items():
        if tuple(state[name].shape) != tuple(target.shape):
            raise AssetganError(
                f"{where}: {name} has shape {list(state[name].shape)}, "
                f"the config expects {list(target.shape)}"
            )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
