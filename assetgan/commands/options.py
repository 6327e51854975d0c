"""Typer option aliases shared by every command (one place, so the flags read the same)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class DeviceChoice(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


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


def resolve_device(choice: DeviceChoice | str) -> str:
    """Map a --device choice to a torch device string."""
    import torch

    value = choice.value if isinstance(choice, DeviceChoice) else str(choice)
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cuda" and not torch.cuda.is_available():
        from assetgan.core.errors import AssetganError

        raise AssetganError("--device cuda was asked for but no CUDA device is available")
    return value
