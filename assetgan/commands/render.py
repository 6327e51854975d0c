"""`assetgan render MESH --out turntable.png`: a turntable contact sheet of any mesh file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import progress_bar
from assetgan.core.images import atomic_write_png
from assetgan.core.progress import counter


def render(
    mesh_path: Annotated[
        Path, typer.Argument(metavar="MESH", help="OBJ, GLB, glTF, PLY, STL or OFF file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output PNG.")] = Path("turntable.png"),
    views: Annotated[int, typer.Option(min=1, max=64, help="Number of azimuths.")] = 8,
    size: Annotated[int, typer.Option(min=16, max=2048, help="Pixels per view.")] = 256,
    elevation: Annotated[
        float, typer.Option(min=-89, max=89, help="Camera elevation (degrees).")
    ] = 20.0,
    columns: Annotated[int, typer.Option(min=1, help="Views per row.")] = 4,
) -> None:
    """Render a turntable contact sheet of MESH.

    Example: assetgan render car.glb --out turntable.png --views 8 --size 256
    """
    from assetgan.render.mesh import load_mesh
    from assetgan.render.scene import turntable_sheet

    mesh = load_mesh(mesh_path)
    with progress_bar(f"rendering {mesh_path.name}", views) as progress:
        sheet = turntable_sheet(
            mesh,
            views=views,
            size=size,
            elevation_deg=elevation,
            columns=columns,
            progress=counter(progress),
        )
    atomic_write_png(out, sheet)
    typer.echo(f"wrote {out} ({mesh.num_vertices} vertices, {mesh.num_faces} faces, {views} views)")
