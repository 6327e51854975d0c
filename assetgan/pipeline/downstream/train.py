"""run(SegmentTrainConfig) -> SegmentTrainResult: fit the downstream segmenter on a labeled
directory (`fit` does the same on arrays already in memory).

Loss = cross-entropy over car_20 ids (IGNORE_ID pixels skipped) + heatmap_weight * mean squared
error of the 12 keypoint heatmaps (unit Gaussians at visible keypoints, zero elsewhere). Adam,
linear warm-up then cosine decay over the run (over the epochs, or over the wall budget).

Deterministic per seed: the weights are initialised from `seed`, epoch e visits the images in the
order `default_rng([seed, e]).permutation(N)` and flips those where `default_rng([seed, e, 1])`
says so; one torch thread on CPU then gives the same weights for the same steps. (A wall budget
decides how many steps run, and the cosine follows the clock, so `minutes` runs are not.)

At the end the keypoint visibility threshold (heatmap peak) is chosen on up to 1000 training
images (predict.calibrate_threshold) and stored in the checkpoint's config.

Files in `out/` (every one written atomically; a kill never leaves a half-written file):
    segmenter.safetensors / .json   the model (checkpoint.py), written at the end
    state.safetensors / state.json  model + Adam moments + step, every `save_every_minutes`;
                                    a rerun with the same config resumes from it
    log.jsonl                       one line per `log_every` steps (loss, lr, seconds)
    config.json                     the training settings (SegmentTrainConfig.to_dict())
    val_metrics.json                `segment eval`'s metrics on `val`, when given
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from assetgan.assets.taxonomy import IGNORE_ID
from assetgan.core.batches import batch_indices
from assetgan.core.checkpoint import load_state_into, load_tensors, save_tensors
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json, atomic_write_text, read_json_object
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.downstream.checkpoint import load_segmenter, save_segmenter
from assetgan.pipeline.downstream.config import SegmenterConfig
from assetgan.pipeline.downstream.data import (
    LabeledArrays,
    flip_x,
    gaussian_heatmaps,
    load_labeled,
)
from assetgan.pipeline.downstream.evaluate import SegmentScores, evaluate_predictions
from assetgan.pipeline.downstream.model import Segmenter
from assetgan.pipeline.downstream.predict import calibrate_threshold, predict

# Inputs, output and device: recorded in the checkpoint info (data, val, init), not in to_dict().
_RUN_FIELDS = ("data", "out", "val", "init", "limit", "device")


@dataclass(frozen=True)
class SegmentTrainConfig:
    """One `segment train` run. `to_dict()` (out/config.json, the checkpoint info's "train") holds
    the training settings; the inputs go into the checkpoint info as data / val / init."""

    data: Path  # training set: a CarWorld split or a generated dataset directory
    out: Path  # run directory (module docstring); rerun with the same config to resume
    val: Path | None = None  # labeled set evaluated once at the end; it chooses nothing
    init: Path | None = None  # start a new run from this segmenter's weights (same network)
    limit: int | None = None  # use only the first LIMIT images of `data`; None = all
    device: Device = Device.auto  # where the network trains
    model: SegmenterConfig = field(default_factory=SegmenterConfig)  # the network
    epochs: float | None = None  # passes over the data; None = until the wall budget ends
    minutes: float | None = None  # wall budget of this run; None = until `epochs` are done
    batch: int = 32  # images per step
    lr: float = 2e-3  # Adam learning rate after warm-up
    warmup_steps: int = 100  # linear warm-up
    final_lr_fraction: float = 0.02  # the cosine ends at lr * this
    heatmap_weight: float = 300.0  # weight of the heatmap MSE against the cross-entropy
    class_weight_power: float = 0.0  # cross-entropy class weights (1 / pixel frequency) ** this,
    # scaled so the mean weight per pixel is 1; 0 = plain cross-entropy, 0.5 = square root
    flip: float = 0.5  # probability of the x-flip (keypoints swap left/right)
    seed: int = 0  # initialisation, image order and flips
    log_every: int = 50  # steps between log.jsonl lines
    save_every_minutes: float = 5.0  # resumable state at least this often

    def validate(self) -> SegmentTrainConfig:
        self.model.validate()
        if self.epochs is None and self.minutes is None:
            raise AssetganError("give --epochs or --minutes (or both: whichever ends first)")
        if (self.epochs is not None and self.epochs <= 0) or (
            self.minutes is not None and self.minutes <= 0
        ):
            raise AssetganError("--epochs and --minutes must be > 0")
        if self.batch < 1 or self.lr <= 0 or not 0 <= self.flip <= 1:
            raise AssetganError("need batch >= 1, lr > 0 and 0 <= flip <= 1")
        if self.limit is not None and self.limit < 1:
            raise AssetganError(f"--limit must be >= 1, got {self.limit}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The training settings as JSON (every field but the inputs, output and device)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _RUN_FIELDS}
        out["model"] = self.model.to_dict()
        return out

    def identity(self) -> dict[str, Any]:
        """The fields a resumed run must share with the saved state."""
        keep = ("model", "batch", "lr", "warmup_steps", "heatmap_weight", "flip", "seed")
        keep = (*keep, "class_weight_power")
        return {k: v for k, v in self.to_dict().items() if k in keep}


def make_batch(
    data: LabeledArrays, indices: np.ndarray, flip_draws: np.ndarray, config: SegmentTrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images [B, 3, H, W] float 0..255, part ids [B, H, W] int64, heatmaps [B, K, H, W])."""
    images = data.images[indices]
    parts = data.part_ids[indices]
    keypoints = data.keypoints_xyv[indices]
    flip = flip_draws < config.flip
    if flip.any():
        images, parts, keypoints = images.copy(), parts.copy(), keypoints.copy()
        images[flip], parts[flip], keypoints[flip] = flip_x(
            images[flip], parts[flip], keypoints[flip]
        )
    height, width = parts.shape[1:]
    heat = gaussian_heatmaps(keypoints, height, width, config.model.heatmap_sigma)
    return (
        torch.from_numpy(images).permute(0, 3, 1, 2).float(),
        torch.from_numpy(parts.astype(np.int64)),
        torch.from_numpy(heat),
    )


def class_weights(part_ids: np.ndarray, num_classes: int, power: float) -> torch.Tensor | None:
    """[C] float32 cross-entropy weights (SegmentTrainConfig.class_weight_power), None for power 0."""
    if power == 0:
        return None
    counts = np.bincount(part_ids[part_ids != IGNORE_ID].ravel(), minlength=num_classes)
    frequency = counts[:num_classes] / max(1, counts.sum())
    weights = np.where(frequency > 0, np.maximum(frequency, 1e-12) ** -power, 0.0)
    weights = weights / max(1e-12, float((weights * frequency).sum()))  # mean 1 per pixel
    return torch.tensor(weights, dtype=torch.float32)


def loss_terms(
    model: Segmenter,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    config: SegmentTrainConfig,
    weights: torch.Tensor | None = None,  # [C] class weights of the cross-entropy
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy, heatmap MSE) of one batch."""
    images, parts, heat = batch
    logits, predicted_heat = model(images)
    cross_entropy = F.cross_entropy(logits, parts, weight=weights, ignore_index=IGNORE_ID)
    return cross_entropy, F.mse_loss(predicted_heat, heat)


def learning_rate(config: SegmentTrainConfig, step: int, fraction: float) -> float:
    warm = min(1.0, (step + 1) / max(1, config.warmup_steps))
    floor = config.final_lr_fraction
    cosine = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))
    return config.lr * warm * cosine


# ---- resumable state --------------------------------------------------------------------------


def _save_state(out: Path, model: Segmenter, optimizer: torch.optim.Adam, state: dict) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    for index, parameter in enumerate(model.parameters()):
        moments = optimizer.state.get(parameter)
        if moments:
            tensors[f"adam.{index}.exp_avg"] = moments["exp_avg"]
            tensors[f"adam.{index}.exp_avg_sq"] = moments["exp_avg_sq"]
            tensors[f"adam.{index}.step"] = torch.as_tensor(moments["step"]).reshape(1).float()
    save_tensors(out / "state.safetensors", tensors, {"state": json.dumps(state)})
    atomic_write_json(out / "state.json", state)  # a copy for people; the header is the truth


def _load_state(
    out: Path, model: Segmenter, optimizer: torch.optim.Adam, identity: dict
) -> dict | None:
    path = out / "state.safetensors"
    if not path.is_file():
        return None
    tensors, metadata = load_tensors(path)
    state = json.loads(metadata.get("state", "{}"))
    if state.get("identity") != identity:
        raise AssetganError(
            f"{path}: saved by a run with another config; use a new --out or delete {out}"
        )
    load_state_into(
        model,
        {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")},
        str(path),
    )
    for index, parameter in enumerate(model.parameters()):
        if f"adam.{index}.exp_avg" in tensors:
            optimizer.state[parameter] = {
                "step": tensors[f"adam.{index}.step"].reshape(()),
                "exp_avg": tensors[f"adam.{index}.exp_avg"].clone(),
                "exp_avg_sq": tensors[f"adam.{index}.exp_avg_sq"].clone(),
            }
    return state


# ---- the loop ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentTrainResult:
    """What a `segment train` run wrote."""

    checkpoint: Path  # out/segmenter.safetensors (the model; checkpoint.py)
    images: int  # training images read
    steps: int  # optimiser steps in all (resumed runs included)
    epochs: float  # steps / steps per epoch
    seconds: float  # training wall time in all (resumed runs included)
    visible_threshold: float  # keypoint visibility threshold chosen on training images
    val_metrics: Path | None  # out/val_metrics.json when `val` was given
    val_scores: SegmentScores | None  # its headline figures


def run(config: SegmentTrainConfig, progress: Progress | None = None) -> SegmentTrainResult:
    """Read `config.data` (and `config.val`), then train or resume (`fit`)."""
    config = config.validate()
    data = load_labeled(config.data, limit=config.limit, progress=progress)
    val = load_labeled(config.val, progress=progress) if config.val is not None else None
    return fit(config, data, val, progress)


def _check_out(config: SegmentTrainConfig) -> Path:
    """config.out, when it is new, empty or a run of the same training settings."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise AssetganError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise AssetganError(f"{out}: not empty and not a segmenter training directory")
    if out.is_dir() and (out / "config.json").is_file():
        previous = read_json_object(out / "config.json")
        if {k: previous.get(k) for k in config.identity()} != config.identity():
            raise AssetganError(
                f"{out}: holds a run with another config; use a new --out or delete it"
            )
    return out


def fit(
    config: SegmentTrainConfig,
    data: LabeledArrays,  # the training images (config.data is recorded, not read)
    val: LabeledArrays | None = None,  # evaluated at the end (metrics in the checkpoint info)
    progress: Progress | None = None,  # steps, or seconds under a wall budget without epochs
) -> SegmentTrainResult:
    """Train (or resume) on arrays in memory and write config.out/segmenter.safetensors."""
    config = config.validate()
    out = _check_out(config)
    device = resolve_device(config.device)
    init = config.init
    if len(data) < config.batch:
        raise AssetganError(f"{data.root}: {len(data)} images, fewer than --batch {config.batch}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", config.to_dict())

    # -- model, optimiser, resume
    torch.manual_seed(config.seed)
    model = Segmenter(config.model).to(device).train()
    if init is not None and not (out / "state.safetensors").is_file():
        start_model, _ = load_segmenter(init)
        same = dataclasses.replace(start_model.config, visible_threshold=0.0)
        if same != dataclasses.replace(config.model, visible_threshold=0.0):
            raise AssetganError(f"--init {init}: its network config differs from this run's")
        model.load_state_dict(start_model.state_dict())
    weights = class_weights(data.part_ids, config.model.num_classes, config.class_weight_power)
    if weights is not None:
        weights = weights.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = _load_state(out, model, optimizer, config.identity()) or {
        "identity": config.identity(),
        "step": 0,
        "seconds": 0.0,
    }
    steps_per_epoch = max(1, len(data) // config.batch)
    total_steps = math.ceil(config.epochs * steps_per_epoch) if config.epochs is not None else None
    budget = config.minutes * 60 if config.minutes is not None else None
    start, last_save = time.time(), time.time()
    seconds_before = state["seconds"]
    log_lines: list[str] = []
    running = {"ce": 0.0, "heat": 0.0, "count": 0}

    def fraction() -> float:
        by_steps = state["step"] / total_steps if total_steps else 0.0
        by_time = (time.time() - start) / budget if budget else 0.0
        return max(by_steps, by_time)

    def flush_log() -> None:
        if log_lines:
            path = out / "log.jsonl"
            old = path.read_text(encoding="utf-8") if path.is_file() else ""
            atomic_write_text(path, old + "".join(log_lines))
            log_lines.clear()

    # -- steps
    while True:
        if total_steps is not None and state["step"] >= total_steps:
            break
        if budget is not None and time.time() - start >= budget:
            break
        indices, draws = batch_indices(len(data), config.batch, config.seed, state["step"])
        images, parts, heat = (t.to(device) for t in make_batch(data, indices, draws, config))
        lr = learning_rate(config, state["step"], fraction())
        for group in optimizer.param_groups:
            group["lr"] = lr
        cross_entropy, heat_mse = loss_terms(model, (images, parts, heat), config, weights)
        loss = cross_entropy + config.heatmap_weight * heat_mse
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["step"] += 1
        losses = {"cross_entropy": cross_entropy.item(), "heatmap_mse": heat_mse.item()}
        running["ce"] += losses["cross_entropy"]
        running["heat"] += losses["heatmap_mse"]
        running["count"] += 1
        if state["step"] % config.log_every == 0:
            count = running["count"]
            line = {
                "step": state["step"],
                "epoch": round(state["step"] / steps_per_epoch, 3),
                "cross_entropy": round(running["ce"] / count, 5),
                "heatmap_mse": round(running["heat"] / count, 7),
                "lr": round(lr, 7),
                "seconds": round(seconds_before + time.time() - start, 1),
            }
            log_lines.append(json.dumps(line, sort_keys=True) + "\n")
            running = {"ce": 0.0, "heat": 0.0, "count": 0}
        if budget is not None and total_steps is None:
            seconds = min(int(time.time() - start), int(budget))
            emit(progress, seconds, int(budget), task="training (seconds)", metrics=losses)
        else:
            emit(progress, state["step"], total_steps, task="training (steps)", metrics=losses)
        if time.time() - last_save >= config.save_every_minutes * 60:
            state["seconds"] = seconds_before + time.time() - start
            _save_state(out, model, optimizer, state)
            flush_log()
            last_save = time.time()

    # -- final files
    state["seconds"] = seconds_before + time.time() - start
    _save_state(out, model, optimizer, state)
    flush_log()
    model.eval()
    # -- keypoint visibility threshold from (up to 1000) training images, never from `val`
    threshold = calibrate_threshold(model, data.images[:1000], data.keypoints_xyv[:1000])
    model.config = dataclasses.replace(model.config, visible_threshold=threshold)
    metrics = None
    if val is not None:
        predicted_parts, predicted_keypoints = predict(model, val.images)
        metrics = evaluate_predictions(
            val.part_ids, val.keypoints_xyv, predicted_parts, predicted_keypoints
        )
        atomic_write_json(out / "val_metrics.json", metrics)
    record = {
        "train": config.to_dict(),
        "data": str(data.root),
        "data_kind": data.kind,
        "images": len(data),
        "steps": state["step"],
        "epochs": round(state["step"] / steps_per_epoch, 3),
        "seconds": round(state["seconds"], 1),
        "visible_threshold": threshold,
        "init": None if init is None else str(init),
        "val": None if val is None else str(val.root),
        "val_miou_car_20": None if metrics is None else metrics["segmentation"]["car_20"]["miou"],
    }
    checkpoint = save_segmenter(model, out / "segmenter.safetensors", info=record)
    return SegmentTrainResult(
        checkpoint=checkpoint,
        images=len(data),
        steps=state["step"],
        epochs=record["epochs"],
        seconds=record["seconds"],
        visible_threshold=threshold,
        val_metrics=None if metrics is None else out / "val_metrics.json",
        val_scores=None if metrics is None else SegmentScores.from_metrics(metrics),
    )
