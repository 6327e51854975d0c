"""Perspective cameras: look-at, OpenGL projection, orbit (azimuth/elevation/distance), intrinsics.

Frames and units are in docs/conventions.md: world +Y up, car front +Z, metres; camera looks
down its -Z axis; clip space is OpenGL's; image pixel coordinates have row 0 at the top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from assetgan.core.errors import AssetganError


def orbit_eye(
    azimuth_deg: float, elevation_deg: float, distance: float, target=(0.0, 0.0, 0.0)
) -> torch.Tensor:
    """Camera position [3] on a sphere around target. Azimuth 0 looks at the car's front (camera
    on +Z), azimuth 90 at its left side (camera on +X); elevation > 0 is above."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    offset = torch.tensor(
        [math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)],
        dtype=torch.float32,
    )
    return torch.as_tensor(target, dtype=torch.float32) + distance * offset


def look_at(eye: torch.Tensor, target: torch.Tensor, up=(0.0, 1.0, 0.0)) -> torch.Tensor:
    """World-to-camera matrix [4, 4] (camera looks down -Z, +Y up in the image)."""
    eye = torch.as_tensor(eye, dtype=torch.float32)
    target = torch.as_tensor(target, dtype=torch.float32)
    up_vec = torch.as_tensor(up, dtype=torch.float32)
    forward = target - eye
    if float(forward.norm()) < 1e-9:
        raise AssetganError("look_at: eye and target coincide")
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, up_vec)
    if float(right.norm()) < 1e-6:  # looking straight along up: pick another up
        right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0]))
    right = right / right.norm()
    true_up = torch.linalg.cross(right, forward)
    view = torch.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, true_up, -forward
    view[:3, 3] = -view[:3, :3] @ eye
    return view


def perspective(
    fov_y_deg: float, aspect: float, near: float = 0.1, far: float = 100.0
) -> torch.Tensor:
    """OpenGL projection matrix [4, 4]; aspect = width / height; z/w in [-1, 1] from near to far."""
    if not 0.0 < fov_y_deg < 180.0:
        raise AssetganError(f"fov_y must be in (0, 180) degrees, got {fov_y_deg}")
    if not 0.0 < near < far:
        raise AssetganError(f"need 0 < near < far, got near={near} far={far}")
    focal = 1.0 / math.tan(math.radians(fov_y_deg) / 2.0)
    proj = torch.zeros(4, 4)
    proj[0, 0] = focal / aspect
    proj[1, 1] = focal
    proj[2, 2] = -(far + near) / (far - near)
    proj[2, 3] = -2.0 * far * near / (far - near)
    proj[3, 2] = -1.0
    return proj


@dataclass(frozen=True)
class Camera:
    """A pinhole camera. view: world->camera [4, 4]; proj: camera->clip [4, 4]; image size."""

    view: torch.Tensor  # [4, 4] world-to-camera
    proj: torch.Tensor  # [4, 4] OpenGL projection
    width: int  # image width in pixels
    height: int  # image height in pixels

    @property
    def mvp(self) -> torch.Tensor:
        return self.proj @ self.view  # [4, 4]

    @property
    def eye(self) -> torch.Tensor:
        """Camera centre in world coordinates [3]."""
        return -self.view[:3, :3].T @ self.view[:3, 3]

    def world_to_clip(self, points: torch.Tensor) -> torch.Tensor:
        """[..., 3] world points -> [..., 4] clip coordinates."""
        ones = torch.ones_like(points[..., :1])
        return torch.cat([points, ones], dim=-1) @ self.mvp.to(points).T

    def project(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[..., 3] world points -> (pixel xy [..., 2] with row 0 at the top and pixel centres at
        +0.5, camera-space depth [...] > 0 in front of the camera)."""
        clip = self.world_to_clip(points)
        ndc = clip[..., :2] / clip[..., 3:4]
        x = (ndc[..., 0] + 1.0) * 0.5 * self.width
        y = (1.0 - ndc[..., 1]) * 0.5 * self.height
        return torch.stack([x, y], dim=-1), clip[..., 3]

    def intrinsics(self) -> torch.Tensor:
        """K [3, 3] in pixels for the row-0-at-top image convention (matches project())."""
        fx = float(self.proj[0, 0]) * self.width / 2.0
        fy = float(self.proj[1, 1]) * self.height / 2.0
        return torch.tensor(
            [[fx, 0.0, self.width / 2.0], [0.0, fy, self.height / 2.0], [0.0, 0.0, 1.0]]
        )

    def to_json(self) -> dict:
        return {
            "view": self.view.tolist(),
            "proj": self.proj.tolist(),
            "width": self.width,
            "height": self.height,
            "intrinsics": self.intrinsics().tolist(),
            "eye": self.eye.tolist(),
        }

    @classmethod
    def from_json(cls, obj: dict) -> Camera:
        try:
            return cls(
                torch.tensor(obj["view"], dtype=torch.float32),
                torch.tensor(obj["proj"], dtype=torch.float32),
                int(obj["width"]),
                int(obj["height"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(f"camera json is missing or has a bad field: {error}") from error


def orbit_camera(
    azimuth_deg: float,
    elevation_deg: float,
    distance: float,
    *,
    fov_y_deg: float = 30.0,
    size: tuple[int, int] = (64, 64),
    target=(0.0, 0.0, 0.0),
    near: float = 0.1,
    far: float = 100.0,
) -> Camera:
    """A camera on an orbit around target looking at it; size = (height, width)."""
    height, width = size
    eye = orbit_eye(azimuth_deg, elevation_deg, distance, target)
    return Camera(
        look_at(eye, torch.as_tensor(target, dtype=torch.float32)),
        perspective(fov_y_deg, width / height, near, far),
        width,
        height,
    )


def stack_mvp(cameras: list[Camera]) -> torch.Tensor:
    """[B, 4, 4] model-view-projection matrices of a list of cameras."""
    return torch.stack([camera.mvp for camera in cameras])


def transform_points(points: torch.Tensor, mvp: torch.Tensor) -> torch.Tensor:
    """points [V, 3] or [B, V, 3], mvp [B, 4, 4] -> clip coordinates [B, V, 4]."""
    if points.ndim == 2:
        points = points.unsqueeze(0).expand(mvp.shape[0], -1, -1)
    ones = torch.ones_like(points[..., :1])
    return torch.cat([points, ones], dim=-1) @ mvp.transpose(1, 2)


def orbit_mvp(orbit: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Differentiable [B, 4, 4] model-view-projection matrices of orbit cameras orbit [B, 7]
    (azimuth deg, elevation deg, distance, fov_y deg, target x y z: the arguments of
    `orbit_camera`), near 0.3 x and far 3 x the distance (as `pnp.OrbitMean.camera`); size =
    (height, width). Gradients flow to every field (the per-view-code camera refinement of
    `reconstruct train`)."""
    height, width = size
    azimuth, elevation = torch.deg2rad(orbit[:, 0]), torch.deg2rad(orbit[:, 1])
    distance, fov, target = orbit[:, 2], torch.deg2rad(orbit[:, 3]), orbit[:, 4:7]
    backward = torch.stack(  # unit vector from the target to the eye (= camera +Z)
        [torch.cos(elevation) * torch.sin(azimuth), torch.sin(elevation),
         torch.cos(elevation) * torch.cos(azimuth)], dim=-1
    )  # fmt: skip
    eye = target + distance[:, None] * backward
    up = torch.tensor([0.0, 1.0, 0.0], dtype=orbit.dtype, device=orbit.device).expand_as(eye)
    right = torch.linalg.cross(-backward, up)
    right = right / right.norm(dim=-1, keepdim=True)
    true_up = torch.linalg.cross(right, -backward)
    rotation = torch.stack([right, true_up, backward], dim=1)  # [B, 3, 3] rows
    view = torch.zeros(len(orbit), 4, 4, dtype=orbit.dtype, device=orbit.device)
    view[:, :3, :3] = rotation
    view[:, :3, 3] = -(rotation @ eye[:, :, None])[:, :, 0]
    view[:, 3, 3] = 1.0
    near, far = (0.3 * distance).clamp(min=0.1), 3.0 * distance
    focal = 1.0 / torch.tan(fov / 2.0)
    proj = torch.zeros_like(view)
    proj[:, 0, 0] = focal * height / width
    proj[:, 1, 1] = focal
    proj[:, 2, 2] = -(far + near) / (far - near)
    proj[:, 2, 3] = -2.0 * far * near / (far - near)
    proj[:, 3, 2] = -1.0
    return proj @ view
