"""Segmenter checkpoints: safetensors (weights + config JSON in the header) and a JSON copy beside.

- `<name>.safetensors`: `Segmenter.state_dict()` in float32 or float16; header metadata
  `assetgan_kind = "downstream_segmenter"`, `schema_version`, `config` (SegmenterConfig JSON),
  `info` (JSON: how it was trained, metrics). The file alone is enough to load the model.
- `<name>.json`: the same config and info for people and tools.
Written atomically (temp file, then rename) by stylegan.checkpoint.save_model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from assetgan.errors import AssetganError
from assetgan.pipeline.downstream.model import Segmenter, SegmenterConfig
from assetgan.pipeline.stylegan.checkpoint import load_state_into, load_tensors, save_model

SEGMENTER_KIND = "downstream_segmenter"
SCHEMA_VERSION = 1


def save_segmenter(
    model: Segmenter,
    path: str | Path,
    fp16: bool = False,  # store float weights as float16 (loaded back as float32)
    info: dict[str, Any] | None = None,  # provenance and metrics, JSON-serialisable
) -> Path:
    return save_model(
        path,
        model.state_dict(),
        SEGMENTER_KIND,
        SCHEMA_VERSION,
        model.config.to_dict(),
        fp16=fp16,
        info=info,
    )


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a training directory holding segmenter.safetensors."""
    path = Path(path)
    if path.is_dir():
        path = path / "segmenter.safetensors"
    if not path.is_file():
        raise AssetganError(f"{path}: no such segmenter checkpoint; train one with `segment train`")
    return path


def load_segmenter(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[Segmenter, dict[str, Any]]:
    """(model in eval mode, float32, on `device`; info) from a checkpoint file or training dir."""
    path = resolve_checkpoint(path)
    tensors, metadata = load_tensors(path)
    if metadata.get("assetgan_kind") != SEGMENTER_KIND or "config" not in metadata:
        raise AssetganError(
            f"{path}: not a segmenter checkpoint (header kind {metadata.get('assetgan_kind')!r}, "
            f"expected {SEGMENTER_KIND!r}); train one with `assetgan segment train`"
        )
    if metadata.get("schema_version") != str(SCHEMA_VERSION):
        raise AssetganError(
            f"{path}: schema_version {metadata.get('schema_version')} is not {SCHEMA_VERSION}"
        )
    try:
        config = SegmenterConfig.from_dict(json.loads(metadata["config"]))
        info = json.loads(metadata.get("info", "{}"))
    except (json.JSONDecodeError, TypeError) as error:
        raise AssetganError(f"{path}: header config is not valid ({error})") from None
    model = Segmenter(config)
    load_state_into(model, tensors, str(path))
    return model.float().eval().requires_grad_(False).to(device), info
