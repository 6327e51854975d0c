"""Generator checkpoints (core.checkpoint layout, kind `stylegan2_generator`).

- `G.safetensors`: every parameter and buffer of `Generator.state_dict()` under ada's names,
  float32 or float16; header `config` is the GeneratorConfig JSON, `info` the provenance.
- `G.json`: the same config and info, for people and tools (docs/stylegan.md, "Checkpoint format").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from assetgan.core.checkpoint import (
    load_model,
    load_state_into,
    read_header,
    register_kind,
    save_model,
)
from assetgan.pipeline.stylegan.config import SCHEMA_VERSION, GeneratorConfig
from assetgan.pipeline.stylegan.networks import Generator

GENERATOR = register_kind(
    "stylegan2_generator",
    SCHEMA_VERSION,
    "assetgan generator checkpoint",
    "`assetgan gan train`; foreign checkpoints go through `assetgan gan import`",
)


def save_generator(
    generator: Generator,
    path: str | Path,
    fp16: bool = False,  # store weights as float16 (half the size; loaded back as float32)
    info: dict[str, Any] | None = None,  # provenance (command, kimg, ...), JSON-serialisable
) -> Path:
    """Write `generator` to `path` (.safetensors) and its config to `path` with suffix .json."""
    return save_model(
        path, generator.state_dict(), GENERATOR, generator.config.to_dict(), fp16=fp16, info=info
    )


def read_generator_header(path: str | Path) -> tuple[GeneratorConfig, dict[str, Any]]:
    """(config, info) from a generator checkpoint's header, without loading the weights."""
    header = read_header(path, GENERATOR)
    return GeneratorConfig.from_dict(header.config), header.info


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """Rebuild the exact generator saved by `save_generator` (float32, eval mode)."""
    loaded = load_model(path, GENERATOR)
    generator = Generator(GeneratorConfig.from_dict(loaded.config))
    load_state_into(generator, loaded.tensors, str(loaded.path))
    return generator.eval().requires_grad_(False).to(device)
