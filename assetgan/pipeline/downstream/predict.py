"""Run a segmenter: part ids and keypoints for uint8 images; the simulated annotator's predictor;
`run(SegmentPredictConfig) -> SegmentPredictResult` labels a folder of image files
(`segment predict`: OUT/NAME.png car_20 ids, OUT/NAME.json keypoints by name).

Keypoints: per heatmap the argmax, refined by a 3-point parabola per axis (the interpreter's
`decode_keypoints`), in image coordinates (docs/conventions.md); v = 2 when the peak is at least
`config.visible_threshold`, else v = 0 and x = y = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from assetgan.assets.taxonomy import KEYPOINTS
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.downstream.checkpoint import load_segmenter
from assetgan.pipeline.downstream.model import Segmenter

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@torch.no_grad()
def predict_maps(
    model: Segmenter,
    images: np.ndarray,  # [N, H, W, 3] uint8
    batch: int = 64,  # images per forward
) -> tuple[np.ndarray, np.ndarray]:
    """(part ids [N, H, W] uint8 car_20, heatmaps [N, K, H, W] float32)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise AssetganError(
            f"images must be uint8 [N, H, W, 3], got {images.dtype} {list(images.shape)}"
        )
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    part_ids, heatmaps = [], []
    for start in range(0, len(images), batch):
        chunk = torch.from_numpy(np.array(images[start : start + batch]))  # writable copy
        chunk = chunk.to(device).permute(0, 3, 1, 2).float()
        logits, heat = model(chunk)
        part_ids.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
        heatmaps.append(heat.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(part_ids), np.concatenate(heatmaps)


def decode_all(heatmaps: np.ndarray, threshold: float) -> np.ndarray:
    """[N, K, H, W] heatmaps -> [N, K, 3] float32 (x, y, v) with v in {0, 2}."""
    from assetgan.pipeline.interpreter.predict import decode_keypoints

    out = np.zeros(heatmaps.shape[:2] + (3,), np.float32)
    for index, maps in enumerate(heatmaps):
        out[index] = decode_keypoints(maps, threshold, threshold)[:, :3]
    return out


def predict(model: Segmenter, images: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """images [N, H, W, 3] uint8 -> (part ids [N, H, W] uint8, keypoints [N, K, 3] (x, y, v))."""
    part_ids, heatmaps = predict_maps(model, images, batch)
    return part_ids, decode_all(heatmaps, model.config.visible_threshold)


def calibrate_threshold(
    model: Segmenter,
    images: np.ndarray,  # [N, H, W, 3] uint8 (training images: never the test split)
    keypoints_xyv: np.ndarray,  # [N, K, 3] their ground truth
    grid: tuple[float, ...] = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2)),
) -> float:
    """The visibility threshold on the heatmap peak that best separates visible (v = 2) from
    not visible keypoints on these images (most agreement; ties -> the larger threshold)."""
    _, heatmaps = predict_maps(model, images)
    peaks = heatmaps.reshape(*heatmaps.shape[:2], -1).max(-1)  # [N, K]
    visible = keypoints_xyv[..., 2] == 2
    scores = [((peaks >= t) == visible).mean() for t in grid]
    best = max(range(len(grid)), key=lambda i: (scores[i], grid[i]))
    return float(grid[best])


def predictor_factory(checkpoint: Path, device: str):
    """simulate.PredictorFactory for `downstream_segmenter` checkpoints."""
    model, _ = load_segmenter(checkpoint, device)

    def predictor(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return predict(model, images)

    return predictor


@dataclass(frozen=True)
class SegmentPredictConfig:
    """One `segment predict` run."""

    model: Path  # segmenter checkpoint, or a training directory holding segmenter.safetensors
    images: Path  # a PNG / JPEG file, or a directory of them (not recursive)
    out: Path  # directory for NAME.png (car_20 ids) and NAME.json (keypoints) per image
    device: Device = Device.auto  # where the segmenter runs


@dataclass(frozen=True)
class SegmentPredictResult:
    """What `segment predict` wrote."""

    out: Path  # the output directory
    names: tuple[str, ...]  # the image stems labelled, in order: out/NAME.png and out/NAME.json


def image_files(images: Path) -> list[Path]:
    """The image files of `images` (a file, or a directory's .png/.jpg/.jpeg files by name)."""
    if images.is_dir():
        files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    elif images.is_file():
        files = [images]
    else:
        raise AssetganError(f"{images}: no such file or directory")
    if not files:
        raise AssetganError(f"{images}: no .png/.jpg images in it")
    return files


def run(config: SegmentPredictConfig, progress: Progress | None = None) -> SegmentPredictResult:
    """Label every image of `config.images` (any size; one forward each)."""
    files = image_files(Path(config.images))
    segmenter, _ = load_segmenter(config.model, resolve_device(config.device))
    out = Path(config.out)
    for index, path in enumerate(files):
        try:
            with Image.open(path) as picture:
                rgb = np.asarray(picture.convert("RGB"))  # [H, W, 3] uint8
        except OSError as error:
            raise AssetganError(f"{path}: not a readable image ({error})") from None
        parts, keypoints = predict(segmenter, rgb[None])
        atomic_write_png(out / f"{path.stem}.png", parts[0])
        named = zip(KEYPOINTS, keypoints[0], strict=True)
        atomic_write_json(
            out / f"{path.stem}.json",
            {"keypoints": {name: [float(x), float(y), int(v)] for name, (x, y, v) in named}},
        )
        emit(progress, index + 1, len(files), task="images")
    return SegmentPredictResult(out, tuple(p.stem for p in files))
