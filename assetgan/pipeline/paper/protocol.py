"""The paper's test protocol for one segmenter recipe.

Training: `train_with_snapshots` is `downstream.train.fit`'s loop (same batches, flips, loss,
learning-rate schedule and seed; tests compare the final weights with `fit`'s) that also hands
the model to a callback at evenly spaced snapshot steps, each with its visibility threshold
calibrated on training images as `fit` does at the end.

Scoring (DatasetGAN, ANCHORS.md "Downstream"): the test split is cut into `folds` contiguous
folds; every snapshot is scored on every fold; the snapshot with the best car_20 mIoU on fold 0
is chosen, and each figure is reported as mean +- std (ddof 1) over folds 1..folds-1.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from assetgan.core.batches import batch_indices
from assetgan.core.device import resolve_device
from assetgan.pipeline.downstream.data import LabeledArrays
from assetgan.pipeline.downstream.evaluate import evaluate_predictions
from assetgan.pipeline.downstream.model import Segmenter
from assetgan.pipeline.downstream.predict import calibrate_threshold, predict
from assetgan.pipeline.downstream.train import (
    SegmentTrainConfig,
    class_weights,
    learning_rate,
    loss_terms,
    make_batch,
)

FIGURES = ("miou_car_20", "miou_car_12", "miou_car_5", "pck@0.05", "pck@0.1")
CHOOSE_BY = "miou_car_20"  # the figure fold 0 chooses the snapshot by

Snapshot = Callable[[int, Segmenter], None]  # (steps done, eval-mode model) -> None


def snapshot_steps(total: int, count: int) -> tuple[int, ...]:
    """`count` evenly spaced step counts ending at `total` (e.g. 1200, 4 -> 300 600 900 1200)."""
    return tuple(sorted({max(1, round(total * (i + 1) / count)) for i in range(count)}))


def train_with_snapshots(
    config: SegmentTrainConfig,  # the recipe; `epochs` sets the steps as in `fit`
    data: LabeledArrays,  # training images
    snapshots: tuple[int, ...],  # step counts at which `on_snapshot` sees the model
    on_snapshot: Snapshot,
) -> Segmenter:
    """Train like `fit` (module docstring) and return the final eval-mode model."""
    config = config.validate()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    model = Segmenter(config.model).to(device).train()
    weights = class_weights(data.part_ids, config.model.num_classes, config.class_weight_power)
    weights = None if weights is None else weights.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    steps_per_epoch = max(1, len(data) // config.batch)
    total = math.ceil(config.epochs * steps_per_epoch)
    calibration = (data.images[:1000], data.keypoints_xyv[:1000])
    for step in range(total):
        indices, draws = batch_indices(len(data), config.batch, config.seed, step)
        batch = tuple(t.to(device) for t in make_batch(data, indices, draws, config))
        lr = learning_rate(config, step, step / total)
        for group in optimizer.param_groups:
            group["lr"] = lr
        cross_entropy, heat_mse = loss_terms(model, batch, config, weights)
        optimizer.zero_grad(set_to_none=True)
        (cross_entropy + config.heatmap_weight * heat_mse).backward()
        optimizer.step()
        if step + 1 in snapshots or step + 1 == total:
            model.eval()
            threshold = calibrate_threshold(model, *calibration)
            model.config = dataclasses.replace(model.config, visible_threshold=threshold)
            if step + 1 in snapshots:
                on_snapshot(step + 1, model)
            model.train(step + 1 < total)
    return model


def fold_slices(count: int, folds: int) -> list[np.ndarray]:
    """Contiguous folds of `count` test images (sizes differ by at most one)."""
    return np.array_split(np.arange(count), folds)


def headline(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The protocol's figures from an `evaluate_predictions` dict."""
    seg, keypoints = metrics["segmentation"], metrics["keypoints"]
    return {
        "miou_car_20": seg["car_20"]["miou"],
        "miou_car_12": seg["car_12"]["miou"],
        "miou_car_5": seg["car_5"]["miou"],
        "pck@0.05": keypoints["pck@0.05"],
        "pck@0.1": keypoints["pck@0.1"],
    }


def fold_scores(model: Segmenter, test: LabeledArrays, folds: int) -> list[dict[str, Any]]:
    """[folds] headline figures of `model` on each fold of `test`."""
    parts, keypoints = predict(model, test.images)
    return [
        headline(
            evaluate_predictions(
                test.part_ids[rows], test.keypoints_xyv[rows], parts[rows], keypoints[rows]
            )
        )
        for rows in fold_slices(len(test), folds)
    ]


def choose_and_report(per_snapshot: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """{snapshot, choose_fold_score, mean, std} from {steps: [folds] figures} (module docstring)."""

    def choice_key(item: tuple[str, list[dict[str, Any]]]) -> tuple[float, int]:
        value = item[1][0][CHOOSE_BY]
        return (-math.inf if value is None else value, -int(item[0]))  # ties: the earlier one

    chosen, scores = max(per_snapshot.items(), key=choice_key)
    mean, std = {}, {}
    for name in FIGURES:
        values = [s[name] for s in scores[1:] if s[name] is not None]
        mean[name] = float(np.mean(values)) if values else None
        std[name] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {
        "snapshot": int(chosen),
        "choose_fold_score": scores[0][CHOOSE_BY],
        "mean": mean,
        "std": std,
    }
