"""Shading: Lambert diffuse + ambient + Blinn-Phong specular, and the rendered-image converter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Light:
    """A directional light plus ambient term (directions point from the surface to the light)."""

    direction: tuple[float, float, float] = (0.4, 0.8, 0.6)  # towards the light, world frame
    ambient: float = 0.35  # ambient intensity
    diffuse: float = 0.75  # directional (Lambert) intensity
    specular: float = 0.25  # Blinn-Phong specular intensity
    shininess: float = 32.0  # Blinn-Phong exponent


def shade(
    albedo: torch.Tensor,
    normals: torch.Tensor,
    positions: torch.Tensor,
    eye: torch.Tensor,
    light: Light = Light(),
    specular_scale: torch.Tensor | float = 1.0,
) -> torch.Tensor:
    """Per-pixel colour [..., 3] from albedo [..., 3], normals [..., 3], world positions [..., 3],
    camera centre eye [3] or [B, 1, 1, 3]. Normals are normalised here and flipped to face the
    viewer (two-sided lighting). specular_scale [..., 1] or scalar scales the highlight."""
    normal = F.normalize(normals, dim=-1, eps=1e-8)
    to_eye = F.normalize(eye - positions, dim=-1, eps=1e-8)
    facing = torch.sign((normal * to_eye).sum(-1, keepdim=True))
    normal = normal * torch.where(facing == 0, torch.ones_like(facing), facing)
    to_light = F.normalize(
        torch.tensor(light.direction, dtype=albedo.dtype, device=albedo.device), dim=0
    )
    lambert = (normal * to_light).sum(-1, keepdim=True).clamp(min=0.0)
    half = F.normalize(to_light + to_eye, dim=-1, eps=1e-8)
    highlight = (normal * half).sum(-1, keepdim=True).clamp(min=0.0) ** light.shininess
    colour = albedo * (light.ambient + light.diffuse * lambert)
    return colour + light.specular * specular_scale * highlight * (lambert > 0)


def to_image(rendered: torch.Tensor) -> np.ndarray:
    """[H, W, C] rendered in [0, 1] with row 0 at the bottom -> uint8 [H, W, C], row 0 at the top."""
    pixels = rendered.detach().flip(0).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return pixels.cpu().numpy()
