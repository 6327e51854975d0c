"""The input view's camera of a reconstruction, two ways (`CameraSource`):

- `head`: the network's camera head (an orbit camera regressed from the image code);
- `pnp`: keypoints detected in the input image by the shipped CarWorld segmenter (2D, with
  visibility) against the reconstruction's own 3D keypoints, solved by the project's robust
  PnP (render/pnp.py: RANSAC over keypoint subsets, least-squares refinement, the keypoint
  template's visibility model to reject mirrored poses) at a fixed field of view. Where PnP
  finds no camera (too few visible keypoints), the head's camera is used and the record says so.

PnP needs no training of its own and is validated on CarWorld (docs/multiview.md: median
azimuth error 2.1 deg from the segmenter's keypoints), whereas a short training leaves the head
far behind the true camera (docs/reconstruct.md "Measured"); `pnp` is the default of
`reconstruct image`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import numpy as np
import torch

from assetgan.inverse_graphics.reconstruct.evaluate import predicted_camera
from assetgan.render.camera import Camera

SHIPPED_SEGMENTER = Path(__file__).resolve().parents[2] / "assets" / "segmenter64"
PNP_FOV = 32.0  # degrees: the field of view PnP assumes (CarWorld's and the generator's mean)


class CameraSource(StrEnum):
    """Where the input view's camera comes from (module docstring)."""

    head = "head"
    pnp = "pnp"


def detect_keypoints(images: np.ndarray, segmenter: Path = SHIPPED_SEGMENTER) -> np.ndarray:
    """[N, 12, 3] (x, y, v) keypoints of images [N, H, W, 3] uint8 by a segmenter checkpoint."""
    from assetgan.pipeline.downstream.checkpoint import load_segmenter
    from assetgan.pipeline.downstream.predict import predict

    model, _ = load_segmenter(segmenter)
    _, keypoints = predict(model, np.asarray(images))
    return keypoints


def pnp_cameras(
    keypoints_3d: np.ndarray,  # [N, 12, 3] metres: each reconstruction's own keypoints
    detected: np.ndarray,  # [N, 12, 3] (x, y, v) pixels in the side x side input
    side: int,  # input side in pixels
    fov_y: float = PNP_FOV,
) -> list[Camera | None]:
    """One PnP camera per image (side x side), None where PnP found none."""
    from assetgan.pipeline.multiview.cameras import estimate_cameras
    from assetgan.pipeline.multiview.template import load_shipped_template
    from assetgan.render.pnp import PnPSettings

    visibility = load_shipped_template().visibility
    cameras: list[Camera | None] = []
    for points, xyv in zip(keypoints_3d, detected, strict=True):
        settings = PnPSettings(fov_y=fov_y)
        (result,) = estimate_cameras(xyv[None], points, (side, side), settings, visibility)
        cameras.append(None if result is None else result.camera)
    return cameras


def input_cameras(
    source: CameraSource,
    head: torch.Tensor,  # [N, 7] the camera head's orbit parameters
    keypoints_3d: torch.Tensor,  # [N, 12, 3]
    detected: np.ndarray | None,  # [N, 12, 3] segmenter keypoints (needed for pnp)
    side: int,
    fov_y: float = PNP_FOV,
) -> tuple[list[Camera], list[str]]:
    """(a camera per image for side x side pictures, where each came from: "head", "pnp", or
    "head (pnp found no camera)")."""
    cameras, sources = [], []
    solved: list[Camera | None] = [None] * len(head)
    if source is CameraSource.pnp:
        if detected is None:
            raise ValueError("pnp cameras need the detected keypoints")
        points = keypoints_3d.detach().cpu().numpy().astype(np.float64)
        solved = pnp_cameras(points, detected, side, fov_y)
    for row, camera in zip(head.detach().cpu(), solved, strict=True):
        if camera is not None:
            cameras.append(camera)
            sources.append("pnp")
        else:
            cameras.append(predicted_camera(row, side))
            sources.append("head" if source is CameraSource.head else "head (pnp found no camera)")
    return cameras, sources


def resized(camera: Camera, side: int) -> Camera:
    """The same camera for a side x side picture (the projection is in normalised units)."""
    return Camera(camera.view, camera.proj, side, side)
