"""`assetgan reconstruct ...`: the single-image 3D reconstruction network (docs/reconstruct.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, OutPath, SeedOpt
from assetgan.inverse_graphics.reconstruct.model import TextureMode
from assetgan.inverse_graphics.reconstruct.pose import CameraSource
from assetgan.inverse_graphics.reconstruct.template import TemplateKind

app = App(
    help="Single image -> textured 3D car with car_20 parts and 12 keypoints: train, reconstruct."
)

ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="torch CPU threads.")]


@app.command("train")
def train(
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="CarWorld split (true cameras, labels) or multi-view set (multiview.json).",
        ),
    ],
    out: OutPath,
    val: Annotated[
        Path | None, typer.Option("--val", help="CarWorld split scored at the end (val.json).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Total optimiser steps of the run.")] = 2000,
    minutes: Annotated[
        float | None, typer.Option(help="Wall budget of this session (then save and stop).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Images per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    limit: Annotated[int | None, typer.Option(help="Use only the first LIMIT images.")] = None,
    image_size: Annotated[int, typer.Option(help="Input side in pixels (the data's).")] = 64,
    template: Annotated[
        TemplateKind, typer.Option(help="Shape deformed: car (default) or ellipsoid.")
    ] = TemplateKind.car,
    texture: Annotated[
        TextureMode, typer.Option(help="flow: sampled from the input (default); decoded.")
    ] = TextureMode.flow,
    subdivisions: Annotated[
        int, typer.Option(help="Icosphere level: 3 = 642 vertices, 4 = 2562.")
    ] = 3,
    refine_cameras: Annotated[
        bool,
        typer.Option(help="Multi-view sets: learn a camera correction per view code."),
    ] = True,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Train on a CarWorld split or a multi-view set; OUT/model.safetensors is the network.

    Rerunning the same command with the same OUT resumes from OUT/state.safetensors (--steps
    and --minutes may change).

    Example: assetgan reconstruct train --data data/world/train64 --val data/world/test64 --steps 2000 --out runs/recon
    """
    import torch

    from assetgan.inverse_graphics.reconstruct.model import ReconstructNetConfig
    from assetgan.inverse_graphics.reconstruct.train import ReconstructTrainConfig, run

    torch.set_num_threads(threads)
    config = ReconstructTrainConfig(
        data=data,
        out=out,
        val=val,
        limit=limit,
        device=device,
        model=ReconstructNetConfig(
            image_size=image_size, template=template, texture=texture, subdivisions=subdivisions
        ),
        steps=steps,
        minutes=minutes,
        batch=batch,
        lr=lr,
        seed=seed,
        refine_cameras=refine_cameras,
    ).validate()
    with progress_bar("reading data", 1) as progress:
        result = run(config, progress)
    typer.echo(result.summary())


@app.command("image")
def image(
    images: Annotated[
        list[Path],
        typer.Argument(help="Image files (PNG/JPEG/WebP/BMP, RGB) and/or folders of them."),
    ],
    out: OutPath,
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", help="Reconstruction network (default: the shipped one)."),
    ] = None,
    views: Annotated[int, typer.Option(help="Turntable views.")] = 8,
    camera: Annotated[
        CameraSource,
        typer.Option(help="Input camera: pnp (segmenter keypoints, default) or head (network)."),
    ] = CameraSource.pnp,
    threads: ThreadsOpt = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Reconstruct a textured, part-labelled 3D car from each image into OUT/<image stem>/.

    Any RGB image works: it is centre-cropped to a square and resized to the network's input,
    so the car should be roughly centred and fill most of the frame. The input view's camera is
    PnP of the keypoints the shipped segmenter detects against the reconstruction's 3D
    keypoints (--camera pnp), or the network's camera head (--camera head). Writes the CarAsset directory (for `assetgan export`), mesh.glb,
    mesh.obj/.mtl + texture.png, parts.png, keypoints.json and turntable.png.

    Example: assetgan reconstruct image data/world/test64/images/000000.png --model runs/recon/model.safetensors --out recon/
    """
    import torch

    from assetgan.inverse_graphics.reconstruct.image import (
        DEFAULT_MODEL,
        ReconstructImageConfig,
        run,
    )

    torch.set_num_threads(threads)
    config = ReconstructImageConfig(
        images=tuple(images),
        out=out,
        model=model or DEFAULT_MODEL,
        views=views,
        device=device,
        camera=camera,
    ).validate()
    with progress_bar("reconstructing", len(images)) as progress:
        result = run(config, progress)
    typer.echo(result.summary())


@app.command("export-model")
def export_model(
    source: Annotated[
        Path, typer.Argument(help="A `reconstruct train` run directory or a model .safetensors.")
    ],
    out: OutPath,
    fp16: Annotated[bool, typer.Option(help="Store float16 weights (half the size).")] = True,
    images: Annotated[
        Path | None,
        typer.Option(help="CarWorld split whose first images check the conversion."),
    ] = None,
) -> None:
    """Write a trained network as a file to ship (float16 by default) and measure the change.

    Example: assetgan reconstruct export-model runs/recon --out assetgan/assets/reconstruct64/model.safetensors
    """
    from assetgan.inverse_graphics.reconstruct.ship import ReconstructExportConfig, run

    config = ReconstructExportConfig(source=source, out=out, fp16=fp16, images=images)
    with progress_bar("exporting", 2) as progress:
        result = run(config, progress)
    typer.echo(result.summary())
