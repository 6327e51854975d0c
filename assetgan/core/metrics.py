"""Segmentation and keypoint metrics every evaluator uses (segment eval, interpreter eval, gan
viewcode, the 3D stages).

- `confusion`: one [C, C] count matrix (rows truth, columns prediction) over the pixels whose
  truth is not `ignore_id`; sums over images by adding matrices.
- `miou_from_confusion`: IoU per class; a class absent from both truth and prediction has IoU
  None and does not count; mIoU = mean over the counted classes (background included, as
  DatasetGAN reports). `pixel_accuracy` = trace / total.
- `segmentation_metrics`: the above at car_20, car_12 and car_5 (car_20 ids merged by
  taxonomy.merge_parts; ignore pixels stay ignored).
- `keypoint_hits`: a ground-truth keypoint counts when its visibility is >= `min_visibility`; it
  is hit when the prediction calls it present (v > 0) within `radius` pixels. PCK = hits / counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assetgan.assets.taxonomy import IGNORE_ID, TAXONOMIES, merge_parts
from assetgan.core.errors import AssetganError


def confusion(
    truth: np.ndarray,  # [...] int class ids
    predicted: np.ndarray,  # [...] int class ids, same shape
    num_classes: int,
    ignore_id: int | None = IGNORE_ID,  # truth id left out; None keeps every pixel
) -> np.ndarray:
    """[C, C] int64 counts, rows = truth, columns = prediction."""
    if truth.shape != predicted.shape:
        raise AssetganError(f"truth {truth.shape} and prediction {predicted.shape} differ")
    keep = truth != ignore_id if ignore_id is not None else np.ones(truth.shape, bool)
    t = truth[keep].astype(np.int64)
    p = predicted[keep].astype(np.int64)
    if t.size and (t.max() >= num_classes or p.max() >= num_classes):
        raise AssetganError(f"label ids must be < {num_classes}")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def iou_from_confusion(matrix: np.ndarray) -> list[float | None]:
    """IoU per class from a [C, C] confusion matrix; None where the class occurs nowhere."""
    intersection = np.diag(matrix).astype(np.float64)
    union = matrix.sum(0) + matrix.sum(1) - intersection
    return [float(i / u) if u > 0 else None for i, u in zip(intersection, union, strict=True)]


def miou_from_confusion(matrix: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """{miou (None if no class counted), per_class_iou {name: iou | None}, pixel_accuracy}."""
    ious = iou_from_confusion(matrix)
    counted = [v for v in ious if v is not None]
    return {
        "miou": float(np.mean(counted)) if counted else None,
        "per_class_iou": dict(zip(names, ious, strict=True)),
        "pixel_accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
    }


def merge_keep_ignore(part_ids: np.ndarray, target: str) -> np.ndarray:
    """car_20 ids -> `target` ids (car_20 / car_12 / car_5), IGNORE_ID pixels kept."""
    ignore = part_ids == IGNORE_ID
    merged = merge_parts(np.where(ignore, 0, part_ids), target)
    merged[ignore] = IGNORE_ID
    return merged


def taxonomy_confusions(truth: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """{taxonomy: [C, C] confusion} at car_20, car_12 and car_5 from car_20 id maps."""
    return {
        taxonomy: confusion(
            merge_keep_ignore(truth, taxonomy), merge_parts(predicted, taxonomy), len(names)
        )
        for taxonomy, names in TAXONOMIES.items()
    }


def segmentation_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """{taxonomy: miou_from_confusion} for car_20/12/5 from car_20 ids [N, H, W]."""
    return {
        taxonomy: miou_from_confusion(matrix, TAXONOMIES[taxonomy])
        for taxonomy, matrix in taxonomy_confusions(truth, predicted).items()
    }


def keypoint_hits(
    truth_xyv: np.ndarray,  # [N, K, 3] (x, y, v) pixels
    predicted_xyv: np.ndarray,  # [N, K, 3]
    radius: float | np.ndarray,  # pixels: a scalar or [N] per image
    min_visibility: int = 2,  # truth v that counts: 2 = visible only, 1 = labeled
) -> tuple[np.ndarray, np.ndarray]:
    """(hit [N, K] bool, counted [N, K] bool); PCK = hit.sum() / counted.sum()."""
    counted = truth_xyv[..., 2] >= min_visibility
    found = predicted_xyv[..., 2] > 0
    distance = np.linalg.norm(predicted_xyv[..., :2] - truth_xyv[..., :2], axis=-1)
    limit = np.asarray(radius, np.float64)
    limit = limit[:, None] if limit.ndim == 1 else limit
    return found & (distance <= limit) & counted, counted


def share(hit: np.ndarray, counted: np.ndarray) -> float | None:
    """hit.sum() / counted.sum(), None when nothing counted."""
    total = int(counted.sum())
    return float(hit.sum() / total) if total else None
