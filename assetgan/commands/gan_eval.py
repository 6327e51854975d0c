"""`assetgan gan eval`: generator quality seen by the CarWorld segmenter (docs/stylegan.md).

`eval_command` is registered on the `gan` sub-app as `eval`; the work is done by
`assetgan.pipeline.quality.evaluate.run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, PsiOpt, SeedOpt
from assetgan.pipeline.quality.evaluate import DEFAULT_SEGMENTER


def eval_command(
    generator: Annotated[Path, typer.Argument(metavar="G", help="Generator .safetensors.")],
    reals: Annotated[
        Path, typer.Option("--reals", help="CarWorld split directory with at least 2 x N images.")
    ],
    segmenter: Annotated[
        Path, typer.Option("--segmenter", help="CarWorld UNet segmenter checkpoint.")
    ] = DEFAULT_SEGMENTER,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Metrics JSON to write.")] = None,
    n: Annotated[int, typer.Option("--n", help="Generated images and real images per set.")] = 400,
    view_layers: Annotated[
        int, typer.Option("--view-layers", help="Leading ws that hold the view (gan viewcode K).")
    ] = 2,
    psi: PsiOpt = 1.0,
    seed: SeedOpt = 0,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Car-aware quality: Fréchet distance and precision/recall in the segmenter's feature space,
    part-area statistics and paint identity across view codes, each beside its real floor.

    Example: assetgan gan eval assetgan/assets/carworld64/G.safetensors --reals data/world/test64
    """
    from assetgan.pipeline.quality.evaluate import GanEvalConfig, run, summary_lines

    config = GanEvalConfig(
        generator=generator,
        segmenter=segmenter,
        reals=reals,
        out=out,
        n=n,
        psi=psi,
        seed=seed,
        view_layers=view_layers,
        device=device,
    )
    with progress_bar("gan eval") as progress:
        result = run(config, progress)
    typer.echo("\n".join(summary_lines(result)))
    if out is not None:
        typer.echo(f"wrote {out}")
