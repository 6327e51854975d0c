"""Interpreter checkpoints (core.checkpoint layout, kind `style_interpreter`).

`I.safetensors`: tensors `parts.<name>` and `keypoints.<name>` (PixelEnsemble.state_dict(), every
tensor [N, ...] float32); header `config` is the InterpreterConfig JSON and `info` the training
record (`Interpreter.summary`). `I.json` repeats them for people and tools (docs/formats.md).
"""

from __future__ import annotations

from pathlib import Path

import torch

from assetgan.core.checkpoint import load_model, load_state_into, register_kind, save_model
from assetgan.pipeline.interpreter.config import INTERPRETER_KIND, SCHEMA_VERSION, InterpreterConfig
from assetgan.pipeline.interpreter.model import Interpreter, PixelEnsemble

INTERPRETER = register_kind(
    INTERPRETER_KIND, SCHEMA_VERSION, "interpreter checkpoint", "`assetgan interpreter train`"
)


def save_interpreter(interpreter: Interpreter, path: str | Path) -> Path:
    """Write `interpreter` to `path` (.safetensors) and `path` with suffix .json."""
    tensors = {}
    for prefix, ens in (("parts", interpreter.parts), ("keypoints", interpreter.keypoints)):
        if ens is not None:
            tensors.update({f"{prefix}.{k}": v for k, v in ens.state_dict().items()})
    config = interpreter.config.to_dict()
    return save_model(path, tensors, INTERPRETER, config, info=interpreter.summary)


def load_interpreter(path: str | Path, device: str | torch.device = "cpu") -> Interpreter:
    """Rebuild the interpreter saved by `save_interpreter` (eval mode, on `device`)."""
    loaded = load_model(path, INTERPRETER)
    config = InterpreterConfig.from_dict(loaded.config, str(loaded.path))
    channels = config.geometry.channels
    parts = PixelEnsemble(config.members, channels, config.num_classes, config.parts_hidden)
    load_state_into(parts, _prefixed(loaded.tensors, "parts."), f"{loaded.path} (parts)")
    keypoints = None
    if config.keypoint_hidden is not None:
        keypoints = PixelEnsemble(
            config.members, channels, len(config.keypoint_names), config.keypoint_hidden
        )
        load_state_into(
            keypoints, _prefixed(loaded.tensors, "keypoints."), f"{loaded.path} (keypoints)"
        )
    return Interpreter(config, parts, keypoints, loaded.info).eval().to(device)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
