"""`assetgan segment ...`: the downstream segmenter / keypoint net (docs/segment.md)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, OutPath, SeedOpt, resolve_device

app = App(help="Downstream segmenter: car_20 parts + 12 keypoints; train, evaluate, predict.")

DataOpt = Annotated[
    Path, typer.Option("--data", help="CarWorld split or generated dataset directory.")
]
ThreadsOpt = Annotated[int, typer.Option("--threads", min=1, help="torch CPU threads.")]


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class ArchitectureChoice(StrEnum):
    unet = "unet"
    lraspp = "lraspp"


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
        ArchitectureChoice, typer.Option(help="unet (default) or lraspp (baseline).")
    ] = ArchitectureChoice.unet,
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
    from assetgan.pipeline.downstream.data import load_labeled
    from assetgan.pipeline.downstream.model import SegmenterConfig
    from assetgan.pipeline.downstream.train import TrainConfig
    from assetgan.pipeline.downstream.train import train as run_train

    _set_threads(threads)
    try:
        widths = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise AssetganError(
            f"--channels must be integers separated by commas, got {channels!r}"
        ) from None
    model = SegmenterConfig(architecture=architecture.value, channels=widths)
    config = TrainConfig(
        model=model,
        epochs=epochs,
        minutes=minutes,
        batch=batch,
        lr=lr,
        seed=seed,
        class_weight_power=class_weight_power,
    ).validate()
    with progress_bar("reading data", 1) as progress:
        train_set = load_labeled(data, limit=limit, progress=progress)
        val_set = load_labeled(val, progress=progress) if val is not None else None
    with progress_bar("training", 1) as progress:
        path = run_train(
            config,
            train_set,
            out,
            val=val_set,
            device=resolve_device(device),
            progress=progress,
            init=init,
        )
    typer.echo(f"wrote {path}")
    if val_set is not None:
        _print_summary(out / "val_metrics.json")


@app.command("eval")
def evaluate(
    model: Annotated[Path, typer.Option("--model", "-m", help="Segmenter checkpoint or dir.")],
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
    from assetgan.core.images import atomic_write_png
    from assetgan.core.io_utils import atomic_write_json
    from assetgan.pipeline.downstream.checkpoint import load_segmenter
    from assetgan.pipeline.downstream.data import load_labeled
    from assetgan.pipeline.downstream.evaluate import evaluate_predictions
    from assetgan.pipeline.downstream.predict import predict
    from assetgan.pipeline.downstream.sheet import prediction_sheet

    _set_threads(threads)
    segmenter, _ = load_segmenter(model, resolve_device(device))
    labeled = load_labeled(data)
    parts, keypoints = predict(segmenter, labeled.images)
    metrics = evaluate_predictions(labeled.part_ids, labeled.keypoints_xyv, parts, keypoints)
    metrics["model"], metrics["data"] = str(model), str(data)
    atomic_write_json(out, metrics)
    typer.echo(f"wrote {out}")
    _print_summary(out)
    if sheet is not None:
        count = max(1, min(sheet_count, len(labeled)))
        picture = prediction_sheet(
            labeled.images[:count],
            labeled.part_ids[:count],
            labeled.keypoints_xyv[:count],
            parts[:count],
            keypoints[:count],
        )
        atomic_write_png(sheet, picture)
        typer.echo(f"wrote {sheet}")


@app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="Segmenter checkpoint or dir.")],
    images: Annotated[Path, typer.Argument(help="A PNG/JPEG file or a directory of them.")],
    out: OutPath,
    threads: ThreadsOpt = 1,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Write OUT/NAME.png (car_20 ids) and OUT/NAME.json (keypoints x, y, v) per image.

    Example: assetgan segment predict --model seg.safetensors photos/ --out labels/
    """
    import numpy as np
    from PIL import Image

    from assetgan.assets.taxonomy import KEYPOINTS
    from assetgan.core.errors import AssetganError
    from assetgan.core.images import atomic_write_png
    from assetgan.core.io_utils import atomic_write_json
    from assetgan.pipeline.downstream.checkpoint import load_segmenter
    from assetgan.pipeline.downstream.predict import predict

    _set_threads(threads)
    segmenter, _ = load_segmenter(model, resolve_device(device))
    suffixes = {".png", ".jpg", ".jpeg"}
    if images.is_dir():
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in suffixes)
    elif images.is_file():
        files = [images]
    else:
        raise AssetganError(f"{images}: no such file or directory")
    if not files:
        raise AssetganError(f"{images}: no .png/.jpg images in it")
    for path in files:
        try:
            with Image.open(path) as picture:
                rgb = np.asarray(picture.convert("RGB"))
        except OSError as error:
            raise AssetganError(f"{path}: not a readable image ({error})") from None
        parts, keypoints = predict(segmenter, rgb[None])
        atomic_write_png(out / f"{path.stem}.png", parts[0])
        atomic_write_json(
            out / f"{path.stem}.json",
            {"keypoints": {n: [float(x), float(y), int(v)] for n, (x, y, v) in
                           zip(KEYPOINTS, keypoints[0], strict=True)}},
        )  # fmt: skip
    typer.echo(f"wrote {len(files)} label maps to {out}")


def _print_summary(path: Path) -> None:
    import json

    metrics = json.loads(Path(path).read_text())
    seg = metrics["segmentation"]
    pck = metrics["keypoints"]["pck@0.1"]
    typer.echo(
        "mIoU car_20 {:.3f}  car_12 {:.3f}  car_5 {:.3f}  PCK@0.1 {}".format(
            seg["car_20"]["miou"],
            seg["car_12"]["miou"],
            seg["car_5"]["miou"],
            "n/a" if pck is None else f"{pck:.3f}",
        )
    )
