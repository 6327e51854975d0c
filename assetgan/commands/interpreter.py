"""`assetgan interpreter ...`: train and evaluate the Style Interpreter (docs/interpreter.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import DeviceOpt, OutPath, SeedOpt
from assetgan.core.device import Device
from assetgan.pipeline.interpreter.config import FeatureDtype

app = App(help="Style Interpreter: per-pixel MLP ensembles that label generator samples.")

AnnotationsOpt = Annotated[
    Path, typer.Option("--annotations", help="Annotation set directory (docs/formats.md).")
]
GeneratorOpt = Annotated[
    Path, typer.Option("--generator", "-g", help="Generator checkpoint the set was annotated on.")
]


@app.command("train")
def train_command(
    annotations: AnnotationsOpt,
    generator: GeneratorOpt,
    out: OutPath,
    members: Annotated[int, typer.Option(help="Ensemble members per head (paper: 10).")] = 10,
    batch_pixels: Annotated[int, typer.Option(help="Pixels per iteration and member.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    max_epochs: Annotated[int, typer.Option(help="Upper bound on epochs.")] = 100,
    max_iterations: Annotated[
        int | None, typer.Option(help="Cap on iterations per head (default: early stopping only).")
    ] = None,
    keypoints: Annotated[bool, typer.Option(help="Train the keypoint heatmap head.")] = True,
    feature_dtype: Annotated[
        FeatureDtype, typer.Option(help="Storage precision of the native feature maps.")
    ] = FeatureDtype.float16,
    seed: SeedOpt = 0,
    device: DeviceOpt = Device.auto,
) -> None:
    """Train the part (and keypoint) ensembles on an annotation set; writes OUT.safetensors + OUT.json.

    Example: assetgan interpreter train --annotations data/ann16 --generator G.safetensors --out I.safetensors
    """
    from assetgan.pipeline.interpreter.config import (
        InterpreterTrainConfig,
        InterpreterTrainSettings,
    )
    from assetgan.pipeline.interpreter.train import run

    training = InterpreterTrainSettings(
        members=members,
        batch_pixels=batch_pixels,
        lr=lr,
        max_epochs=max_epochs,
        max_iterations=max_iterations,
        keypoints=keypoints,
        feature_dtype=feature_dtype,
        seed=seed,
    )
    config = InterpreterTrainConfig(annotations, generator, out, training, device)
    with progress_bar("features") as progress:
        result = run(config, progress)
    for head, iterations in result.iterations.items():
        stops = list(result.stopped_at[head])
        typer.echo(f"{head}: {iterations} iterations, members stopped at {stops}")
    typer.echo(
        f"wrote {out} ({result.images} images, native features "
        f"{result.feature_bytes / 2**20:.1f} MiB, {result.train_seconds} s)"
    )


@app.command("eval")
def eval_command(
    interpreter: Annotated[Path, typer.Option("--interpreter", help="Interpreter checkpoint.")],
    generator: GeneratorOpt,
    annotations: AnnotationsOpt,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write metrics JSON here.")
    ] = None,
    device: DeviceOpt = Device.auto,
) -> None:
    """mIoU per class and keypoint PCK on a held-out annotation set.

    Example: assetgan interpreter eval --interpreter I.safetensors --generator G.safetensors --annotations data/ann_test
    """
    from rich.console import Console
    from rich.table import Table

    from assetgan.pipeline.interpreter.evaluate import InterpreterEvalConfig, run

    config = InterpreterEvalConfig(interpreter, generator, annotations, out, device=device)
    with progress_bar("evaluating") as progress:
        metrics = run(config, progress).metrics
    table = Table("class", "IoU")
    for name, iou in metrics["per_class_iou"].items():
        if iou is not None:
            table.add_row(name, f"{iou:.4f}")
    console = Console()
    console.print(table)
    miou = metrics["miou"]
    console.print(
        f"mIoU {miou:.4f} over {metrics['images']} images" if miou is not None else "mIoU n/a"
    )
    for name, value in (metrics.get("pck") or {}).items():
        console.print(f"PCK {name}: {'n/a' if value is None else f'{value:.4f}'}")
