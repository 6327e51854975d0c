"""Input-view figures of a reconstruction network on labelled images with known cameras: what
the training run reports on its `val` split (the full benchmark with unseen views and 3D errors
is benchmarks/reconstruct.py, issue 11 section 5).

- silhouette IoU: pixels covered by the rendered mesh vs the car mask, summed over the set;
- part mIoU (car_20, car_12, car_5; core.metrics): the rendered part map (argmax of the part
  logits where the mesh covers the pixel, background elsewhere) vs the labels;
- PCK@0.1: visible keypoints (v = 2) whose projected 3D keypoint lies within 0.1 x the longer
  side of the car mask's bounding box.
Each in the image's true camera (`camera="truth"`: how well the shape fits) or in the camera the
network's camera head predicts (`camera="predicted"`: what `reconstruct image` draws).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from assetgan.core.errors import AssetganError
from assetgan.core.metrics import keypoint_hits, segmentation_metrics, share
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.reconstruct.data import ArrayData
from assetgan.inverse_graphics.reconstruct.model import ReconstructNet
from assetgan.inverse_graphics.reconstruct.render import RenderedView, render_reconstruction
from assetgan.render.camera import Camera, orbit_camera, stack_mvp


def rendered_part_ids(rendered: RenderedView) -> torch.Tensor:
    """[B, H, W] int64 car_20 ids: argmax + 1 where covered, 0 elsewhere."""
    ids = rendered.part_logits.argmax(-1) + 1
    return torch.where(rendered.covered, ids, torch.zeros_like(ids))


@torch.no_grad()
def predict_views(
    model: ReconstructNet, images: torch.Tensor, mvp: torch.Tensor | None
) -> tuple[torch.Tensor, RenderedView]:
    """(3D keypoints [B, 12, 3], the reconstructions rendered in cameras mvp [B, 4, 4], or in
    the cameras the network predicts when mvp is None)."""
    reconstruction = model(images)
    size = images.shape[-1]
    if mvp is None:
        cameras = [predicted_camera(row, size) for row in reconstruction.camera.cpu()]
        mvp = stack_mvp(cameras).to(images.device)
    template = model.template_tables(images.device)
    rendered = render_reconstruction(reconstruction, template, mvp, (size, size))
    return reconstruction.keypoints, rendered


def predicted_camera(parameters: torch.Tensor, side: int) -> Camera:
    """The orbit camera of one row of `Reconstruction.camera` for a side x side image (near and
    far as CarWorld sets them)."""
    azimuth, elevation, distance, fov, *target = parameters.tolist()
    return orbit_camera(
        azimuth,
        elevation,
        distance,
        fov_y_deg=fov,
        size=(side, side),
        target=tuple(target),
        near=max(distance - 6.0, 0.1),
        far=distance + 6.0,
    )


def bbox_sides(masks: np.ndarray) -> np.ndarray:
    """[N] longer side (pixels) of each mask's bounding box, 0 for an empty mask."""
    sides = np.zeros(len(masks))
    for index, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if rows.size:
            sides[index] = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return sides


class ViewScores:
    """Figures of rendered views against labels, summed over batches: silhouette IoU (pixels
    summed over the set), part mIoU at car_20 / car_12 / car_5 (core.metrics) and PCK@0.1
    (radius 0.1 x the longer side of the truth mask's bounding box). `add` each batch, then
    `figures()`; parts and keypoints count only when every batch brought them."""

    def __init__(self) -> None:
        self.intersection = 0
        self.union = 0
        self.images = 0
        self.truth_parts: list[np.ndarray] | None = []
        self.predicted_parts: list[np.ndarray] = []
        self.truth_xyv: list[np.ndarray] | None = []
        self.predicted_xyv: list[np.ndarray] = []
        self.sides: list[np.ndarray] = []

    def add(
        self,
        covered: np.ndarray,  # [B, H, W] bool: the prediction covers the pixel
        masks: np.ndarray,  # [B, H, W] bool truth car masks
        predicted_parts: np.ndarray | None = None,  # [B, H, W] car_20 ids, with truth_parts
        truth_parts: np.ndarray | None = None,  # [B, H, W] truth car_20 ids
        predicted_xy: np.ndarray | None = None,  # [B, 12, 2] pixels, with truth_xyv
        truth_xyv: np.ndarray | None = None,  # [B, 12, 3] truth keypoints
    ) -> None:
        self.intersection += int((covered & masks).sum())
        self.union += int((covered | masks).sum())
        self.images += len(masks)
        if predicted_parts is None or truth_parts is None or self.truth_parts is None:
            self.truth_parts = None
        else:
            self.truth_parts.append(truth_parts)
            self.predicted_parts.append(predicted_parts)
        if predicted_xy is None or truth_xyv is None or self.truth_xyv is None:
            self.truth_xyv = None
        else:
            visible = np.full(predicted_xy.shape[:2] + (1,), 2.0)
            self.truth_xyv.append(truth_xyv)
            self.predicted_xyv.append(np.concatenate([predicted_xy, visible], -1))
            self.sides.append(bbox_sides(masks))

    def add_rendered(
        self,
        rendered: RenderedView,  # B views
        masks: np.ndarray,  # [B, H, W] bool truth car masks
        part_ids: np.ndarray | None = None,  # [B, H, W] truth car_20 ids, or None
        keypoints_xyv: np.ndarray | None = None,  # [B, 12, 3] truth keypoints, or None
    ) -> None:
        """`add` a batch of rendered reconstructions (parts: rendered_part_ids)."""
        parts = rendered_part_ids(rendered).cpu().numpy().astype(np.uint8)
        self.add(
            rendered.covered.cpu().numpy(),
            masks,
            parts,
            part_ids,
            rendered.keypoints_xy.cpu().numpy(),
            keypoints_xyv,
        )

    def figures(self) -> dict[str, Any]:
        """{images, silhouette_iou, miou_car_20, miou_car_12, miou_car_5, pck_0_1} (the last
        four only where labels were given)."""
        figures: dict[str, Any] = {
            "images": self.images,
            "silhouette_iou": self.intersection / max(self.union, 1),
        }
        if self.truth_parts:
            scores = segmentation_metrics(
                np.concatenate(self.truth_parts), np.concatenate(self.predicted_parts)
            )
            for taxonomy, values in scores.items():
                figures[f"miou_{taxonomy}"] = values["miou"]
        if self.truth_xyv:
            hit, counted = keypoint_hits(
                np.concatenate(self.truth_xyv),
                np.concatenate(self.predicted_xyv),
                0.1 * np.concatenate(self.sides),
                2,
            )
            figures["pck_0_1"] = share(hit, counted)
        return figures


@torch.no_grad()
def input_view_metrics(
    model: ReconstructNet,
    data: ArrayData,
    batch: int = 32,
    device: str = "cpu",
    progress: Progress | None = None,
    camera: str = "truth",  # "truth" (the data's cameras) or "predicted" (the camera head's)
) -> dict[str, Any]:
    """{images, camera, silhouette_iou, miou_car_20, miou_car_12, miou_car_5, pck_0_1}."""
    if camera not in ("truth", "predicted"):
        raise AssetganError(f"camera must be 'truth' or 'predicted', got {camera!r}")
    was_training = model.training
    model.eval()
    scores = ViewScores()
    for start in range(0, len(data), batch):
        indices = np.arange(start, min(start + batch, len(data)))
        item = data.batch(indices, np.zeros(len(indices), bool)).to(device)
        mvp = item.mvp if camera == "truth" else None
        _, rendered = predict_views(model, item.images, mvp)
        scores.add_rendered(
            rendered,
            data.masks[indices],
            None if data.part_ids is None else data.part_ids[indices],
            None if data.keypoints_xyv is None else data.keypoints_xyv[indices],
        )
        emit(progress, indices[-1] + 1, len(data), task="evaluating")
    model.train(was_training)
    figures = scores.figures()
    return {"images": figures.pop("images"), "camera": camera, **figures}
