"""Training the Style Interpreter from an annotation set, on sampled pixels.

Blocks, in order:
1. Check the annotation set against the generator (hash, latent shape, image size).
2. Features: run the generator on every annotated latent and keep its taps at native resolution
   (NativeFeatureStore); nothing is up-sampled or concatenated for the whole image.
3. Targets: part ids with DatasetGAN's reset rule (a class with < 30 pixels in an image becomes
   background); Gaussian keypoint heatmaps computed per sampled pixel.
4. Per head (parts: cross-entropy; keypoints: masked L2), all N members in one batched loop: each
   member draws its own shuffled pixels, the paper's early stopping is applied per member and a
   stopped member's weights are frozen at that iteration (restored from a snapshot at the end).

`run` is the `interpreter train` stage: load the set and the generator, check they belong
together (checks.py), train, and write the checkpoint (checkpoint.py). Progress: task "features"
(done = images), then "parts" and "keypoints" (done = iterations; metrics loss and active
members; every 50th iteration carries a log line as its message).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from assetgan.core.device import resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotations import IGNORE_ID, AnnotationSet
from assetgan.pipeline.interpreter.checkpoint import save_interpreter
from assetgan.pipeline.interpreter.checks import check_generator_match
from assetgan.pipeline.interpreter.config import (
    FeatureDtype,
    InterpreterConfig,
    InterpreterTrainConfig,
    InterpreterTrainSettings,
)
from assetgan.pipeline.interpreter.features import (
    MaterialisedFeatureStore,
    NativeFeatureStore,
    TapGeometry,
)
from assetgan.pipeline.interpreter.model import Interpreter, PixelEnsemble
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator

FeatureStore = NativeFeatureStore | MaterialisedFeatureStore
LOG_EVERY = 50  # iterations between the log lines of a head (progress event messages)


@dataclass(frozen=True)
class InterpreterTrainResult:
    """What `interpreter train` wrote (the checkpoint's info holds the full training record)."""

    out: Path  # the interpreter checkpoint (.safetensors; .json sidecar beside it)
    images: int  # annotated images trained on
    feature_bytes: int  # memory of the native feature maps
    train_seconds: float  # wall time of feature extraction and training
    iterations: Mapping[str, int]  # head ("parts", "keypoints") -> iterations run
    stopped_at: Mapping[str, tuple[int, ...]]  # head -> the iteration each member stopped at


def run(config: InterpreterTrainConfig, progress: Progress | None = None) -> InterpreterTrainResult:
    """Train the interpreter on `config.annotations` and write `config.out` (module docstring)."""
    config.validate()
    annotation_set = AnnotationSet.load(config.annotations)
    device = resolve_device(config.device)
    generator = load_generator(config.generator, device=device)
    sha = file_sha256(config.generator)
    check_generator_match(annotation_set, sha, config.annotations, config.generator)
    started = time.perf_counter()
    interpreter = train(annotation_set, generator, sha, config.training, device, progress)
    interpreter.summary["train_seconds"] = round(time.perf_counter() - started, 2)
    save_interpreter(interpreter, config.out)
    summary = interpreter.summary
    heads = [h for h in ("parts", "keypoints") if isinstance(summary.get(h), dict)]
    return InterpreterTrainResult(
        out=Path(config.out),
        images=summary["images"],
        feature_bytes=summary["feature_bytes"],
        train_seconds=summary["train_seconds"],
        iterations={h: summary[h]["iterations"] for h in heads},
        stopped_at={h: tuple(m["iteration"] for m in summary[h]["members"]) for h in heads},
    )


def generator_geometry(generator: Generator) -> TapGeometry:
    """The taps of `generator` and where its (cropped) image sits on the canvas."""
    config = generator.config
    return TapGeometry(
        tuple(generator.synthesis.feature_taps()), config.resolution, config.crop_rows
    )


def check_annotations(
    annotations: AnnotationSet, generator: Generator, generator_sha: str, where: str
) -> None:
    """Raise AssetganError when the set's latents do not belong to this generator."""
    if not annotations.samples:
        raise AssetganError(f"{where}: the annotation set has no samples")
    check_generator_match(annotations, generator_sha, where)
    sample = annotations.samples[0]
    expected_ws = (generator.num_ws, generator.w_dim)
    if tuple(sample.ws.shape) != expected_ws:
        raise AssetganError(
            f"{where}: latents are {list(sample.ws.shape)}, the generator takes {list(expected_ws)}"
        )
    _c, height, width = generator.config.image_shape
    if sample.image_size != (height, width):
        raise AssetganError(
            f"{where}: masks are {list(sample.image_size)} (H, W), the generator makes "
            f"{[height, width]} images"
        )


@torch.no_grad()
def extract_features(
    generator: Generator,
    ws: torch.Tensor,  # [I, num_ws, w_dim]
    store: FeatureStore,
    batch: int = 1,  # images per generator forward
    progress: Progress | None = None,  # task "features", done = images
) -> FeatureStore:
    """Run the synthesis network (constant noise) on every latent and add its taps to `store`."""
    device = generator.mapping.w_avg.device
    count = ws.shape[0]
    emit(progress, 0, count, task="features")
    for start in range(0, count, batch):
        block = ws[start : start + batch].to(device)
        _images, features = generator.synthesis(block, noise_mode="const", return_features=True)
        store.add(features)
        del features
        emit(progress, min(start + batch, count), count, task="features")
    return store


def reset_small_classes(part_ids: np.ndarray, min_pixels: int) -> np.ndarray:
    """[H, W] uint8: classes with fewer than `min_pixels` pixels become 0 (ignore id kept)."""
    out = part_ids.copy()
    ids, counts = np.unique(out, return_counts=True)
    for class_id, count in zip(ids, counts, strict=True):
        if class_id not in (0, IGNORE_ID) and count < min_pixels:
            out[out == class_id] = 0
    return out


def _member_generators(seed: int, head: int, members: int) -> list[torch.Generator]:
    return [
        torch.Generator().manual_seed(seed * 1_000_003 + head * 1009 + m) for m in range(members)
    ]


def train_head(
    ensemble: PixelEnsemble,
    store: FeatureStore,
    pool: torch.Tensor,  # [P] int64 flat pixel ids (image * H * W + row * W + col) of an epoch
    loss_fn: Callable[
        [torch.Tensor, torch.Tensor], torch.Tensor
    ],  # (out [N,M,K], ids [N,M]) -> [N]
    config: InterpreterTrainSettings,
    head: int,  # 0 = parts, 1 = keypoints (seeds the member streams)
    name: str,  # head name: the progress task
    focus: torch.Tensor | None = None,  # [Q] pixel ids drawn for `config.keypoint_focus` of a batch
    progress: Progress | None = None,  # done = iterations (module docstring)
) -> dict[str, Any]:
    """Adam on all members at once with per-member shuffles and early stopping -> summary."""
    height, width = store.geometry.image_size
    members = ensemble.members
    device = ensemble.w1.device
    streams = _member_generators(config.seed, head, members)
    focused = (
        0
        if focus is None or focus.numel() == 0
        else round(config.batch_pixels * config.keypoint_focus)
    )
    uniform = config.batch_pixels - focused
    steps_per_epoch = math.ceil(pool.numel() / uniform)
    bound = config.max_epochs * steps_per_epoch  # iterations if no member stops early
    total = bound if config.max_iterations is None else min(bound, config.max_iterations)
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=config.lr, foreach=True)
    best = [math.inf] * members
    since_best = [0] * members
    stopped: list[dict[str, Any] | None] = [None] * members
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    iteration = 0
    last_losses = [math.nan] * members
    ensemble.train()
    for epoch in range(config.max_epochs):
        orders = [pool[torch.randperm(pool.numel(), generator=g)] for g in streams]
        for step in range(steps_per_epoch):
            # ---- batch: member m's own pixels ------------------------------------------------
            ids = torch.stack([order[step * uniform : (step + 1) * uniform] for order in orders])
            if ids.shape[1] < 2:
                continue  # a 1-pixel tail cannot be batch-normalised
            if focused:
                picks = torch.stack(
                    [torch.randint(focus.numel(), (focused,), generator=g) for g in streams]
                )
                ids = torch.cat([ids, focus[picks]], dim=1)
            flat = ids.reshape(-1)
            image = flat // (height * width)
            row = (flat // width) % height
            col = flat % width
            features = store.gather(image, row, col).view(members, ids.shape[1], -1).to(device)
            # ---- step -----------------------------------------------------------------------
            losses = loss_fn(ensemble(features), ids)  # [N]
            optimizer.zero_grad(set_to_none=True)
            losses.sum().backward()
            optimizer.step()
            iteration += 1
            last_losses = losses.detach().cpu().tolist()
            # ---- early stopping, per member (DatasetGAN: after epoch 3, patience 50) ----------
            for m in range(members):
                if stopped[m] is not None or epoch <= config.early_stop_epoch:
                    continue
                if last_losses[m] < best[m]:
                    best[m], since_best[m] = last_losses[m], 0
                else:
                    since_best[m] += 1
                if since_best[m] > config.patience:
                    stopped[m] = {"iteration": iteration, "epoch": epoch, "loss": last_losses[m]}
                    snapshots[m] = ensemble.member_state(m)
            active = sum(s is None for s in stopped)
            if progress is not None:
                loss = float(np.mean(last_losses))
                message = ""
                if iteration % LOG_EVERY == 0 or active == 0:
                    message = (
                        f"  {name:9s} it {iteration:7d}  epoch {epoch:3d}  loss {loss:.4f}  "
                        f"active {active}"
                    )
                metrics = {"loss": loss, "active": active}
                emit(progress, iteration, total, task=name, message=message, metrics=metrics)
            capped = config.max_iterations is not None and iteration >= config.max_iterations
            if active == 0 or capped:
                break
        else:
            continue
        break
    for m, state in snapshots.items():
        ensemble.load_member_state(m, state)
    ensemble.eval()
    emit(progress, iteration, iteration, task=name)  # done: early stopping may end before `total`
    return {
        "iterations": iteration,
        "steps_per_epoch": steps_per_epoch,
        "pool_pixels": int(pool.numel()),
        "members": [
            s if s is not None else {"iteration": iteration, "epoch": None, "loss": last_losses[m]}
            for m, s in enumerate(stopped)
        ],
    }


def part_targets(annotations: AnnotationSet, min_pixels: int) -> torch.Tensor:
    """[I * H * W] int64 part ids after the reset rule (IGNORE_ID kept)."""
    masks = [reset_small_classes(s.part_ids, min_pixels) for s in annotations.samples]
    return torch.from_numpy(np.stack(masks).astype(np.int64)).reshape(-1)


def keypoint_heatmaps(
    ids: torch.Tensor,  # [...] flat pixel ids
    keypoints: torch.Tensor,  # [I, K, 3] (x, y, v)
    image_size: tuple[int, int],
    sigma: float,  # pixels
    amplitudes: tuple[float, float],  # (visible, occluded)
) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets [..., K], weights [..., K]): Gaussian heat at each pixel centre; weight 0 = v 0."""
    height, width = image_size
    image = ids // (height * width)
    y = ((ids // width) % height).to(torch.float32) + 0.5
    x = (ids % width).to(torch.float32) + 0.5
    kp = keypoints[image]  # [..., K, 3]
    dist2 = (x.unsqueeze(-1) - kp[..., 0]) ** 2 + (y.unsqueeze(-1) - kp[..., 1]) ** 2
    vis = kp[..., 2]
    amplitude = torch.where(vis >= 2, amplitudes[0], amplitudes[1])
    weight = (vis > 0).to(torch.float32)
    return amplitude * torch.exp(-dist2 / (2 * sigma * sigma)) * weight, weight


def near_keypoint_pixels(
    keypoints: torch.Tensor, image_size: tuple[int, int], radius: float
) -> torch.Tensor:
    """[Q] flat ids of pixels whose centre lies within `radius` of a labeled keypoint."""
    height, width = image_size
    found = []
    for image, rows in enumerate(keypoints):
        for x, y, v in rows.tolist():
            if v <= 0:
                continue
            r = torch.arange(max(0, int(y - radius)), min(height, int(y + radius) + 1))
            c = torch.arange(max(0, int(x - radius)), min(width, int(x + radius) + 1))
            rr, cc = torch.meshgrid(r, c, indexing="ij")
            inside = (cc + 0.5 - x) ** 2 + (rr + 0.5 - y) ** 2 <= radius * radius
            found.append((image * height * width + rr * width + cc)[inside])
    return torch.unique(torch.cat(found)) if found else torch.zeros(0, dtype=torch.int64)


def train(
    annotations: AnnotationSet,
    generator: Generator,
    generator_sha: str,  # file_sha256 of the generator checkpoint
    config: InterpreterTrainSettings = InterpreterTrainSettings(),
    device: str | torch.device = "cpu",
    progress: Progress | None = None,  # module docstring
    store: FeatureStore | None = None,  # default: NativeFeatureStore (the reference: Materialised)
) -> Interpreter:
    """Train the part (and keypoint) ensembles on `annotations` -> an eval-mode Interpreter."""
    config.validate()
    check_annotations(annotations, generator, generator_sha, "interpreter train")
    geometry = generator_geometry(generator)
    height, width = geometry.image_size
    # ---- features ---------------------------------------------------------------------------
    if store is None:
        dtype = torch.float16 if config.feature_dtype == FeatureDtype.float16 else torch.float32
        store = NativeFeatureStore(geometry, len(annotations.samples), dtype=dtype, device=device)
    ws = torch.from_numpy(np.stack([s.ws for s in annotations.samples]))
    extract_features(generator, ws, store, progress=progress)
    seed_gen = torch.Generator().manual_seed(config.seed)
    summary: dict[str, Any] = {"images": len(annotations.samples), "feature_bytes": store.nbytes()}
    # ---- parts ------------------------------------------------------------------------------
    labels = part_targets(annotations, config.min_class_pixels)
    pool = torch.nonzero(labels != IGNORE_ID).squeeze(1)
    if pool.numel() < config.batch_pixels:
        raise AssetganError(f"interpreter train: only {pool.numel()} labeled pixels in the set")
    parts = PixelEnsemble(
        config.members, geometry.channels, annotations.num_classes, generator=seed_gen
    )
    parts.to(device)
    labels_dev = labels.to(device)

    def part_loss(out: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        target = labels_dev[ids.to(device)]  # [N, M]
        return F.cross_entropy(out.permute(0, 2, 1), target, reduction="none").mean(dim=1)

    summary["parts"] = train_head(
        parts, store, pool, part_loss, config, 0, "parts", progress=progress
    )
    # ---- keypoints --------------------------------------------------------------------------
    keypoints_ens = None
    sigma = config.heatmap_sigma * width
    amplitudes = (config.visible_amplitude, config.occluded_amplitude)
    kp = torch.from_numpy(np.stack([s.keypoints_xyv for s in annotations.samples]))
    if config.keypoints and bool((kp[..., 2] > 0).any()):
        keypoints_ens = PixelEnsemble(
            config.members, geometry.channels, annotations.num_keypoints, generator=seed_gen
        ).to(device)
        kp_dev = kp.to(device)

        def heat_loss(out: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
            target, weight = keypoint_heatmaps(
                ids.to(device), kp_dev, (height, width), sigma, amplitudes
            )
            return ((out - target) ** 2 * weight).sum(dim=(1, 2)) / weight.sum(
                dim=(1, 2)
            ).clamp_min(1)

        all_pixels = torch.arange(len(annotations.samples) * height * width)
        near = near_keypoint_pixels(kp, (height, width), 3 * sigma)
        summary["keypoints"] = train_head(
            keypoints_ens, store, all_pixels, heat_loss, config, 1, "keypoints", near, progress
        )
    elif config.keypoints:
        summary["keypoints"] = "skipped: the annotation set has no labeled keypoints"
    interpreter_config = InterpreterConfig(
        generator_sha256=generator_sha,
        generator_config=generator.config.to_dict(),
        taps=tuple((t.name, t.channels, t.resolution) for t in geometry.taps),
        canvas=geometry.canvas,
        crop_rows=geometry.crop_rows,
        taxonomy=annotations.taxonomy,
        class_names=tuple(annotations.class_names),
        keypoint_names=tuple(annotations.keypoint_names),
        members=config.members,
        parts_hidden=tuple(parts.hidden),
        keypoint_hidden=None if keypoints_ens is None else tuple(keypoints_ens.hidden),
        heatmap_sigma_px=sigma,
        visible_amplitude=config.visible_amplitude,
        occluded_amplitude=config.occluded_amplitude,
        train=config.to_dict(),
    )
    return Interpreter(interpreter_config, parts, keypoints_ens, summary).eval()
