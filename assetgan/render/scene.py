"""Shaded rendering of a Mesh from a list of cameras, and turntable contact sheets."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from assetgan.core.images import contact_sheet
from assetgan.render.backends import RenderBackend, TorchBackend
from assetgan.render.camera import (
    Camera,
    orbit_camera,
    stack_mvp,
    transform_points,
)
from assetgan.render.mesh import Mesh, face_normals, vertex_normals
from assetgan.render.shading import Light, shade, to_image

_GREY = (0.72, 0.72, 0.75)


def render_shaded(
    mesh: Mesh,
    cameras: list[Camera],
    *,
    light: Light = Light(),
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
    flat: bool = True,
    backend: RenderBackend | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render mesh in every camera. Returns (rgb [B, H, W, 3] in [0, 1], rast [B, H, W, 4]),
    row 0 at the bottom (to_image flips). flat=True shades with face normals (crisp panels)."""
    backend = backend or TorchBackend()
    height, width = cameras[0].height, cameras[0].width
    clip = transform_points(mesh.vertices, stack_mvp(cameras))
    rast = backend.rasterize(clip, mesh.faces, (height, width))
    face_id = rast[..., 3].long() - 1  # [B, H, W], -1 where empty
    covered = face_id >= 0
    safe_face = face_id.clamp(min=0)
    positions = backend.interpolate(mesh.vertices, rast, mesh.faces)
    if flat:
        normals = face_normals(mesh.vertices, mesh.faces)[safe_face]
    else:
        normals = backend.interpolate(vertex_normals(mesh.vertices, mesh.faces), rast, mesh.faces)
    if mesh.face_colors is not None:
        albedo = mesh.face_colors[safe_face]
    elif mesh.vertex_colors is not None:
        albedo = backend.interpolate(mesh.vertex_colors, rast, mesh.faces)
    else:
        albedo = torch.tensor(_GREY).expand_as(positions)
    eyes = torch.stack([camera.eye for camera in cameras])[:, None, None, :]
    rgb = shade(albedo, normals, positions, eyes, light)
    rgb = torch.where(covered.unsqueeze(-1), rgb, torch.tensor(background, dtype=rgb.dtype))
    return rgb, rast


def turntable_cameras(
    mesh: Mesh, views: int, size: int, elevation_deg: float, fov_y_deg: float = 30.0
) -> list[Camera]:
    """Evenly spaced azimuths around the mesh's bounding-box centre, framing its bounding sphere."""
    lo, hi = mesh.vertices.amin(0), mesh.vertices.amax(0)
    centre = ((lo + hi) / 2.0).tolist()
    radius = float((hi - lo).norm() / 2.0)
    distance = radius / np.sin(np.radians(fov_y_deg) / 2.0) * 1.05
    return [
        orbit_camera(
            360.0 * k / views,
            elevation_deg,
            distance,
            fov_y_deg=fov_y_deg,
            size=(size, size),
            target=centre,
            near=max(distance - 2 * radius, 1e-3),
            far=distance + 2 * radius,
        )
        for k in range(views)
    ]


def turntable_sheet(
    mesh: Mesh,
    *,
    views: int = 8,
    size: int = 256,
    elevation_deg: float = 20.0,
    columns: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """A contact sheet [H, W, 3] uint8 of the mesh seen from `views` azimuths."""
    cameras = turntable_cameras(mesh, views, size, elevation_deg)
    images = []
    for index, camera in enumerate(cameras):
        rgb, _ = render_shaded(mesh, [camera])
        images.append(to_image(rgb[0]))
        if progress is not None:
            progress(index + 1, views)
    return contact_sheet(images, columns=min(columns, views))
