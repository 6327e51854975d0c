"""`assetgan segment ...`: the downstream segmenter / keypoint net (docs/segment.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, OutPath, SeedOpt
from assetgan.pipeline.downstream.config import Architecture

if TYPE_CHECKING:
    from assetgan.pipeline.downstream.evaluate import SegmentScores

app = App(help="Downstream segmenter: car_20 parts + 12 keypoints; train, evaluate, predict.")

DataOpt = Annotated[
    Path, typer.Option("--data", help="CarWorld split or generated dataset directory.")
]
ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Segmenter checkpoint or dir.")]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="torch CPU threads.")]


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _print_scores(scores: SegmentScores) -> None:
    """One line: mIoU car_20 / car_12 / car_5 and PCK@0.1."""

    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    typer.echo(
        f"mIoU car_20 {figure(scores.miou_car_20)}  car_12 {figure(scores.miou_car_12)}  "
        f"car_5 {figure(scores.miou_car_5)}  PCK@0.1 {figure(scores.pck_0_1)}"
    )


@app.command("train")
def train(
    data: DataOpt,
    out: OutPath,
    val: Annotated[
        Path | None, typer.Option("--val", help="Split evaluated at the end (metrics).")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data.")] = None,
    minutes: Annotated[float | None, typer.Option(help="Wall budget of this run.")] = None,
    architecture: Annotated[
        Architecture, typer.Option(help="unet (default) or lraspp (baseline).")
    ] = Architecture.unet,
    channels: Annotated[str, typer.Option(help="UNet widths per level, comma-separated.")] = (
        "16,32,64,128"
    ),
    batch: Annotated[int, typer.Option(help="Images per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    limit: Annotated[int | None, typer.Option(help="Use only the first LIMIT images.")] = None,
    class_weight_power: Annotated[
        float, typer.Option(help="Cross-entropy class weights (1/frequency)**P; 0 = none.")
    ] = 0.0,
    init: Annotated[
        Path | None, typer.Option("--init", help="Start from this segmenter's weights.")
    ] = None,
    seed: SeedOpt = 0,
    threads: ThreadsOpt = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Train on a labeled directory; OUT/segmenter.safetensors is the model.

    Rerunning the same command in the same OUT resumes from OUT/state.safetensors.

    Example: assetgan segment train --data data/world/train64 --val data/world/test64 --minutes 30 --out runs/seg
    """
    from assetgan.core.errors import AssetganError
    from assetgan.pipeline.downstream.config import SegmenterConfig
    from assetgan.pipeline.downstream.train import SegmentTrainConfig, run

    _set_threads(threads)
    try:
        widths = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise AssetganError(
            f"--channels must be integers separated by commas, got {channels!r}"
        ) from None
    config = SegmentTrainConfig(
        data=data,
        out=out,
        val=val,
        init=init,
        limit=limit,
        device=device,
        model=SegmenterConfig(architecture=architecture, channels=widths),
        epochs=epochs,
        minutes=minutes,
        batch=batch,
        lr=lr,
        seed=seed,
        class_weight_power=class_weight_power,
    ).validate()
    with progress_bar("reading data", 1) as progress:
        result = run(config, progress)
    typer.echo(f"wrote {result.checkpoint} ({result.steps} steps, {result.epochs} epochs)")
    if result.val_scores is not None:
        _print_scores(result.val_scores)


@app.command("eval")
def evaluate(
    model: ModelOpt,
    data: DataOpt,
    out: OutPath,
    sheet: Annotated[
        Path | None, typer.Option("--sheet", help="Also write a contact sheet PNG.")
    ] = None,
    sheet_count: Annotated[int, typer.Option(help="Images on the sheet.")] = 16,
    threads: ThreadsOpt = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Evaluate on a labeled directory: IoU per part, mIoU car_20/12/5, keypoint PCK -> json.

    Example: assetgan segment eval --model assetgan/assets/segmenter64/segmenter.safetensors --data data/world/test64 --out metrics.json
    """
    from assetgan.pipeline.downstream.evaluate import SegmentEvalConfig, run

    _set_threads(threads)
    config = SegmentEvalConfig(model, data, out, sheet, sheet_count, device).validate()
    with progress_bar("reading data", 1) as progress:
        result = run(config, progress)
    typer.echo(f"wrote {result.metrics} ({result.images} images)")
    _print_scores(result.scores)
    if result.sheet is not None:
        typer.echo(f"wrote {result.sheet}")


@app.command("predict")
def predict_command(
    model: ModelOpt,
    images: Annotated[Path, typer.Argument(help="A PNG/JPEG file or a directory of them.")],
    out: OutPath,
    threads: ThreadsOpt = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Write OUT/NAME.png (car_20 ids) and OUT/NAME.json (keypoints x, y, v) per image.

    Example: assetgan segment predict --model seg.safetensors photos/ --out labels/
    """
    from assetgan.pipeline.downstream.predict import SegmentPredictConfig, run

    _set_threads(threads)
    with progress_bar("labelling images", 1) as progress:
        result = run(SegmentPredictConfig(model, images, out, device), progress)
    typer.echo(f"wrote {len(result.names)} label maps to {result.out}")
