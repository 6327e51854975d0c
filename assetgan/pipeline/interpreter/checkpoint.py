"""Interpreter checkpoints: safetensors (stacked ensemble weights + config header) and JSON beside.

`I.safetensors`: tensors `parts.<name>` and `keypoints.<name>` (PixelEnsemble.state_dict(), every
tensor [N, ...] float32); header metadata `assetgan_kind = "style_interpreter"`,
`schema_version`, `config` (InterpreterConfig JSON) and `summary` (training record JSON).
`I.json` repeats config and summary for people and tools (docs/formats.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from assetgan.errors import AssetganError
from assetgan.io_utils import atomic_write_json
from assetgan.pipeline.interpreter.config import INTERPRETER_KIND, SCHEMA_VERSION, InterpreterConfig
from assetgan.pipeline.interpreter.model import PixelEnsemble
from assetgan.pipeline.interpreter.train import Interpreter
from assetgan.pipeline.stylegan.checkpoint import load_state_into, load_tensors, save_tensors


def save_interpreter(interpreter: Interpreter, path: str | Path) -> Path:
    """Write `interpreter` to `path` (.safetensors) and `path` with suffix .json."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise AssetganError(f"{path}: interpreter checkpoints must end in .safetensors")
    tensors = {}
    for prefix, ens in (("parts", interpreter.parts), ("keypoints", interpreter.keypoints)):
        if ens is not None:
            tensors.update({f"{prefix}.{k}": v for k, v in ens.state_dict().items()})
    config = interpreter.config.to_dict()
    metadata = {
        "assetgan_kind": INTERPRETER_KIND,
        "schema_version": str(SCHEMA_VERSION),
        "config": json.dumps(config, sort_keys=True),
        "summary": json.dumps(interpreter.summary, sort_keys=True),
    }
    save_tensors(path, tensors, metadata)
    atomic_write_json(path.with_suffix(".json"), {"config": config, "summary": interpreter.summary})
    return path


def load_interpreter(path: str | Path, device: str | torch.device = "cpu") -> Interpreter:
    """Rebuild the interpreter saved by `save_interpreter` (eval mode, on `device`)."""
    path = Path(path)
    tensors, metadata = load_tensors(path)
    if metadata.get("assetgan_kind") != INTERPRETER_KIND or "config" not in metadata:
        raise AssetganError(
            f"{path}: not an interpreter checkpoint (header lacks assetgan_kind={INTERPRETER_KIND!r}); "
            "make one with `assetgan interpreter train`"
        )
    try:
        config = InterpreterConfig.from_dict(json.loads(metadata["config"]), str(path))
        summary = json.loads(metadata.get("summary", "{}"))
    except json.JSONDecodeError as error:
        raise AssetganError(f"{path}: header is not valid JSON ({error})") from None
    channels = config.geometry.channels
    parts = PixelEnsemble(config.members, channels, config.num_classes, config.parts_hidden)
    load_state_into(parts, _prefixed(tensors, "parts."), f"{path} (parts)")
    keypoints = None
    if config.keypoint_hidden is not None:
        keypoints = PixelEnsemble(
            config.members, channels, len(config.keypoint_names), config.keypoint_hidden
        )
        load_state_into(keypoints, _prefixed(tensors, "keypoints."), f"{path} (keypoints)")
    return Interpreter(config, parts, keypoints, summary).eval().to(device)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
