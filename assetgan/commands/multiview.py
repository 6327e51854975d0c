"""`assetgan multiview ...`: the keypoint template for cameras, and (later) multi-view sets of
generator images (docs/multiview.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import SeedOpt

app = App(help="Multi-view sets from a generator, with cameras found from keypoints (PnP).")


@app.callback()
def main() -> None:
    """Multi-view sets from a generator, with cameras found from keypoints (PnP)."""


@app.command("template")
def template(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for template.json and README.md.")
    ] = Path("assetgan/assets/keypoint_template"),
    count: Annotated[int, typer.Option("--count", help="CarWorld cars drawn.")] = 2000,
    views: Annotated[
        int, typer.Option("--views", help="CarWorld renders for the visibility model.")
    ] = 768,
    seed: SeedOpt = 0,
) -> None:
    """The 3D keypoint template: the robust mean of the 12 keypoints of COUNT CarWorld cars.

    Example: assetgan multiview template --count 2000 --views 768 --seed 0 --out assetgan/assets/keypoint_template
    """
    from assetgan.pipeline.multiview.template import TemplateConfig, run

    with progress_bar("cars", count) as progress:
        result = run(TemplateConfig(out=out, count=count, views=views, seed=seed), progress)
    spread_cm = float(result.spread.max()) * result.mean_length * 100.0
    typer.echo(
        f"wrote {out}/template.json: {len(result.names)} keypoints from {result.count} cars, "
        f"mean length {result.mean_length:.3f} m, largest spread {spread_cm:.1f} cm, "
        f"visibility model right on {result.visibility_accuracy.mean():.1%} of {views} views"
    )
