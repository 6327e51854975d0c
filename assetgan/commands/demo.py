"""`assetgan demo --out DIR [--quick]`: the whole chain on the shipped weights with an HTML
report (docs/demo.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, GeneratorOpt, OutPath, SeedOpt
from assetgan.demo.config import (
    QUICK_SIZES,
    SHIPPED_GENERATOR,
    SHIPPED_RECONSTRUCTOR,
    SHIPPED_SEGMENTER,
    DemoConfig,
    DemoSizes,
)


def demo(
    out: OutPath,
    quick: Annotated[
        bool, typer.Option(help="Tiny sizes (under a minute): a smoke test of every step.")
    ] = False,
    generator: GeneratorOpt = SHIPPED_GENERATOR,
    segmenter: Annotated[
        Path,
        typer.Option(help="Segmenter: draws the annotations, finds keypoints, real-data row."),
    ] = SHIPPED_SEGMENTER,
    reconstructor: Annotated[
        Path, typer.Option(help="Reconstruction network (reconstruct image --model).")
    ] = SHIPPED_RECONSTRUCTOR,
    seed: SeedOpt = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch CPU threads.")] = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Run every stage from the shipped weights: CarWorld test cars, generator samples, 16
    simulated annotations -> interpreter -> a labeled dataset, a segmenter trained on it and
    scored, a multi-view set, reconstructions and rigged GLBs with three.js viewers; writes
    OUT/index.html. Finished steps are reused on re-run.

    Example: assetgan demo --out runs/demo

    Example: assetgan demo --out runs/demo-quick --quick
    """
    import torch

    from assetgan.demo.chain import run

    torch.set_num_threads(threads)
    config = DemoConfig(
        out=out,
        generator=generator,
        segmenter=segmenter,
        reconstructor=reconstructor,
        sizes=QUICK_SIZES if quick else DemoSizes(),
        seed=seed,
        device=device,
    )
    with progress_bar("demo") as progress:
        result = run(config, progress)
    typer.echo(result.summary())
