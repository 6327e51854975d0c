"""Evaluating an interpreter on a held-out annotation set: per-class IoU, mIoU and keypoint PCK.

IoU per class is accumulated over the whole set (intersection and union summed over images,
ignore pixels excluded); mIoU averages the classes that occur in the ground truth or the
prediction (background included, as DatasetGAN reports). PCK@t counts labeled keypoints whose
predicted position lies within t pixels, with t given at a 512-pixel image width and scaled to
the set's width (the paper's th-15/10/5 are at 512 x 384); a keypoint predicted absent (v = 0)
counts as a miss. Interpreters over car_20 are also scored on the car_12 and car_5 merges
(`merged`), computed from the same predictions.

`run` is the `interpreter eval` stage: it loads the three inputs, checks that the interpreter
and the set belong to the generator (checks.py), scores, and writes the metrics JSON to `out`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assetgan.assets.taxonomy import CAR_5, CAR_12, CAR_20, merge_parts
from assetgan.core.device import Device, resolve_device
from assetgan.core.hashing import file_sha256
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.metrics import confusion, keypoint_hits, merge_keep_ignore, miou_from_confusion
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotations import AnnotationSet
from assetgan.pipeline.interpreter.checkpoint import load_interpreter
from assetgan.pipeline.interpreter.checks import check_generator_match
from assetgan.pipeline.interpreter.model import Interpreter
from assetgan.pipeline.interpreter.predict import decode_keypoints, predict
from assetgan.pipeline.interpreter.train import check_annotations
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator

PCK_THRESHOLDS_AT_512 = (15.0, 10.0, 5.0)
MERGES = {"car_12": CAR_12, "car_5": CAR_5}  # coarser taxonomies reported for car_20 models


@dataclass(frozen=True)
class InterpreterEvalConfig:
    """What `interpreter eval` scores, on what, and where the metrics go."""

    interpreter: Path  # interpreter checkpoint (`interpreter train`)
    generator: Path  # the generator checkpoint it was trained on
    annotations: Path  # held-out annotation set folder, annotated on that generator
    out: Path | None = None  # metrics JSON to write; None = return the metrics only
    batch: int = 4  # latents per forward
    device: Device = Device.auto  # where the generator and the ensembles run


@dataclass(frozen=True)
class InterpreterEvalResult:
    """The metrics `interpreter eval` measured (and wrote to `out`)."""

    metrics: Mapping[str, Any]  # evaluate()'s dict: images, miou, per_class_iou, merged, pck
    out: Path | None  # the metrics JSON written, None when none was asked for


def run(config: InterpreterEvalConfig, progress: Progress | None = None) -> InterpreterEvalResult:
    """Score `config.interpreter` on `config.annotations` (module docstring)."""
    device = resolve_device(config.device)
    interpreter = load_interpreter(config.interpreter, device=device)
    generator = load_generator(config.generator, device)
    sha = file_sha256(config.generator)
    check_generator_match(interpreter, sha, config.interpreter, config.generator)
    annotations = AnnotationSet.load(config.annotations)
    check_generator_match(annotations, sha, config.annotations, config.generator)
    metrics = evaluate(interpreter, generator, sha, annotations, config.batch, progress)
    if config.out is not None:
        atomic_write_json(config.out, metrics)
    return InterpreterEvalResult(metrics, config.out)


def _miou(matrix: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """{miou, per_class_iou} (the interpreter's metrics leave pixel accuracy out)."""
    scores = miou_from_confusion(matrix, names)
    return {"miou": scores["miou"], "per_class_iou": scores["per_class_iou"]}


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
    progress: Progress | None = None,  # task "evaluating", done = images
) -> dict[str, Any]:
    """Metrics dict: per_class_iou {name: iou or None}, miou, pck {threshold_px: value}, counts."""
    check_annotations(annotations, generator, generator_sha, "interpreter eval")
    classes = interpreter.config.num_classes
    names = tuple(interpreter.config.class_names)
    matrix = np.zeros((classes, classes), np.int64)
    width = annotations.samples[0].image_size[1]
    scaled = [t * width / 512.0 for t in PCK_THRESHOLDS_AT_512]
    hits = np.zeros(len(scaled), np.int64)
    labeled = 0
    visible_min, present_min = visibility_thresholds(interpreter)
    # car_20 interpreters are also scored on the car_12 / car_5 merges (taxonomy.py)
    merges = MERGES if names == CAR_20 else {}
    merged = {t: np.zeros((len(n), len(n)), np.int64) for t, n in merges.items()}
    count = len(annotations.samples)
    emit(progress, 0, count, task="evaluating")
    for start in range(0, count, batch):
        samples = annotations.samples[start : start + batch]
        ws = torch.from_numpy(np.stack([s.ws for s in samples]))
        result = predict(interpreter, generator, ws)
        for idx, sample in enumerate(samples):
            matrix += confusion(sample.part_ids, result.part_ids[idx], classes)
            for target, counts in merged.items():
                counts += confusion(
                    merge_keep_ignore(sample.part_ids, target),
                    merge_parts(result.part_ids[idx], target),
                    len(merges[target]),
                )
            if result.heatmaps is None:
                continue
            found = decode_keypoints(result.heatmaps[idx], visible_min, present_min)
            for t, radius in enumerate(scaled):
                hit, counted = keypoint_hits(sample.keypoints_xyv[None], found[None], radius, 1)
                hits[t] += int(hit.sum())
            labeled += int(counted.sum())
        emit(progress, start + len(samples), count, task="evaluating")
    metrics: dict[str, Any] = {
        "images": len(annotations.samples),
        **_miou(matrix, names),
    }
    if merged:
        metrics["merged"] = {target: _miou(m, merges[target]) for target, m in merged.items()}
    if interpreter.keypoints is not None:
        metrics["keypoints_labeled"] = labeled
        metrics["pck"] = {
            f"th{int(t512)}@512 ({t:.2f}px)": (float(h / labeled) if labeled else None)
            for t512, t, h in zip(PCK_THRESHOLDS_AT_512, scaled, hits, strict=True)
        }
    return metrics
