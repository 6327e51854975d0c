"""Segmentation and keypoint metrics of predictions against ground truth; `run(SegmentEvalConfig)
-> SegmentEvalResult` scores a segmenter on a labeled directory (`segment eval`).

- IoU per class from one confusion matrix over the whole set (pixels labelled IGNORE_ID in the
  ground truth are left out); a class absent from both ground truth and prediction has IoU
  None and does not count. mIoU = mean over the counted classes, background included.
  car_12 and car_5 merge the car_20 ids first (taxonomy.merge_parts).
- PCK@alpha: over ground-truth keypoints with v = 2, the share whose predicted location lies
  within alpha * max(bbox width, bbox height) of the truth; bbox = the ground-truth car pixels
  (ids other than background and IGNORE_ID). A keypoint the model calls absent counts as a miss.
  Also the visibility accuracy (predicted v = 2 iff true v = 2) over all keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINTS
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.metrics import keypoint_hits, segmentation_metrics, share
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.downstream.checkpoint import load_segmenter
from assetgan.pipeline.downstream.data import load_labeled
from assetgan.pipeline.downstream.predict import predict
from assetgan.pipeline.downstream.sheet import prediction_sheet


def car_bbox_sizes(truth: np.ndarray) -> np.ndarray:
    """[N] max(width, height) of the ground-truth car pixels of each image (0 if none)."""
    car = (truth != 0) & (truth != IGNORE_ID)  # [N, H, W]
    sizes = np.zeros(len(truth), np.float64)
    for index, mask in enumerate(car):
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        if rows.size:
            sizes[index] = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return sizes


def keypoint_metrics(
    truth_xyv: np.ndarray,  # [N, K, 3]
    predicted_xyv: np.ndarray,  # [N, K, 3]
    bbox_sizes: np.ndarray,  # [N] px
    alphas: tuple[float, ...] = (0.05, 0.1),
) -> dict[str, Any]:
    """PCK@alpha overall and per keypoint, visibility accuracy, counts."""
    visible = truth_xyv[..., 2] == 2  # [N, K]
    out: dict[str, Any] = {"visible_keypoints": int(visible.sum())}
    for alpha in alphas:
        hit, counted = keypoint_hits(truth_xyv, predicted_xyv, alpha * bbox_sizes, 2)
        key = f"pck@{alpha:g}"
        out[key] = share(hit, counted)
        out[f"{key}_per_keypoint"] = {
            name: share(hit[:, k], counted[:, k]) for k, name in enumerate(KEYPOINTS)
        }
    out["visibility_accuracy"] = float(((predicted_xyv[..., 2] == 2) == visible).mean())
    return out


def evaluate_predictions(
    truth_parts: np.ndarray,  # [N, H, W] uint8 car_20 (IGNORE_ID allowed)
    truth_keypoints: np.ndarray,  # [N, K, 3]
    predicted_parts: np.ndarray,  # [N, H, W] uint8 car_20
    predicted_keypoints: np.ndarray,  # [N, K, 3]
) -> dict[str, Any]:
    """The metrics dict written by `segment eval` (module docstring)."""
    if predicted_parts.size and predicted_parts.max() >= len(CAR_20):
        raise AssetganError("predicted part ids must be car_20 ids")
    return {
        "images": int(len(truth_parts)),
        "segmentation": segmentation_metrics(truth_parts, predicted_parts),
        "keypoints": keypoint_metrics(
            truth_keypoints, predicted_keypoints, car_bbox_sizes(truth_parts)
        ),
        "definitions": _DEFINITIONS,
    }


@dataclass(frozen=True)
class SegmentScores:
    """The headline figures of a metrics dict (what the commands print)."""

    miou_car_20: float | None  # mean IoU over the counted car_20 classes
    miou_car_12: float | None  # the same after merging to car_12
    miou_car_5: float | None  # the same after merging to car_5
    pck_0_1: float | None  # PCK@0.1 over visible keypoints; None when none is visible

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any]) -> SegmentScores:
        seg = metrics["segmentation"]
        return cls(
            seg["car_20"]["miou"],
            seg["car_12"]["miou"],
            seg["car_5"]["miou"],
            metrics["keypoints"]["pck@0.1"],
        )


@dataclass(frozen=True)
class SegmentEvalConfig:
    """One `segment eval` run."""

    model: Path  # segmenter checkpoint, or a training directory holding segmenter.safetensors
    data: Path  # labeled set: a CarWorld split or a generated dataset directory
    out: Path  # metrics JSON (evaluate_predictions + the model and data paths)
    sheet: Path | None = None  # also write a contact sheet PNG here (image | truth | prediction)
    sheet_count: int = 16  # images on the sheet (the first ones of `data`)
    device: Device = Device.auto  # where the segmenter runs

    def validate(self) -> SegmentEvalConfig:
        if self.sheet_count < 1:
            raise AssetganError(f"--sheet-count must be >= 1, got {self.sheet_count}")
        return self


@dataclass(frozen=True)
class SegmentEvalResult:
    """What `segment eval` wrote."""

    metrics: Path  # the metrics JSON (config.out)
    sheet: Path | None  # the contact sheet, when asked for
    images: int  # images evaluated
    scores: SegmentScores  # headline figures of the metrics


def run(config: SegmentEvalConfig, progress: Progress | None = None) -> SegmentEvalResult:
    """Predict every image of `config.data`, score it, write the metrics (and the sheet)."""
    config = config.validate()
    segmenter, _ = load_segmenter(config.model, resolve_device(config.device))
    labeled = load_labeled(config.data, progress=progress)
    emit(progress, 0, len(labeled), task="predicting")
    parts, keypoints = predict(segmenter, labeled.images)
    emit(progress, len(labeled), len(labeled), task="predicting")
    metrics = evaluate_predictions(labeled.part_ids, labeled.keypoints_xyv, parts, keypoints)
    metrics["model"], metrics["data"] = str(config.model), str(config.data)
    atomic_write_json(config.out, metrics)
    if config.sheet is not None:
        count = min(config.sheet_count, len(labeled))
        picture = prediction_sheet(
            labeled.images[:count],
            labeled.part_ids[:count],
            labeled.keypoints_xyv[:count],
            parts[:count],
            keypoints[:count],
        )
        atomic_write_png(config.sheet, picture)
    return SegmentEvalResult(
        Path(config.out), config.sheet, len(labeled), SegmentScores.from_metrics(metrics)
    )


_DEFINITIONS = __doc__.split("\n\n", 1)[1].strip()
