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

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINTS
from assetgan.core.errors import AssetganError
from assetgan.core.metrics import keypoint_hits, segmentation_metrics, share


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
        "definitions": __doc__.split("\n\n", 1)[1].strip(),
    }
