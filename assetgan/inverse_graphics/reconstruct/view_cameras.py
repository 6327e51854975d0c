"""GANverse3D's per-view-code camera refinement: on a multi-view set every image of view code v
starts from v's robust mean PnP camera (`multiview sample`, cameras.json); the trainer learns one
correction per view code jointly with the network (docs/reconstruct.md "Camera refinement").

The correction of view v is (azimuth + da, elevation + de, distance x exp(dl)), each bounded
(tanh) by `LIMITS`: it refines a camera, it cannot turn a view around (a left / right confusion of
the PnP mean stays one). An image mirrored by the augmentation holds the mirrored orbit
(azimuth -> 360 - azimuth, target x -> -x, data.py), so its azimuth correction is -da.
Cameras are rebuilt from the corrected orbit parameters with `render.camera.orbit_mvp`, which is
differentiable; for the symmetric prediction the mirrored orbit renders exactly the mirrored
image, as the un-refined mirrored matrix does.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from assetgan.inverse_graphics.reconstruct.data import ReconstructBatch
from assetgan.render.camera import orbit_mvp

# Largest correction: azimuth (degrees), elevation (degrees), log distance ratio.
LIMITS = (45.0, 15.0, 0.3)


class ViewCameraCorrection(torch.nn.Module):
    """One learnable (azimuth, elevation, log distance) correction per view code, zero at start."""

    def __init__(self, view_codes: int) -> None:
        super().__init__()
        self.raw = torch.nn.Parameter(torch.zeros(view_codes, 3))

    def deltas(self) -> torch.Tensor:
        """[V, 3] (azimuth deg, elevation deg, log distance ratio) of every view code."""
        return torch.tanh(self.raw) * self.raw.new_tensor(LIMITS)

    def corrected_orbits(self, batch: ReconstructBatch) -> torch.Tensor:
        """[B, 7] the batch's orbit parameters with their view codes' corrections (rows without
        a view code, view = -1, are unchanged)."""
        if batch.camera_params is None:
            raise ValueError("camera refinement needs the batch's orbit parameters")
        has_view = (batch.view >= 0).to(self.raw.dtype)[:, None]
        delta = self.deltas()[batch.view.clamp(min=0)] * has_view
        mirrored = batch.flipped if batch.flipped is not None else torch.zeros_like(batch.view)
        sign = 1.0 - 2.0 * mirrored.to(self.raw.dtype)
        orbit = batch.camera_params
        return torch.cat(
            [
                orbit[:, :1] + sign[:, None] * delta[:, :1],
                orbit[:, 1:2] + delta[:, 1:2],
                orbit[:, 2:3] * torch.exp(delta[:, 2:3]),
                orbit[:, 3:],
            ],
            dim=1,
        )

    def apply(self, batch: ReconstructBatch) -> ReconstructBatch:
        """The batch with refined cameras: `mvp` rebuilt (with gradients to the corrections) and
        `camera_params` the refined orbits (detached: the camera head's target)."""
        orbit = self.corrected_orbits(batch)
        size = (batch.images.shape[-2], batch.images.shape[-1])
        return dataclasses.replace(batch, mvp=orbit_mvp(orbit, size), camera_params=orbit.detach())

    def to_json(self) -> dict[str, dict[str, float]]:
        """{view code: {azimuth, elevation (degrees), distance_scale}} of the corrections."""
        deltas = self.deltas().detach().cpu().tolist()
        return {
            str(view): {"azimuth": row[0], "elevation": row[1], "distance_scale": math.exp(row[2])}
            for view, row in enumerate(deltas)
        }
