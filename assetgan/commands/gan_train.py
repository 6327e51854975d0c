"""`assetgan gan train`: a StyleGAN2 training run, new or resumed (docs/stylegan.md, "Training").

`train_command` is registered on the `gan` sub-app as `train`; the work is done by
`assetgan.pipeline.stylegan.train.run`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, SeedOpt
from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.train_config import Preset

ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="torch CPU threads (default: torch's choice)."),
]


def set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def train_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="Image folder (DIR/images if present).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="New run directory.")] = None,
    res: Annotated[int, typer.Option("--res", help="Training resolution (power of two).")] = 64,
    preset: Annotated[Preset, typer.Option("--preset", help="Model + schedule preset.")] = (
        Preset.cpu64
    ),
    kimg: Annotated[
        float | None, typer.Option("--kimg", help="Total thousand real images to show.")
    ] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Adam lr of G and D.")] = None,
    gamma: Annotated[float | None, typer.Option("--gamma", help="R1 weight.")] = None,
    pl_weight: Annotated[
        float | None, typer.Option("--pl-weight", help="Path-length weight (0 = off).")
    ] = None,
    ema_kimg: Annotated[float | None, typer.Option("--ema-kimg", help="EMA half-life.")] = None,
    snap_kimg: Annotated[
        float | None, typer.Option("--snap-kimg", help="Checkpoint + grid + KID every K kimg.")
    ] = None,
    tick_kimg: Annotated[
        float | None, typer.Option("--tick-kimg", help="metrics.jsonl line every K kimg.")
    ] = None,
    kid_images: Annotated[
        int | None, typer.Option("--kid-images", help="Images for KID (0 = off).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue this run directory exactly.")
    ] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = DeviceChoice.auto,
    threads: ThreadsOpt = None,
    car_reals: Annotated[
        Path | None,
        typer.Option(
            "--car-reals",
            help="CarWorld split: add `gan eval`'s car metrics (car_*) to every snapshot.",
        ),
    ] = None,
    car_n: Annotated[int, typer.Option("--car-n", help="Images per car-metric set.")] = 200,
) -> None:
    """Train a StyleGAN2 on a folder of square PNG/JPG images.

    Example: assetgan gan train --data runs/carworld/train --res 64 --out runs/gan64 --kimg 160

    Resume (same data; --kimg, --data and --device may change):
    assetgan gan train --resume runs/gan64 --kimg 200
    """
    from assetgan.pipeline.stylegan.run_dir import resume_config
    from assetgan.pipeline.stylegan.train import run
    from assetgan.pipeline.stylegan.train_config import preset_config

    set_threads(threads)
    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            raise AssetganError("--resume continues in its own run directory; omit --out")
        config = resume_config(resume, device, total_kimg=kimg, data=data)
    elif data is None or out is None:
        raise AssetganError("gan train needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
    else:
        changes = {
            "total_kimg": kimg,
            "batch": batch,
            "g_lr": lr,
            "d_lr": lr,
            "r1_gamma": gamma,
            "pl_weight": pl_weight,
            "ema_kimg": ema_kimg,
            "snap_kimg": snap_kimg,
            "tick_kimg": tick_kimg,
            "kid_images": kid_images,
        }
        config = dataclasses.replace(
            preset_config(preset, str(data), str(out), res),
            seed=seed,
            device=device,
            **{k: v for k, v in changes.items() if v is not None},
        )
    hooks = []
    if car_reals is not None:
        from assetgan.pipeline.quality.evaluate import SnapshotCarMetric

        hooks.append(SnapshotCarMetric(car_reals, n=car_n))
    try:
        with progress_bar("training", config.total_kimg) as progress:
            result = run(config, progress, snapshot_metrics=hooks)
    except KeyboardInterrupt:
        raise AssetganError(
            f"interrupted; continue with: assetgan gan train --resume {config.out}"
        ) from None
    typer.echo(
        f"trained to {result.kimg:g} kimg; checkpoint {result.checkpoint}; "
        f"export with: assetgan gan export-generator {result.run_dir} --out G.safetensors"
    )
