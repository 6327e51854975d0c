"""Generator checkpoints: safetensors (weights + config in the header) and a JSON copy beside.

File layout (docs/stylegan.md, "Checkpoint format"):
- `G.safetensors`: every parameter and buffer of `Generator.state_dict()` under ada's names,
  float32 or float16; header metadata `assetgan_kind = "stylegan2_generator"`,
  `schema_version`, `config` (GeneratorConfig JSON) and optional `info` (JSON: provenance).
- `G.json`: the same config and info, for people and tools. The loader reads the header, so the
  safetensors file alone is enough.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from assetgan.errors import AssetganError
from assetgan.io_utils import atomic_write, atomic_write_json
from assetgan.pipeline.stylegan.config import SCHEMA_VERSION, GeneratorConfig
from assetgan.pipeline.stylegan.networks import Generator

GENERATOR_KIND = "stylegan2_generator"


def save_tensors(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> Path:
    """Write a flat name -> tensor dict as safetensors, atomically (CPU, contiguous copies)."""
    flat = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    return atomic_write(path, lambda tmp: save_file(flat, str(tmp), metadata=metadata))


def _read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header metadata; AssetganError if the file is missing or unreadable."""
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
    metadata = _read_metadata(path)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise AssetganError(f"{path}: not a readable safetensors file ({error})") from None
    return tensors, metadata


def save_model(
    path: str | Path,
    state: dict[str, torch.Tensor],  # the module's state_dict()
    kind: str,  # header `assetgan_kind`
    schema_version: int,
    config: dict[str, Any],  # the module's config, JSON-serialisable
    fp16: bool = False,  # store float tensors as float16 (loaded back as float32)
    info: dict[str, Any] | None = None,  # provenance, JSON-serialisable
) -> Path:
    """The project's model checkpoint: `path` (.safetensors, kind/schema/config/info in the
    header, so the file alone loads) and `path` with suffix .json (the same, for people)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise AssetganError(f"{path}: checkpoints must end in .safetensors")
    if fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    metadata = {
        "assetgan_kind": kind,
        "schema_version": str(schema_version),
        "config": json.dumps(config, sort_keys=True),
        "info": json.dumps(info or {}, sort_keys=True),
    }
    save_tensors(path, state, metadata)
    sidecar = {"kind": kind, "config": config, "info": info or {}, "fp16": fp16}
    atomic_write_json(path.with_suffix(".json"), sidecar)
    return path


def save_generator(
    generator: Generator,
    path: str | Path,
    fp16: bool = False,  # store weights as float16 (half the size; loaded back as float32)
    info: dict[str, Any] | None = None,  # provenance (command, kimg, ...), JSON-serialisable
) -> Path:
    """Write `generator` to `path` (.safetensors) and its config to `path` with suffix .json."""
    return save_model(
        path,
        generator.state_dict(),
        GENERATOR_KIND,
        SCHEMA_VERSION,
        generator.config.to_dict(),
        fp16=fp16,
        info=info,
    )


def read_generator_header(path: str | Path) -> tuple[GeneratorConfig, dict[str, Any]]:
    """(config, info) from a generator checkpoint's header, without loading the weights."""
    path = Path(path)
    return _parse_header(path, _read_metadata(path))


def _parse_header(path: Path, metadata: dict[str, str]) -> tuple[GeneratorConfig, dict[str, Any]]:
    if metadata.get("assetgan_kind") != GENERATOR_KIND or "config" not in metadata:
        raise AssetganError(
            f"{path}: not an assetgan generator checkpoint (header lacks assetgan_kind="
            f"{GENERATOR_KIND!r} and a config); foreign checkpoints go through `gan import`"
        )
    try:
        config = GeneratorConfig.from_dict(json.loads(metadata["config"]))
        info = json.loads(metadata.get("info", "{}"))
    except json.JSONDecodeError as error:
        raise AssetganError(f"{path}: header config is not valid JSON ({error})") from None
    return config, info


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


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """Rebuild the exact generator saved by `save_generator` (float32, eval mode)."""
    path = Path(path)
    tensors, metadata = load_tensors(path)
    config, _info = _parse_header(path, metadata)
    generator = Generator(config)
    load_state_into(generator, tensors, str(path))
    return generator.eval().requires_grad_(False).to(device)
