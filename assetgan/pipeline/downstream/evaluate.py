"""Segmentation and keypoint metrics of predictions against ground truth.

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

from typing import Any

import numpy as np

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINTS, TAXONOMIES, merge_parts
from assetgan.core.errors import AssetganError


def confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """[C, C] int64 counts, rows = truth, columns = prediction; truth IGNORE_ID skipped."""
    if truth.shape != predicted.shape:
        raise AssetganError(f"truth {truth.shape} and prediction {predicted.shape} differ")
    keep = truth != IGNORE_ID
    t = truth[keep].astype(np.int64)
    p = predicted[keep].astype(np.int64)
    if t.size and (t.max() >= num_classes or p.max() >= num_classes):
        raise AssetganError(f"label ids must be < {num_classes}")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def iou_from_confusion(matrix: np.ndarray) -> list[float | None]:
    intersection = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    return [float(i / u) if u > 0 else None for i, u in zip(intersection, union, strict=True)]


def segmentation_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """{taxonomy: {per_class_iou: {name: iou | None}, miou, pixel_accuracy}} for car_20/12/5."""
    out = {}
    valid = truth != IGNORE_ID
    for taxonomy, names in TAXONOMIES.items():
        t = np.where(valid, truth, 0)
        t = np.where(valid, merge_parts(t, taxonomy), IGNORE_ID)
        p = merge_parts(predicted, taxonomy)
        matrix = confusion(t, p, len(names))
        ious = iou_from_confusion(matrix)
        counted = [v for v in ious if v is not None]
        out[taxonomy] = {
            "per_class_iou": dict(zip(names, ious, strict=True)),
            "miou": float(np.mean(counted)) if counted else None,
            "pixel_accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
        }
    return out


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
    found = predicted_xyv[..., 2] > 0
    distance = np.linalg.norm(predicted_xyv[..., :2] - truth_xyv[..., :2], axis=-1)
    out: dict[str, Any] = {"visible_keypoints": int(visible.sum())}
    for alpha in alphas:
        hit = found & (distance <= alpha * bbox_sizes[:, None]) & visible
        key = f"pck@{alpha:g}"
        out[key] = float(hit.sum() / visible.sum()) if visible.any() else None
        out[f"{key}_per_keypoint"] = {
            name: float(hit[:, k].sum() / visible[:, k].sum()) if visible[:, k].any() else None
            for k, name in enumerate(KEYPOINTS)
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
        "definitions": __doc__.split("\n\n", 1)[1].strip(),
    }
