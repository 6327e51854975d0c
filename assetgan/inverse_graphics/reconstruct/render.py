"""Render a `Reconstruction` in given cameras with the project's differentiable rasterizer:
rasterize -> interpolate (UVs) -> texture (colour and part logits) -> antialias
(docs/rendering.md; frames and clip space: docs/conventions.md).

Everything returned here is in the usual image layout (row 0 at the top), like the PNGs it is
compared with; the rasterizer's own outputs (row 0 at the bottom) are flipped once, here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from assetgan.inverse_graphics.reconstruct.model import Reconstruction
from assetgan.inverse_graphics.reconstruct.template import Template
from assetgan.render.backends import RenderBackend, TorchBackend
from assetgan.render.camera import transform_points


@dataclass(frozen=True)
class RenderedView:
    """A batch of reconstructions seen by a batch of cameras (row 0 at the top)."""

    rgb: torch.Tensor  # [B, H, W, 3] texture colour, black where empty, antialiased edges
    alpha: torch.Tensor  # [B, H, W] antialiased coverage in [0, 1], gradients move edges
    covered: torch.Tensor  # [B, H, W] bool: a triangle covers the pixel centre
    part_logits: torch.Tensor  # [B, H, W, 19] car_20 ids 1..19; meaningful where covered
    keypoints_xy: torch.Tensor  # [B, 12, 2] projected 3D keypoints in pixels (x right, y down)
    keypoints_depth: torch.Tensor  # [B, 12] camera-space depth (clip w) of the keypoints
    depth: torch.Tensor | None = None  # [B, H, W] camera-space depth of the surface, 0 where
    # empty (render_views(..., with_depth=True) only)


def sample_uv(image: torch.Tensor, uv: torch.Tensor, backend: RenderBackend) -> torch.Tensor:
    """Sample a UV image [B, Ht, Wt, C] at uv [B, H, W, 2]: u wraps around (the seam at the
    car's back), v is clamped (the poles), so neither leaks into the other."""
    width = image.shape[2]
    padded = torch.cat([image[:, :, -1:], image, image[:, :, :1]], dim=2)
    u = uv[..., 0] - torch.floor(uv[..., 0])
    remapped = torch.stack([(u * width + 1.0) / (width + 2.0), uv[..., 1]], dim=-1)
    return backend.texture(padded, remapped, "linear", "clamp")


def project_points(points: torch.Tensor, mvp: torch.Tensor, size: tuple[int, int]):
    """points [B, N, 3], mvp [B, 4, 4] -> (pixels [B, N, 2] with row 0 at the top, depth [B, N])
    (the formula of Camera.project, batched)."""
    height, width = size
    clip = transform_points(points, mvp)
    w = clip[..., 3]
    safe_w = torch.where(w.abs() < 1e-6, torch.full_like(w, 1e-6), w)
    x = (clip[..., 0] / safe_w + 1.0) * 0.5 * width
    y = (1.0 - clip[..., 1] / safe_w) * 0.5 * height
    return torch.stack([x, y], dim=-1), w


def render_views(
    vertices: torch.Tensor,  # [B, V, 3] metres, car frame
    texture: torch.Tensor,  # [B, Ht, Wt, 3]
    part_logits: torch.Tensor,  # [B, Ht, Wt, 19]
    keypoints: torch.Tensor,  # [B, 12, 3]
    template: Template,  # faces, uv, uv_faces (on the same device)
    mvp: torch.Tensor,  # [B, 4, 4] model-view-projection per image
    size: tuple[int, int],  # (height, width) of the rendered images
    backend: RenderBackend | None = None,
    with_depth: bool = False,  # also interpolate the surface depth (not needed for training)
) -> RenderedView:
    """Differentiable render of textured, part-labelled meshes in one camera each."""
    backend = backend or TorchBackend()
    faces = template.faces
    clip = transform_points(vertices, mvp)  # [B, V, 4]
    rast = backend.rasterize(clip, faces, size)
    uv = backend.interpolate(template.uv, rast, template.uv_faces)  # [B, H, W, 2]
    channels = torch.cat([texture, part_logits], dim=-1)
    sampled = sample_uv(channels, uv, backend)  # [B, H, W, 3 + 19]
    covered = rast[..., 3] > 0
    rgb = sampled[..., :3] * covered.unsqueeze(-1).to(sampled.dtype)
    rgb = backend.antialias(rgb.contiguous(), rast, clip, faces)
    alpha = backend.silhouette(clip, faces, rast)[..., 0]
    keypoints_xy, keypoints_depth = project_points(keypoints, mvp, size)
    depth = None
    if with_depth:
        depth = backend.interpolate(clip[..., 3:4].contiguous(), rast, faces)[..., 0].flip(1)
    return RenderedView(
        rgb=rgb.flip(1),
        alpha=alpha.flip(1),
        covered=covered.flip(1),
        part_logits=sampled[..., 3:].flip(1),
        keypoints_xy=keypoints_xy,
        keypoints_depth=keypoints_depth,
        depth=depth,
    )


def render_reconstruction(
    reconstruction: Reconstruction,
    template: Template,
    mvp: torch.Tensor,  # [B, 4, 4] one camera per reconstruction
    size: tuple[int, int],  # (height, width)
    with_depth: bool = False,
) -> RenderedView:
    """`render_views` of a batch of reconstructions, each in its own camera."""
    return render_views(
        reconstruction.vertices,
        reconstruction.texture,
        reconstruction.part_logits,
        reconstruction.keypoints,
        template,
        mvp,
        size,
        with_depth=with_depth,
    )
