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

import warnings
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


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets [N, D] and [M, D]:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (FID's formula, any feature space)."""
    from scipy import linalg

    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise AssetganError(
            f"feature sets must be [N, D] with the same D, got {features_a.shape} and "
            f"{features_b.shape}"
        )
    if min(len(features_a), len(features_b)) < 2:
        raise AssetganError("the Fréchet distance needs at least 2 samples per set")
    a, b = features_a.astype(np.float64), features_b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # a singular product is handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():  # regularise as FID implementations do
            offset = np.eye(len(cov_a)) * 1e-6
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    trace = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(np.real(root))
    return float(np.sum((mu_a - mu_b) ** 2) + trace)


def precision_recall(
    real: np.ndarray,  # [N, D] features of real images
    fake: np.ndarray,  # [M, D] features of generated images
    k: int = 3,  # neighbourhood size of the manifold estimate
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): precision = share of fakes
    inside the union of k-NN balls of the reals; recall = share of reals inside the fakes'."""
    if min(len(real), len(fake)) <= k:
        raise AssetganError(f"precision/recall with k={k} needs more than {k} samples per set")

    def radii(points: np.ndarray) -> np.ndarray:
        distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
        return np.sort(distances, axis=1)[:, k]  # column 0 is the point itself

    def covered(manifold: np.ndarray, probes: np.ndarray) -> float:
        distances = np.linalg.norm(probes[:, None] - manifold[None], axis=-1)  # [P, Mf]
        return float((distances <= radii(manifold)[None]).any(1).mean())

    real, fake = real.astype(np.float64), fake.astype(np.float64)
    return covered(real, fake), covered(fake, real)
