"""Segmenter checkpoints: safetensors (weights + config JSON in the header) and a JSON copy beside.

- `<name>.safetensors`: `Segmenter.state_dict()` in float32 or float16; header metadata
  `assetgan_kind = "downstream_segmenter"`, `schema_version`, `config` (SegmenterConfig JSON),
  `info` (JSON: how it was trained, metrics). The file alone is enough to load the model.
- `<name>.json`: the same config and info for people and tools.
Written atomically (temp file, then rename) by core.checkpoint.save_model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from assetgan.core.checkpoint import load_model, load_state_into, register_kind, save_model
from assetgan.core.errors import AssetganError
from assetgan.pipeline.downstream.config import SegmenterConfig
from assetgan.pipeline.downstream.model import Segmenter

SEGMENTER_KIND = "downstream_segmenter"
SCHEMA_VERSION = 1
SEGMENTER = register_kind(
    SEGMENTER_KIND, SCHEMA_VERSION, "segmenter checkpoint", "`assetgan segment train`"
)


def save_segmenter(
    model: Segmenter,
    path: str | Path,
    fp16: bool = False,  # store float weights as float16 (loaded back as float32)
    info: dict[str, Any] | None = None,  # provenance and metrics, JSON-serialisable
) -> Path:
    return save_model(
        path,
        model.state_dict(),
        SEGMENTER,
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
    loaded = load_model(resolve_checkpoint(path), SEGMENTER)
    try:
        config = SegmenterConfig.from_dict(loaded.config)
    except TypeError as error:
        raise AssetganError(f"{loaded.path}: header config is not valid ({error})") from None
    model = Segmenter(config)
    load_state_into(model, loaded.tensors, str(loaded.path))
    return model.float().eval().requires_grad_(False).to(device), loaded.info
