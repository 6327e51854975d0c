"""`gan sample`: a contact sheet of generated images, or a style-mixing sheet, from a generator.

The primitives (seeds -> z -> w, truncation, mixing, PNG sheets) live in sampling.py; this module
is the verb: `run(GanSampleConfig) -> GanSampleResult` loads the generator and writes one PNG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.run_dir import resolve_generator_file
from assetgan.pipeline.stylegan.sampling import mixing_grid, sample_grid


@dataclass(frozen=True)
class GanSampleConfig:
    """Which generator, which seeds, what kind of sheet, where."""

    generator: Path  # generator .safetensors, a checkpoint directory or a run directory (G_ema)
    out: Path  # the PNG written
    seeds: tuple[int, ...]  # one image per seed; with mix_seeds: the rows (content)
    psi: float = 1.0  # truncation psi (1 = none)
    cutoff: int | None = None  # truncate only the first `cutoff` ws (None = all)
    columns: int | None = None  # grid columns of a plain sheet (None = about square)
    mix_seeds: tuple[int, ...] | None = None  # columns of a style-mixing sheet; None = plain sheet
    mix_layers: tuple[int, ...] = (0, 1, 2, 3)  # ws the columns give (0-3 = coarse = viewpoint)
    device: Device = Device.auto  # where the generator runs


@dataclass(frozen=True)
class GanSampleResult:
    """What `run` wrote."""

    out: Path  # the PNG sheet
    generator: Path  # the generator file the images came from
    seeds: int  # images of a plain sheet; rows of a mixing sheet
    mix_seeds: int  # columns of a mixing sheet; 0 for a plain sheet


def run(config: GanSampleConfig, progress: Progress | None = None) -> GanSampleResult:
    """Write a plain sheet (one image per seed, row-major) or a mixing sheet (top row = column
    sources, left column = row sources, cell = row's ws with the column's `mix_layers`)."""
    if not config.seeds:
        raise AssetganError("gan sample needs at least one seed (--seeds)")
    if config.mix_seeds is not None and not config.mix_seeds:
        raise AssetganError("a mixing sheet needs at least one column seed (--mix-seeds)")
    source = resolve_generator_file(config.generator)
    generator = load_generator(source, device=resolve_device(config.device))
    seeds = list(config.seeds)
    if config.mix_seeds is None:
        path = sample_grid(
            generator, seeds, config.out, config.psi, config.cutoff, columns=config.columns
        )
    else:
        path = mixing_grid(
            generator,
            seeds,
            list(config.mix_seeds),
            list(config.mix_layers),
            config.out,
            psi=config.psi,
            cutoff=config.cutoff,
        )
    emit(progress, 1, 1, task="sheet")
    mix_count = len(config.mix_seeds or ())
    return GanSampleResult(out=path, generator=source, seeds=len(seeds), mix_seeds=mix_count)
