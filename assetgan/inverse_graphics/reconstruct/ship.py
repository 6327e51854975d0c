"""run(ReconstructExportConfig) -> ReconstructExportResult: a trained reconstruction network as a
file to ship (`assetgan reconstruct export-model`, docs/reconstruct.md "Shipped weights").

Reads a run directory's model.safetensors (or any reconstruct_net checkpoint), writes it again
at `out`, by default with float16 weights (half the size; loaded back as float32), with the
provenance `info` of the run plus where it came from, and measures what float16 changed: the
largest vertex difference (metres) and the share of equal part labels at UV texels over a fixed
batch of inputs (test images when `images` is given, else seeded noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from assetgan.core.errors import AssetganError
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.reconstruct.model import load_reconstructor, save_reconstructor


@dataclass(frozen=True)
class ReconstructExportConfig:
    """One `reconstruct export-model` run."""

    source: Path  # a `reconstruct train` run directory or a model .safetensors
    out: Path  # the .safetensors to write (its .json beside it)
    fp16: bool = True  # store float16 weights
    images: Path | None = None  # a CarWorld split whose first images check the conversion
    check_images: int = 32  # images (or noise inputs) the conversion is checked on

    def model_path(self) -> Path:
        path = self.source / "model.safetensors" if self.source.is_dir() else self.source
        if not path.is_file():
            raise AssetganError(f"{path}: no reconstruction network (model.safetensors) here")
        return path


@dataclass(frozen=True)
class ReconstructExportResult:
    """What `reconstruct export-model` wrote and measured."""

    out: Path  # the written checkpoint
    source: Path  # the checkpoint read
    bytes: int  # size of `out`
    max_vertex_difference_m: float  # largest |vertex(out) - vertex(source)| over the check batch
    part_agreement: float  # share of UV texels whose part argmax is unchanged

    def summary(self) -> str:
        return (
            f"wrote {self.out} ({self.bytes / 1e6:.1f} MB) from {self.source}; vs the source: "
            f"largest vertex difference {self.max_vertex_difference_m:.2e} m, part labels "
            f"{100 * self.part_agreement:.2f} % equal"
        )


def _check_inputs(config: ReconstructExportConfig, size: int) -> torch.Tensor:
    if config.images is not None:
        from assetgan.inverse_graphics.reconstruct.data import load_carworld

        data = load_carworld(config.images, config.check_images)
        return data.batch(np.arange(len(data)), np.zeros(len(data), bool)).images
    generator = torch.Generator().manual_seed(0)
    return torch.rand(config.check_images, 3, size, size, generator=generator)


@torch.no_grad()
def run(
    config: ReconstructExportConfig, progress: Progress | None = None
) -> ReconstructExportResult:
    """Write the shipped checkpoint and measure the conversion (module docstring)."""
    source = config.model_path()
    if config.out.suffix != ".safetensors":
        raise AssetganError(f"{config.out}: the output must end in .safetensors")
    model, info = load_reconstructor(source)
    info = {**info, "exported_from": str(source), "fp16": config.fp16}
    save_reconstructor(config.out, model, info, fp16=config.fp16)
    emit(progress, 1, 2, task="export")
    shipped, _ = load_reconstructor(config.out)
    inputs = _check_inputs(config, model.config.image_size)
    before, after = model(inputs), shipped(inputs)
    difference = float((before.vertices - after.vertices).abs().max())
    agreement = float(
        (before.part_logits.argmax(-1) == after.part_logits.argmax(-1)).float().mean()
    )
    emit(progress, 2, 2, task="export")
    return ReconstructExportResult(
        out=config.out,
        source=source,
        bytes=config.out.stat().st_size,
        max_vertex_difference_m=difference,
        part_agreement=agreement,
    )
