"""Labels from the ensemble: majority vote, JS uncertainty, image score, keypoints from heatmaps.

All label math lives here; `predict` runs generator + interpreter over latents, by the
factorised forward (default) or the materialised reference. DatasetGAN's rules (ANCHORS.md):
per-pixel mode of the N argmaxes (ties go to the smallest id, as scipy.stats.mode does),
JS = H(mean softmax) - mean H(softmax), image score = mean of the top 10% pixel JS values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from assetgan.pipeline.interpreter.model import Interpreter, forward_maps, forward_maps_materialised
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import to_uint8


def majority_vote(member_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[N, ...] int64 argmaxes -> [...] int64 most frequent label (smallest id on ties)."""
    counts = torch.zeros((num_classes,) + tuple(member_labels.shape[1:]), dtype=torch.int32)
    counts = counts.to(member_labels.device)
    counts.scatter_add_(0, member_labels, torch.ones_like(member_labels, dtype=torch.int32))
    return counts.argmax(dim=0)  # first maximum = smallest id


def js_uncertainty(probs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """[N, K, ...] member softmaxes -> [...] JS = H(mean_n p) - mean_n H(p) (nats, >= 0)."""
    mean = probs.mean(dim=0)
    entropy_of_mean = -torch.xlogy(mean, mean).sum(dim=dim - 1)
    mean_entropy = -torch.xlogy(probs, probs).sum(dim=dim).mean(dim=0)
    return (entropy_of_mean - mean_entropy).clamp_min(0.0)


def image_score(js: np.ndarray | torch.Tensor, top_fraction: float = 0.1) -> float:
    """Mean of the top `top_fraction` of an image's pixel JS values (at least one pixel)."""
    values = torch.as_tensor(js, dtype=torch.float64).reshape(-1)
    count = max(1, math.ceil(top_fraction * values.numel()))
    return float(torch.topk(values, count).values.mean())


def decode_keypoints(
    heatmaps: np.ndarray,  # [K, H, W] ensemble-mean heatmaps
    visible_min: float,  # peak >= this -> v = 2
    present_min: float,  # peak >= this -> v = 1; below -> v = 0 (x = y = 0)
) -> np.ndarray:
    """[K, 4] float32 (x, y, v, peak): pixel-coordinate peaks refined by a 3-point parabola per axis.

    x, y are image coordinates (docs/conventions.md: pixel (r, c) has centre (c + 0.5, r + 0.5)).
    """
    count, height, width = heatmaps.shape
    out = np.zeros((count, 4), np.float32)
    for k in range(count):
        heat = heatmaps[k].astype(np.float64)
        row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
        peak = heat[row, col]
        dx = _parabola(heat[row, col - 1], peak, heat[row, col + 1]) if 0 < col < width - 1 else 0.0
        dy = (
            _parabola(heat[row - 1, col], peak, heat[row + 1, col]) if 0 < row < height - 1 else 0.0
        )
        v = 2 if peak >= visible_min else 1 if peak >= present_min else 0
        if v:
            out[k] = (col + 0.5 + dx, row + 0.5 + dy, v, peak)
        else:
            out[k, 3] = peak
    return out


def _parabola(left: float, centre: float, right: float) -> float:
    curvature = left - 2 * centre + right
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


@dataclass
class Prediction:
    """What the interpreter says about a batch of generated images."""

    images: np.ndarray  # [B, H, W, 3] uint8
    part_ids: np.ndarray  # [B, H, W] uint8 majority vote
    uncertainty: np.ndarray  # [B, H, W] float32 per-pixel JS (nats)
    heatmaps: np.ndarray | None  # [B, K, H, W] float32 ensemble-mean heatmaps, None = no head
    member_labels: np.ndarray | None = None  # [N, B, H, W] uint8 argmaxes (keep_members=True)


@torch.no_grad()
def predict(
    interpreter: Interpreter,
    generator: Generator,
    ws: torch.Tensor,  # [B, num_ws, w_dim]
    materialised: bool = False,  # True = the released code's algorithm (reference, slow)
    band_rows: int | None = None,  # output rows per band (factorised path), None = auto
    keep_members: bool = False,  # also return every member's argmax
) -> Prediction:
    """Images, voted part ids, JS maps and mean heatmaps for the latents `ws`."""
    device = generator.mapping.w_avg.device
    images, features = generator.synthesis(ws.to(device), noise_mode="const", return_features=True)
    geometry = interpreter.config.geometry
    ensembles = interpreter.ensembles()
    batch = ws.shape[0]
    height, width = geometry.image_size
    classes = interpreter.config.num_classes
    part_ids = torch.zeros(batch, height, width, dtype=torch.uint8)
    uncertainty = torch.zeros(batch, height, width)
    members = torch.zeros(interpreter.config.members, batch, height, width, dtype=torch.uint8)
    heat = None
    if interpreter.keypoints is not None:
        heat = torch.zeros(batch, interpreter.keypoints.outputs, height, width)
    if materialised:
        bands = [(0, height, forward_maps_materialised(ensembles, geometry, features))]
    else:
        bands = forward_maps(ensembles, geometry, features, band_rows)
    for row0, row1, outputs in bands:
        logits = outputs[0]  # [N, B, K, h, W]
        labels = logits.argmax(dim=2)  # [N, B, h, W]
        part_ids[:, row0:row1] = majority_vote(labels, classes).to(torch.uint8).cpu()
        uncertainty[:, row0:row1] = js_uncertainty(torch.softmax(logits, dim=2), dim=2).cpu()
        if keep_members:
            members[:, :, row0:row1] = labels.to(torch.uint8).cpu()
        if heat is not None:
            heat[:, :, row0:row1] = outputs[1].mean(dim=0).cpu()
    return Prediction(
        images=to_uint8(images),
        part_ids=part_ids.numpy(),
        uncertainty=uncertainty.numpy(),
        heatmaps=None if heat is None else heat.numpy(),
        member_labels=members.numpy() if keep_members else None,
    )
