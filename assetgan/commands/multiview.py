"""`assetgan multiview ...`: the keypoint template for cameras, and (later) multi-view sets of
generator images (docs/multiview.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import (
    DeviceChoice,
    DeviceOpt,
    GeneratorOpt,
    OutPath,
    PsiOpt,
    SeedOpt,
)

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


@app.command("sample")
def sample(
    generator: GeneratorOpt,
    interpreter: Annotated[
        Path, typer.Option("--interpreter", help="Style Interpreter checkpoint with keypoints.")
    ],
    out: OutPath,
    views: Annotated[int, typer.Option("--views", help="View codes.")] = 12,
    contents: Annotated[int, typer.Option("--contents", help="Content codes.")] = 64,
    view_layers: Annotated[
        int | None,
        typer.Option(
            "--view-layers", help="K leading ws from the view code (default: viewcode.json)."
        ),
    ] = None,
    viewcode: Annotated[
        Path | None, typer.Option("--viewcode", help="viewcode.json (default: beside -g).")
    ] = None,
    seed: SeedOpt = 0,
    psi: PsiOpt = 0.7,
    fov: Annotated[float, typer.Option("--fov", help="PnP field of view (degrees).")] = 32.0,
    shard: Annotated[str, typer.Option(help="i/n: write the i-th of n content ranges.")] = "0/1",
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """The same cars in many views: view codes x content codes, labeled by the interpreter, with
    a camera per view code from PnP of the predicted keypoints (docs/multiview.md).

    Rerunning the same command completes an interrupted run; the last shard writes the summary.

    Example: assetgan multiview sample -g G.safetensors --interpreter I.safetensors --views 12 --contents 64 --out data/multiview
    """
    from assetgan.pipeline.datasets.layout import parse_shard
    from assetgan.pipeline.multiview.sample import MultiviewSampleConfig, MultiviewSettings, run

    settings = MultiviewSettings(
        views=views, contents=contents, view_layers=view_layers, seed=seed, psi=psi, fov_y=fov
    )
    config = MultiviewSampleConfig(
        generator, interpreter, out, settings, viewcode=viewcode, shard=parse_shard(shard),
        device=device,
    )  # fmt: skip
    with progress_bar(f"sampling shard {shard}", total=0) as progress:
        result = run(config, progress)
    typer.echo(f"wrote {out}: {result.present}/{contents} content codes x {views} view codes")
    if result.summary is None:
        typer.echo("not all shards are done yet; the last shard to finish writes the summary")
        return
    summary, identity = result.summary, result.summary["identity"]
    typer.echo(
        f"kept {summary['kept']}/{summary['images']} images (dropped: "
        + ", ".join(f"{k} {v}" for k, v in summary["dropped"].items())
        + f"); {summary['without_camera']} without a camera of their own; "
        f"{summary['view_codes_with_camera']}/{views} view codes have a camera"
    )
    shown = (f"{k} {'n/a' if v is None else format(v, '.3f')}" for k, v in identity.items())
    typer.echo("identity across views: " + ", ".join(shown))
