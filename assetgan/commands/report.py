"""`assetgan report ...`: reports built from many stages (docs/paper.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, GeneratorOpt, OutPath, SeedOpt
from assetgan.core.io_utils import read_json_object
from assetgan.pipeline.paper.config import (
    QUICK_SIZES,
    SHIPPED_GENERATOR,
    SHIPPED_SEGMENTER,
    PaperReportConfig,
    PaperSizes,
)

app = App(help="Reports that compare stages: the paper's tables on CarWorld.")

SplitOpt = Annotated[Path | None, typer.Option(help="CarWorld split; default: render it.")]


@app.command("paper")
def paper(
    out: OutPath,
    quick: Annotated[bool, typer.Option(help="Tiny sizes (a few minutes): a smoke test.")] = False,
    generator: GeneratorOpt = SHIPPED_GENERATOR,
    segmenter: Annotated[
        Path, typer.Option(help="Segmenter that draws the simulated annotations.")
    ] = SHIPPED_SEGMENTER,
    train: SplitOpt = None,
    test: SplitOpt = None,
    test_shifted: SplitOpt = None,
    sizes_file: Annotated[
        Path | None,
        typer.Option("--sizes", help="JSON object of PaperSizes fields replacing the defaults."),
    ] = None,
    seed: SeedOpt = 0,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch CPU threads.")] = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """DatasetGAN's Table 1 and ablations on CarWorld: few / full / ours rows, 5-fold protocol,
    report.md + report.json + PNG figures in OUT; finished steps are reused on re-run.

    Example: assetgan report paper --out runs/paper --quick

    Example: assetgan report paper --out runs/paper --train data/world/train64 --sizes medium.json
    """
    import torch

    torch.set_num_threads(threads)
    sizes = QUICK_SIZES if quick else PaperSizes()
    if sizes_file is not None:
        sizes = sizes.updated(read_json_object(sizes_file))
    config = PaperReportConfig(
        out=out,
        generator=generator,
        segmenter=segmenter,
        train=train,
        test=test,
        test_shifted=test_shifted,
        sizes=sizes,
        seed=seed,
        device=device,
    )
    from assetgan.pipeline.paper.report import run

    with progress_bar("paper report") as progress:
        result = run(config, progress)
    typer.echo(
        f"{result.report_md}  ({len(result.steps_run)} steps run, "
        f"{len(result.steps_skipped)} reused, {result.seconds:.0f} s)"
    )
    typer.echo(result.report_md.read_text(encoding="utf-8").split("## Targets")[1].split("##")[0])
