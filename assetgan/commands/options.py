"""Typer option aliases shared by every command (one place, so the flags read the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.core.device import Device, resolve_device

__all__ = ["Device", "DeviceChoice", "resolve_device"]


DeviceChoice = Device  # the library enum, shared (core/device.py)

OutPath = Annotated[Path, typer.Option("--out", "-o", help="Output file or directory.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (results are deterministic).")]
DeviceOpt = Annotated[
    DeviceChoice, typer.Option("--device", help="auto = CUDA when present, else CPU.")
]
GeneratorOpt = Annotated[
    Path, typer.Option("--generator", "-g", help="Generator checkpoint (.safetensors).")
]
PsiOpt = Annotated[float, typer.Option("--psi", help="Truncation psi (1 = none).")]
CutoffOpt = Annotated[
    int | None, typer.Option("--cutoff", help="Truncate only the first CUTOFF ws (default all).")
]
