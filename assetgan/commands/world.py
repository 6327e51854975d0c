"""`assetgan world ...`: render CarWorld splits and contact sheets (docs/carworld.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import OutPath, SeedOpt
from assetgan.pipeline.carworld.params import Shift

app = App(help="CarWorld: a procedural, part-labeled 3D car world rendered into labeled splits.")


@app.command("render")
def render(
    out: OutPath,
    split: Annotated[str, typer.Option(help="Split name (also seeds the images).")] = "train",
    n: Annotated[int, typer.Option("--n", help="Number of images.")] = 2600,
    size: Annotated[int, typer.Option(help="Image side: 64, 128 or 256.")] = 64,
    seed: SeedOpt = 0,
    shift: Annotated[Shift, typer.Option(help="Distribution shift for test splits.")] = Shift.none,
    workers: Annotated[int, typer.Option(help="Worker processes (same bytes for any value).")] = 1,
    meshes: Annotated[bool, typer.Option("--meshes", help="Also write meshes/ID.glb.")] = False,
    degrade: Annotated[float, typer.Option(help="Probability scale of blur/noise/JPEG.")] = 0.25,
) -> None:
    """Render a CarWorld split: RGB, car_20 parts, depth, keypoints, cameras, COCO json.

    Rerunning the same command completes an interrupted run.

    Example: assetgan world render --split train --n 2600 --size 64 --seed 0 --out data/world/train
    """
    from assetgan.pipeline.carworld.generate import WorldRenderConfig, run
    from assetgan.pipeline.carworld.split import WorldConfig

    world = WorldConfig(
        split=split, n=n, size=size, seed=seed, shift=shift, meshes=meshes, degrade=degrade
    )
    with progress_bar(f"rendering {split}", n) as progress:
        result = run(WorldRenderConfig(world=world, out=out, workers=workers), progress)
    typer.echo(f"wrote {out}: {len(result)} images {size}x{size} ({split}, shift {shift.value})")


@app.command("sheet")
def sheet(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output PNG.")] = Path(
        "carworld_sheet.png"
    ),
    size: Annotated[int, typer.Option(help="Pixels per view.")] = 192,
    seed: SeedOpt = 0,
) -> None:
    """A contact sheet: one car per style, RGB and part colours from several views.

    Example: assetgan world sheet --out docs/img/carworld_sheet.png
    """

    from assetgan.core.errors import AssetganError
    from assetgan.core.images import atomic_write_png
    from assetgan.pipeline.carworld.sheet import style_sheet

    if not 32 <= size <= 1024:
        raise AssetganError(f"--size must be in 32..1024, got {size}")
    image = style_sheet(size=size, seed=seed)
    atomic_write_png(out, image)
    typer.echo(f"wrote {out} ({image.shape[1]}x{image.shape[0]})")
