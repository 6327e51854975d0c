"""run(ReconstructTrainConfig) -> ReconstructTrainResult: train the reconstruction network
through the differentiable renderer (`assetgan reconstruct train`, docs/reconstruct.md).

One step, in plain blocks:
    batch     images `batch_indices(step)`, mirrored where the flip draw says so (data.py)
    predict   model(images) -> Reconstruction (model.py)
    render    in each image's own camera (render.py); with multi-view data also in the camera of
              another view of the same car (`partners`), the `mv_` terms
    losses    view terms + shape terms, weighted (losses.py)
    check     a non-finite loss or gradient, or a loss above `divergence_factor` x the median of
              the last 50 steps for 3 steps running, stops the run with a one-line error; the
              last good checkpoint stays on disk
    update    Adam, gradients clipped to `grad_clip`
Multi-view data (view codes): the cameras are refined jointly, one correction per view code
(view_cameras.py, GANverse3D), unless `refine_cameras` is off.

Deterministic per seed: weights from `seed`; step s of epoch e uses the permutation
`default_rng([seed, e])` and flips from `default_rng([seed, e, 1])`; partner views from
`default_rng([seed, s, 2])`. With one torch thread on the CPU a resumed run continues exactly as
an uninterrupted one would.

Files in `out/` (each written atomically):
    config.json                   ReconstructTrainConfig.to_dict(); a rerun must match it
    state.safetensors, state.json model + Adam state + step, every `checkpoint_every` steps
                                  (and at step 0); a rerun of the same config resumes from it
    model.safetensors, model.json the network (kind reconstruct_net, config in the header),
                                  written with every state
    metrics.jsonl                 one line per `log_every` steps: the mean of every term, hard
                                  silhouette IoU, gradient norm, seconds
    view_cameras.json             the per-view-code camera corrections, with every state
                                  (multi-view data with `refine_cameras`)
    sheet.png                     input vs reconstruction (sheet.py) at the end
    val.json                      input-view figures on `val` (evaluate.py), when given
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assetgan.core.batches import batch_indices  # (indices, flip draws) of a step
from assetgan.core.checkpoint import load_state_into, load_tensors, save_tensors
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.fields import known_fields
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_json, atomic_write_text, read_json_object
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.reconstruct.data import (
    ArrayData,
    ReconstructBatch,
    ReconstructData,
    load_carworld,
    load_training_data,
)
from assetgan.inverse_graphics.reconstruct.evaluate import input_view_metrics
from assetgan.inverse_graphics.reconstruct.losses import (
    LossWeights,
    camera_loss,
    masked_mean,
    shape_terms,
    view_terms,
    weighted_total,
)
from assetgan.inverse_graphics.reconstruct.model import (
    ReconstructNet,
    ReconstructNetConfig,
    save_reconstructor,
)
from assetgan.inverse_graphics.reconstruct.render import render_reconstruction
from assetgan.inverse_graphics.reconstruct.sheet import reconstruction_sheet
from assetgan.inverse_graphics.reconstruct.view_cameras import ViewCameraCorrection

# Fields a resumed run may change (everything else must equal the saved config.json).
_FREE_FIELDS = ("out", "device", "steps", "minutes", "log_every", "checkpoint_every", "val")
_FREE_FIELDS = (*_FREE_FIELDS, "val_limit", "sheet_images")


@dataclass(frozen=True)
class ReconstructTrainConfig:
    """One `reconstruct train` run."""

    data: Path  # training images: a CarWorld split (ground-truth cameras and labels) or a
    # multi-view set (`multiview sample`: interpreter labels, PnP cameras, several views per car)
    out: Path  # run directory (module docstring); rerun with the same config to resume
    val: Path | None = None  # CarWorld split scored in the input view at the end (val.json)
    val_limit: int = 200  # images of `val` scored
    limit: int | None = None  # train on the first LIMIT images of `data`; None = all
    device: Device = Device.auto  # where the network trains
    model: ReconstructNetConfig = field(default_factory=ReconstructNetConfig)  # the network
    weights: LossWeights = field(default_factory=LossWeights)  # loss weights (losses.py)
    steps: int = 2000  # total optimiser steps of the run (a resume may raise it)
    minutes: float | None = None  # wall budget of this session; None = until `steps`
    batch: int = 16  # images per step
    lr: float = 1e-3  # Adam learning rate (constant)
    grad_clip: float = 10.0  # gradient norm clipped to this
    flip: float = 0.5  # probability of mirroring an image (and its labels and camera)
    seed: int = 0  # initialisation, image order, flips and partner views
    log_every: int = 25  # steps per metrics.jsonl line
    checkpoint_every: int = 200  # steps per saved state (and model)
    divergence_factor: float = 10.0  # stop when the loss exceeds this x its recent median
    sheet_images: int = 8  # rows of sheet.png (0: none)
    refine_cameras: bool = True  # multi-view data: learn a camera correction per view code

    def validate(self) -> ReconstructTrainConfig:
        self.model.validate()
        self.weights.validate()
        if self.steps < 1 or self.batch < 1 or self.lr <= 0 or self.grad_clip <= 0:
            raise AssetganError("need --steps >= 1, --batch >= 1, --lr > 0 and grad_clip > 0")
        if self.minutes is not None and self.minutes <= 0:
            raise AssetganError(f"--minutes must be > 0, got {self.minutes}")
        if not 0.0 <= self.flip <= 1.0:
            raise AssetganError(f"--flip must be in [0, 1], got {self.flip}")
        if self.limit is not None and self.limit < 1:
            raise AssetganError(f"--limit must be >= 1, got {self.limit}")
        if self.log_every < 1 or self.checkpoint_every < 1 or self.divergence_factor <= 1:
            raise AssetganError("need log_every >= 1, checkpoint_every >= 1, divergence > 1")
        if self.val_limit < 1 or self.sheet_images < 0:
            raise AssetganError("need val_limit >= 1 and sheet_images >= 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        out["device"] = Device(self.device).value
        out["model"] = self.model.to_dict()
        out["weights"] = self.weights.to_dict()
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ReconstructTrainConfig:
        values = known_fields(cls, obj, "reconstruct train config")
        try:
            for name in ("data", "out", "val"):
                if values.get(name) is not None:
                    values[name] = Path(values[name])
            values["device"] = Device(values.get("device", "auto"))
            values["model"] = ReconstructNetConfig.from_dict(values.get("model", {}))
            weights = known_fields(LossWeights, values.get("weights", {}), "loss weights")
            values["weights"] = LossWeights(**weights)
            return cls(**values)
        except (TypeError, ValueError) as error:
            raise AssetganError(f"reconstruct train config: {error}") from None

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the saved one."""
        return {k: v for k, v in self.to_dict().items() if k not in _FREE_FIELDS}


@dataclass(frozen=True)
class ReconstructTrainResult:
    """What a `reconstruct train` session wrote."""

    out: Path  # the run directory
    model: Path  # out/model.safetensors (the last saved network)
    step: int  # steps done in all (this session and the ones it resumed)
    resumed_from: int  # the step this session started at (0 = a new run)
    seconds: float  # wall time of this session
    images: int  # training images
    metrics: dict[str, float]  # mean of each term over the last logged window
    sheet: Path | None  # out/sheet.png
    val: dict[str, Any] | None  # input-view figures on `val` (evaluate.py)

    def summary(self) -> str:
        figures = "  ".join(f"{k} {v:.4g}" for k, v in self.metrics.items())
        line = f"step {self.step} ({self.seconds:.0f} s this session): {figures}\n{self.model}"
        if self.val:
            shown = {k: v for k, v in self.val.items() if isinstance(v, float)}
            line += "\nval: " + "  ".join(f"{k} {v:.3f}" for k, v in shown.items())
            guessed = self.val.get("predicted_camera", {}).get("silhouette_iou")
            if guessed is not None:
                line += f"  (predicted camera: silhouette_iou {guessed:.3f})"
        return line


def loss_terms(
    model: ReconstructNet,
    batch: ReconstructBatch,
    partner: ReconstructBatch | None,
    has_partner: torch.Tensor | None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """({term: scalar}, rendered coverage [B, H, W] in the input view): predict from the batch,
    render in its cameras and, where has_partner [B], in the partner views' cameras too."""
    reconstruction = model(batch.images)
    template = model.template_tables(batch.images.device)
    size = (batch.images.shape[-2], batch.images.shape[-1])

    rendered = render_reconstruction(reconstruction, template, batch.mvp, size)
    terms = {name: value.mean() for name, value in view_terms(rendered, batch).items()}
    half_length = model.config.template_shape.length / 2.0
    terms.update(shape_terms(reconstruction, template, half_length))
    if batch.camera_params is not None:
        terms["camera"] = camera_loss(reconstruction.camera, batch.camera_params).mean()
    if partner is not None and has_partner is not None and bool(has_partner.any()):
        other = render_reconstruction(reconstruction, template, partner.mvp, size)
        for name, value in view_terms(other, partner).items():
            terms[f"mv_{name}"] = masked_mean(value, has_partner)
    return terms, rendered.covered


def hard_iou(covered: torch.Tensor, masks: torch.Tensor) -> float:
    """Silhouette IoU of bool coverage and {0, 1} masks over a batch."""
    truth = masks > 0.5
    return float((covered & truth).sum()) / max(1, int((covered | truth).sum()))


# ---- run directory ------------------------------------------------------------------------------
def save_state(
    out: Path,
    model: ReconstructNet,
    optimizer: torch.optim.Adam,
    record: dict,
    correction: ViewCameraCorrection | None = None,
) -> None:
    """state.safetensors/.json (resumable) and model.safetensors/.json (the network); with a
    camera correction also its tensors (`correction.raw`) and view_cameras.json. Adam's
    per-parameter state is all tensors (step, exp_avg, exp_avg_sq): `adam.<index>.<name>`."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if correction is not None:
        tensors.update({f"correction.{k}": v for k, v in correction.state_dict().items()})
        views = {"step": record["step"], "views": correction.to_json()}
        atomic_write_json(out / "view_cameras.json", views)
    adam = optimizer.state_dict()
    for index, entries in adam["state"].items():
        tensors.update({f"adam.{index}.{name}": value for name, value in entries.items()})
    save_tensors(out / "state.safetensors", tensors)
    save_reconstructor(out / "model.safetensors", model, info=record)
    atomic_write_json(out / "state.json", {**record, "adam_groups": adam["param_groups"]})


def load_state(
    out: Path,
    model: ReconstructNet,
    optimizer: torch.optim.Adam,
    correction: ViewCameraCorrection | None = None,
) -> dict:
    """Restore model, camera correction and Adam from out/state.*; returns state.json."""
    record = read_json_object(out / "state.json")
    tensors, _ = load_tensors(out / "state.safetensors")
    model_state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    load_state_into(model, model_state, str(out / "state.safetensors"))
    if correction is not None:
        prefix = "correction."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        load_state_into(correction, state, str(out / "state.safetensors"))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("adam."):
            _, index, key = name.split(".", 2)
            per_param.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": record["adam_groups"]})
    return record


def prepare_run_dir(config: ReconstructTrainConfig) -> bool:
    """Create out/ or check it for a resume; True when a saved state is there to resume."""
    out = config.out
    saved = out / "config.json"
    if saved.is_file():
        before = ReconstructTrainConfig.from_dict(read_json_object(saved)).identity()
        now = config.identity()
        differ = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if differ:
            raise AssetganError(
                f"{out} holds a run with other settings ({', '.join(differ)}); resume with the "
                "same settings or choose another --out"
            )
    elif out.exists() and any(out.iterdir()):
        raise AssetganError(
            f"{out} is not empty and holds no reconstruct run; choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(saved, config.to_dict())
    return (out / "state.json").is_file() and (out / "state.safetensors").is_file()


def trim_metrics(path: Path, step: int) -> None:
    """Keep the metrics.jsonl lines of steps <= step (a resume rewrites what came after)."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def append_metrics(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


class _Divergence:
    """The stop rule of the module docstring."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.recent: deque[float] = deque(maxlen=50)
        self.strikes = 0

    def check(self, step: int, loss: float) -> str | None:
        if not np.isfinite(loss):
            return f"the loss is {loss} at step {step}"
        if len(self.recent) == self.recent.maxlen:
            median = float(np.median(self.recent))
            self.strikes = self.strikes + 1 if loss > self.factor * median else 0
            if self.strikes >= 3:
                return (
                    f"the loss diverged at step {step}: {loss:.4g} > {self.factor:g} x the "
                    f"median {median:.4g} of the last {len(self.recent)} steps, 3 steps running"
                )
        self.recent.append(loss)
        return None


# ---- training -----------------------------------------------------------------------------------
def run(config: ReconstructTrainConfig, progress: Progress | None = None) -> ReconstructTrainResult:
    """Load `config.data` (a CarWorld split or a multi-view set) and train (`train`)."""
    config.validate()
    data = load_training_data(config.data, config.limit, progress)
    val = load_carworld(config.val, config.val_limit, progress) if config.val else None
    return train(config, data, progress, val)


def train(
    config: ReconstructTrainConfig,
    data: ReconstructData,
    progress: Progress | None = None,
    val: ArrayData | None = None,
) -> ReconstructTrainResult:
    """Train on any `ReconstructData` (data.py); the run directory is `config.out`."""
    config.validate()
    if data.image_size != config.model.image_size:
        raise AssetganError(
            f"{config.data}: images are {data.image_size} px but the network takes "
            f"{config.model.image_size} px; set the model's image_size to {data.image_size}"
        )
    device = resolve_device(config.device)
    out = config.out
    resume = prepare_run_dir(config)
    torch.manual_seed(config.seed)
    model = ReconstructNet(config.model).to(device).train()
    correction = None
    view_codes = int(getattr(data, "view_codes", 0))
    if config.refine_cameras and view_codes > 0:
        correction = ViewCameraCorrection(view_codes).to(device)
    parameters = list(model.parameters())
    parameters += [] if correction is None else list(correction.parameters())
    optimizer = torch.optim.Adam(parameters, lr=config.lr)
    start = 0
    if resume:
        start = int(load_state(out, model, optimizer, correction)["step"])
    trim_metrics(out / "metrics.jsonl", start)
    record = {"step": start, "data": str(config.data), "images": len(data)}
    if not resume:
        save_state(out, model, optimizer, record, correction)
    began = time.monotonic()
    divergence = _Divergence(config.divergence_factor)
    window: list[dict[str, float]] = []
    last_window: dict[str, float] = {}
    saved_step = start
    step = start
    while step < config.steps:
        if config.minutes is not None and time.monotonic() - began > 60.0 * config.minutes:
            break
        # batch
        indices, draws = batch_indices(len(data), config.batch, config.seed, step)
        flip = draws < config.flip
        batch = data.batch(indices, flip).to(device)
        partners = data.partners(indices, np.random.default_rng([config.seed, step, 2]))
        partner = has_partner = None
        if config.weights.multiview > 0 and (partners >= 0).any():
            partner = data.batch(np.where(partners >= 0, partners, indices), flip).to(device)
            has_partner = torch.from_numpy(partners >= 0).to(device)
        if correction is not None:  # refined cameras (view_cameras.py)
            batch = correction.apply(batch)
            partner = None if partner is None else correction.apply(partner)
        # predict, render, losses
        terms, covered = loss_terms(model, batch, partner, has_partner)
        total, figures = weighted_total(terms, config.weights)
        # check
        problem = divergence.check(step, figures["total"])
        if problem is None:
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip))
            if not np.isfinite(norm):
                problem = f"the gradient norm is {norm} at step {step}"
        if problem is not None:
            append_metrics(out / "metrics.jsonl", {"step": step, "stopped": problem, **figures})
            raise AssetganError(
                f"training stopped: {problem}. The last good checkpoint is {out / 'model.safetensors'}"
                f" (step {saved_step}); lower --lr or check the data, then rerun to resume from it"
            )
        # update
        optimizer.step()
        step += 1
        figures.update(iou=hard_iou(covered, batch.masks), grad_norm=norm)
        window.append(figures)
        if step % config.log_every == 0 or step == config.steps:
            last_window = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            seconds = time.monotonic() - began
            append_metrics(out / "metrics.jsonl", {"step": step, "seconds": seconds, **last_window})
            message = f"step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in last_window.items())
            emit(progress, step, config.steps, "train", message, {"loss": last_window["total"]})
            window = []
        else:
            emit(progress, step, config.steps, "train", metrics={"loss": figures["total"]})
        if step % config.checkpoint_every == 0 or step == config.steps:
            state = {**record, "step": step, "metrics": last_window}
            save_state(out, model, optimizer, state, correction)
            saved_step = step
    if saved_step != step:  # a wall-budget stop
        state = {**record, "step": step, "metrics": last_window}
        save_state(out, model, optimizer, state, correction)
    return _finish(config, model, data, val, device, start, step, began, last_window)


def _finish(
    config: ReconstructTrainConfig,
    model: ReconstructNet,
    data: ReconstructData,
    val: ArrayData | None,
    device: str,
    start: int,
    step: int,
    began: float,
    metrics: dict[str, float],
) -> ReconstructTrainResult:
    """The sheet and the val figures of a finished session."""
    out = config.out
    sheet = None
    if config.sheet_images and isinstance(data, ArrayData):
        source = val if val is not None else data
        shown = np.arange(min(config.sheet_images, len(source)))
        sheet = atomic_write_png(
            out / "sheet.png", reconstruction_sheet(model, source, shown, device)
        )
    figures = None
    if val is not None:
        figures = input_view_metrics(model, val, device=device)
        guessed = input_view_metrics(model, val, device=device, camera="predicted")
        figures["predicted_camera"] = {k: v for k, v in guessed.items() if k != "images"}
        atomic_write_json(out / "val.json", {"step": step, "data": str(config.val), **figures})
    return ReconstructTrainResult(
        out=out,
        model=out / "model.safetensors",
        step=step,
        resumed_from=start,
        seconds=time.monotonic() - began,
        images=len(data),
        metrics=metrics,
        sheet=sheet,
        val=figures,
    )
