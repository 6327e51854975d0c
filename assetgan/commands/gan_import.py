"""`assetgan gan import FILE --out G.safetensors`: foreign StyleGAN2 generators -> our checkpoint.

`import_command` is registered on the `gan` sub-app as `import`; the work is done by
`assetgan.pipeline.stylegan.importers.run` (docs/stylegan_import.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.options import OutPath
from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.import_common import ImportFormat


def parse_crop_rows(text: str | None) -> tuple[int, int] | None:
    """'64:448' -> (64, 448); None -> None; AssetganError for anything else."""
    if text is None:
        return None
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise AssetganError(f"--crop-rows must look like TOP:BOTTOM (e.g. 64:448), got {text!r}")
    return int(parts[0]), int(parts[1])


def import_command(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", help="NVIDIA TF .pkl, stylegan2-ada/stylegan3 .pkl or rosinality .pt."
        ),
    ],
    out: OutPath = Path("G.safetensors"),
    format: Annotated[
        ImportFormat, typer.Option("--format", help="Source format; auto detects it.")
    ] = ImportFormat.auto,
    crop_rows: Annotated[
        str | None,
        typer.Option("--crop-rows", metavar="TOP:BOTTOM", help="Canvas rows kept in images."),
    ] = None,
    car_crop: Annotated[
        bool,
        typer.Option(
            "--car-crop/--no-car-crop",
            help="Without --crop-rows, keep rows 64:448 of 512-px files named *car* (LSUN car).",
        ),
    ] = True,
    fp16: Annotated[bool, typer.Option("--fp16", help="Store float16 weights.")] = False,
) -> None:
    """Convert a pretrained StyleGAN2 generator into an assetgan checkpoint, safely.

    Nothing in FILE is executed: pickles go through an allow-listing unpickler, torch files
    through torch.load(weights_only=True).

    Example: assetgan gan import stylegan2-car-config-f.pkl --out car.safetensors
    """
    from assetgan.pipeline.stylegan.importers import GanImportConfig, run

    config = GanImportConfig(
        source=source,
        out=out,
        format=format,
        crop_rows=parse_crop_rows(crop_rows),
        car_crop=car_crop,
        fp16=fp16,
    )
    result = run(config)
    arch = result.config
    channels, height, width = arch.image_shape
    typer.echo(f"imported {source.name} ({result.format.value}) -> {result.out}")
    typer.echo(
        f"  resolution {arch.resolution} (images {channels}x{height}x{width}), "
        f"{result.num_ws} ws, z_dim {arch.z_dim}, w_dim {arch.w_dim}, "
        f"{arch.mapping_layers} mapping layers, {result.num_params:,} params"
    )
    for note in result.notes:
        typer.echo(f"  - {note}")
