"""Where a stage runs: the `device` field of every stage config."""

from __future__ import annotations

from enum import StrEnum


class Device(StrEnum):
    """A stage's device choice; `auto` = CUDA when present, else CPU."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def resolve_device(choice: Device | str) -> str:
    """A torch device string for `choice`; AssetganError when CUDA is asked for but absent."""
    import torch

    from assetgan.core.errors import AssetganError

    value = Device(choice.value if isinstance(choice, Device) else str(choice)).value
    if value == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if value == "cuda" and not torch.cuda.is_available():
        raise AssetganError("--device cuda was asked for but no CUDA device is available")
    return value
