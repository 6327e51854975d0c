"""Input-view figures of a reconstruction network on labelled images with known cameras: what
the training run reports on its `val` split (the full benchmark with unseen views and 3D errors
is benchmarks/reconstruct.py, issue 11 section 5).

- silhouette IoU: pixels covered by the rendered mesh vs the car mask, summed over the set;
- part mIoU (car_20, car_12, car_5; core.metrics): the rendered part map (argmax of the part
  logits where the mesh covers the pixel, background elsewhere) vs the labels;
- PCK@0.1: visible keypoints (v = 2) whose projected 3D keypoint lies within 0.1 x the longer
  side of the car mask's bounding box.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from assetgan.core.metrics import keypoint_hits, segmentation_metrics, share
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.reconstruct.data import ArrayData
from assetgan.inverse_graphics.reconstruct.model import ReconstructNet
from assetgan.inverse_graphics.reconstruct.render import RenderedView, render_reconstruction


def rendered_part_ids(rendered: RenderedView) -> torch.Tensor:
    """[B, H, W] int64 car_20 ids: argmax + 1 where covered, 0 elsewhere."""
    ids = rendered.part_logits.argmax(-1) + 1
    return torch.where(rendered.covered, ids, torch.zeros_like(ids))


@torch.no_grad()
def predict_views(
    model: ReconstructNet, images: torch.Tensor, mvp: torch.Tensor
) -> tuple[torch.Tensor, RenderedView]:
    """(3D keypoints [B, 12, 3], the reconstructions rendered in cameras mvp [B, 4, 4])."""
    reconstruction = model(images)
    size = images.shape[-1]
    template = model.template_tables(images.device)
    rendered = render_reconstruction(reconstruction, template, mvp, (size, size))
    return reconstruction.keypoints, rendered


def bbox_sides(masks: np.ndarray) -> np.ndarray:
    """[N] longer side (pixels) of each mask's bounding box, 0 for an empty mask."""
    sides = np.zeros(len(masks))
    for index, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size:
            sides[index] = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return sides


@torch.no_grad()
def input_view_metrics(
    model: ReconstructNet,
    data: ArrayData,
    batch: int = 32,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """{images, silhouette_iou, miou_car_20, miou_car_12, miou_car_5, pck_0_1}."""
    was_training = model.training
    model.eval()
    intersection = union = 0
    predicted_parts, predicted_xyv = [], []
    for start in range(0, len(data), batch):
        indices = np.arange(start, min(start + batch, len(data)))
        item = data.batch(indices, np.zeros(len(indices), bool)).to(device)
        _, rendered = predict_views(model, item.images, item.mvp)
        covered = rendered.covered.cpu().numpy()
        mask = data.masks[indices]
        intersection += int((covered & mask).sum())
        union += int((covered | mask).sum())
        predicted_parts.append(rendered_part_ids(rendered).cpu().numpy().astype(np.uint8))
        xy = rendered.keypoints_xy.cpu().numpy()
        predicted_xyv.append(np.concatenate([xy, np.full(xy.shape[:2] + (1,), 2.0)], -1))
        emit(progress, indices[-1] + 1, len(data), task="evaluating")
    model.train(was_training)
    figures: dict[str, Any] = {
        "images": len(data),
        "silhouette_iou": intersection / max(union, 1),
    }
    if data.part_ids is not None:
        scores = segmentation_metrics(data.part_ids, np.concatenate(predicted_parts))
        for taxonomy, values in scores.items():
            figures[f"miou_{taxonomy}"] = values["miou"]
    if data.keypoints_xyv is not None:
        hit, counted = keypoint_hits(
            data.keypoints_xyv, np.concatenate(predicted_xyv), 0.1 * bbox_sides(data.masks), 2
        )
        figures["pck_0_1"] = share(hit, counted)
    return figures
