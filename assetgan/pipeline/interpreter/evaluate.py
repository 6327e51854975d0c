"""Evaluating an interpreter on a held-out annotation set: per-class IoU, mIoU and keypoint PCK.

IoU per class is accumulated over the whole set (intersection and union summed over images,
ignore pixels excluded); mIoU averages the classes that occur in the ground truth or the
prediction (background included, as DatasetGAN reports). PCK@t counts labeled keypoints whose
predicted position lies within t pixels, with t given at a 512-pixel image width and scaled to
the set's width (the paper's th-15/10/5 are at 512 x 384); a keypoint predicted absent (v = 0)
counts as a miss. Interpreters over car_20 are also scored on the car_12 and car_5 merges
(`merged`), computed from the same predictions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from assetgan.assets.taxonomy import CAR_5, CAR_12, CAR_20, merge_parts
from assetgan.pipeline.annotations import IGNORE_ID, AnnotationSet
from assetgan.pipeline.interpreter.model import Interpreter
from assetgan.pipeline.interpreter.predict import decode_keypoints, predict
from assetgan.pipeline.interpreter.train import check_annotations
from assetgan.pipeline.stylegan.networks import Generator

PCK_THRESHOLDS_AT_512 = (15.0, 10.0, 5.0)
MERGES = {"car_12": CAR_12, "car_5": CAR_5}  # coarser taxonomies reported for car_20 models


def confusion_iou(
    truth: np.ndarray, predicted: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(intersection [K], union [K]) over pixels whose truth is not IGNORE_ID."""
    valid = truth != IGNORE_ID
    t = truth[valid].astype(np.int64)
    p = predicted[valid].astype(np.int64)
    intersection = np.bincount(t[t == p], minlength=num_classes)[:num_classes]
    union = (
        np.bincount(t, minlength=num_classes)[:num_classes]
        + np.bincount(p, minlength=num_classes)[:num_classes]
        - intersection
    )
    return intersection, union


def merge_keep_ignore(part_ids: np.ndarray, target: str) -> np.ndarray:
    """car_20 ids -> `target` ids (car_12 / car_5), IGNORE_ID pixels kept as IGNORE_ID."""
    ignore = part_ids == IGNORE_ID
    merged = merge_parts(np.where(ignore, 0, part_ids), target)
    merged[ignore] = IGNORE_ID
    return merged


def _miou(intersection: np.ndarray, union: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    per_class = {
        name: (float(intersection[k] / union[k]) if union[k] else None)
        for k, name in enumerate(names)
    }
    present = [v for v in per_class.values() if v is not None]
    return {"miou": float(np.mean(present)) if present else None, "per_class_iou": per_class}


def visibility_thresholds(interpreter: Interpreter) -> tuple[float, float]:
    """(visible_min, present_min): midway between the trained amplitudes, and half the lower."""
    vis, occ = interpreter.config.visible_amplitude, interpreter.config.occluded_amplitude
    return 0.5 * (vis + occ), 0.5 * occ


@torch.no_grad()
def evaluate(
    interpreter: Interpreter,
    generator: Generator,
    generator_sha: str,
    annotations: AnnotationSet,
    batch: int = 4,  # latents per forward
) -> dict[str, Any]:
    """Metrics dict: per_class_iou {name: iou or None}, miou, pck {threshold_px: value}, counts."""
    check_annotations(annotations, generator, generator_sha, "interpreter eval")
    classes = interpreter.config.num_classes
    intersection = np.zeros(classes, np.int64)
    union = np.zeros(classes, np.int64)
    width = annotations.samples[0].image_size[1]
    scaled = [t * width / 512.0 for t in PCK_THRESHOLDS_AT_512]
    hits = np.zeros(len(scaled), np.int64)
    labeled = 0
    visible_min, present_min = visibility_thresholds(interpreter)
    # car_20 interpreters are also scored on the car_12 / car_5 merges (taxonomy.py)
    merges = MERGES if tuple(interpreter.config.class_names) == CAR_20 else {}
    merged_counts = {
        t: (np.zeros(len(n), np.int64), np.zeros(len(n), np.int64)) for t, n in merges.items()
    }
    for start in range(0, len(annotations.samples), batch):
        samples = annotations.samples[start : start + batch]
        ws = torch.from_numpy(np.stack([s.ws for s in samples]))
        result = predict(interpreter, generator, ws)
        for idx, sample in enumerate(samples):
            inter, uni = confusion_iou(sample.part_ids, result.part_ids[idx], classes)
            intersection += inter
            union += uni
            for target, (m_inter, m_union) in merged_counts.items():
                inter, uni = confusion_iou(
                    merge_keep_ignore(sample.part_ids, target),
                    merge_parts(result.part_ids[idx], target),
                    len(merges[target]),
                )
                m_inter += inter
                m_union += uni
            if result.heatmaps is None:
                continue
            found = decode_keypoints(result.heatmaps[idx], visible_min, present_min)
            for k, (x, y, v) in enumerate(sample.keypoints_xyv):
                if v <= 0:
                    continue
                labeled += 1
                if found[k, 2] > 0:
                    dist = float(np.hypot(found[k, 0] - x, found[k, 1] - y))
                    hits += np.array([dist <= t for t in scaled])
    metrics: dict[str, Any] = {
        "images": len(annotations.samples),
        **_miou(intersection, union, tuple(interpreter.config.class_names)),
    }
    if merged_counts:
        metrics["merged"] = {
            target: _miou(m_inter, m_union, merges[target])
            for target, (m_inter, m_union) in merged_counts.items()
        }
    if interpreter.keypoints is not None:
        metrics["keypoints_labeled"] = labeled
        metrics["pck"] = {
            f"th{int(t512)}@512 ({t:.2f}px)": (float(h / labeled) if labeled else None)
            for t512, t, h in zip(PCK_THRESHOLDS_AT_512, scaled, hits, strict=True)
        }
    return metrics
