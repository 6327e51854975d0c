"""`assetgan interpreter ...`: train and evaluate the Style Interpreter (docs/interpreter.md)."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App
from assetgan.commands.options import DeviceChoice, DeviceOpt, OutPath, SeedOpt, resolve_device

app = App(help="Style Interpreter: per-pixel MLP ensembles that label generator samples.")

AnnotationsOpt = Annotated[
    Path, typer.Option("--annotations", help="Annotation set directory (docs/formats.md).")
]
GeneratorOpt = Annotated[
    Path, typer.Option("--generator", "-g", help="Generator checkpoint the set was annotated on.")
]


class FeatureDtype(StrEnum):
    float16 = "float16"
    float32 = "float32"


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
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Train the part (and keypoint) ensembles on an annotation set; writes OUT.safetensors + OUT.json.

    Example: assetgan interpreter train --annotations data/ann16 --generator G.safetensors --out I.safetensors
    """
    from rich.console import Console

    from assetgan.core.hashing import file_sha256
    from assetgan.pipeline.annotations import AnnotationSet
    from assetgan.pipeline.interpreter.checkpoint import save_interpreter
    from assetgan.pipeline.interpreter.config import TrainConfig
    from assetgan.pipeline.interpreter.train import train
    from assetgan.pipeline.stylegan.checkpoint import load_generator

    console = Console()
    config = TrainConfig(
        members=members,
        batch_pixels=batch_pixels,
        lr=lr,
        max_epochs=max_epochs,
        max_iterations=max_iterations,
        keypoints=keypoints,
        feature_dtype=feature_dtype.value,
        seed=seed,
    ).validate()
    annotation_set = AnnotationSet.load(annotations)
    torch_device = resolve_device(device)
    model = load_generator(generator, device=torch_device)
    sha = file_sha256(generator)
    started = time.perf_counter()

    def report(event: dict) -> None:
        if "head" in event:
            console.print(
                f"  {event['head']:9s} it {event['iteration']:7d}  epoch {event['epoch']:3d}  "
                f"loss {event['loss']:.4f}  active {event['active']}",
                highlight=False,
            )

    interpreter = train(annotation_set, model, sha, config, torch_device, callback=report)
    interpreter.summary["train_seconds"] = round(time.perf_counter() - started, 2)
    save_interpreter(interpreter, out)
    summary = interpreter.summary
    heads = [h for h in ("parts", "keypoints") if isinstance(summary.get(h), dict)]
    for head in heads:
        stops = [m["iteration"] for m in summary[head]["members"]]
        console.print(
            f"{head}: {summary[head]['iterations']} iterations, members stopped at {stops}"
        )
    console.print(
        f"wrote {out} ({summary['images']} images, native features "
        f"{summary['feature_bytes'] / 2**20:.1f} MiB, {summary['train_seconds']} s)"
    )


@app.command("eval")
def eval_command(
    interpreter: Annotated[Path, typer.Option("--interpreter", help="Interpreter checkpoint.")],
    generator: GeneratorOpt,
    annotations: AnnotationsOpt,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write metrics JSON here.")
    ] = None,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """mIoU per class and keypoint PCK on a held-out annotation set.

    Example: assetgan interpreter eval --interpreter I.safetensors --generator G.safetensors --annotations data/ann_test
    """
    from rich.console import Console
    from rich.table import Table

    from assetgan.core.errors import AssetganError
    from assetgan.core.hashing import file_sha256
    from assetgan.core.io_utils import atomic_write_json
    from assetgan.pipeline.annotations import AnnotationSet
    from assetgan.pipeline.interpreter.checkpoint import load_interpreter
    from assetgan.pipeline.interpreter.evaluate import evaluate
    from assetgan.pipeline.stylegan.checkpoint import load_generator

    torch_device = resolve_device(device)
    model = load_interpreter(interpreter, device=torch_device)
    sha = file_sha256(generator) if generator.is_file() else ""
    if sha and sha != model.config.generator_sha256:
        raise AssetganError(
            f"{interpreter} was trained on generator sha256 {model.config.generator_sha256[:12]}..., "
            f"but {generator} has {sha[:12]}...; pass the generator it was trained on"
        )
    metrics = evaluate(
        model, load_generator(generator, torch_device), sha, AnnotationSet.load(annotations)
    )
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
    if out is not None:
        atomic_write_json(out, metrics)
