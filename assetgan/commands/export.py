"""`assetgan export ...`: rigged car assets and their viewer page (docs/export.md).

    assetgan export CAR --out car.glb          (= assetgan export glb CAR --out car.glb)
    assetgan export view car.glb --out car.html

`glb` is the group's default command: when the first argument is not a command name, the group
reads it as `glb`'s CAR (a file named like a command, e.g. `view`, needs `export glb view ...`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import OutPath

DEFAULT_COMMAND = "glb"


class DefaultCommandGroup(TyperGroup):
    """A typer group that runs DEFAULT_COMMAND when its first argument names no command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = App(
    cls=DefaultCommandGroup,
    help=(
        "Rigged, animatable car assets (glTF with drive/steer animations, OBJ, PLY) and a "
        "self-contained browser viewer. `assetgan export CAR --out car.glb` runs `glb`."
    ),
)


@app.command(DEFAULT_COMMAND)
def export_car(
    car: Annotated[
        Path,
        typer.Argument(
            metavar="CAR",
            help="Part-labelled car: CarWorld meshes/ID.glb, a part-node .glb/.gltf, or an "
            "asset directory (asset.json).",
        ),
    ],
    out: OutPath,
    length: Annotated[
        float | None,
        typer.Option("--length", help="Scale the car to this length in metres (default: as is)."),
    ] = None,
    omi: Annotated[
        bool, typer.Option("--omi", help="Add OMI_physics_body / OMI_vehicle_body / _wheel.")
    ] = False,
    godot: Annotated[
        bool, typer.Option("--godot", help="Godot name hints: Car-vehicle, mounts ...-wheel.")
    ] = False,
    steer: Annotated[float, typer.Option("--steer", help="Steer amplitude (degrees).")] = 30.0,
    keys: Annotated[int, typer.Option("--keys", help="Drive keyframes per revolution.")] = 16,
    spokes: Annotated[int, typer.Option("--spokes", help="Spokes of the clean rims.")] = 5,
    mass: Annotated[float, typer.Option("--mass", help="OMI_physics_body mass (kg).")] = 1500.0,
) -> None:
    """Export CAR as a rigged glTF (.glb / .gltf) or a static mesh (.obj / .ply).

    Example: assetgan export runs/world/meshes/000000.glb --out car.glb --omi
    """
    from assetgan.inverse_graphics.export.car import AssetExportConfig, run

    config = AssetExportConfig(
        car=car,
        out=out,
        length_m=length,
        omi=omi,
        godot=godot,
        steer_deg=steer,
        keys_per_revolution=keys,
        spokes=spokes,
        mass_kg=mass,
    ).validate()
    with progress_bar(f"exporting {car.name}", 5) as progress:
        result = run(config, progress=progress)
    typer.echo(result.summary())


@app.command("view")
def view(
    glb: Annotated[Path, typer.Argument(metavar="GLB", help="A car written by `assetgan export`.")],
    out: OutPath,
    title: Annotated[str | None, typer.Option("--title", help="Page title.")] = None,
) -> None:
    """Write a self-contained HTML viewer (three.js embedded, no network) for GLB.

    Example: assetgan export view car.glb --out car.html
    """
    from assetgan.inverse_graphics.export.viewer import ViewerConfig, run

    with progress_bar(f"viewer for {glb.name}", 2) as progress:
        result = run(ViewerConfig(glb=glb, out=out, title=title), progress=progress)
    typer.echo(result.summary())
