"""Backgrounds: a ray-cast ground plane (y = 0) with procedural texture, fog and the car's soft
contact shadow; a sky gradient with skyline silhouettes; screen-space backdrops; the shift-only
pattern and clutter kinds. Images use the rasterizer's row order (row 0 = bottom)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from assetgan.inverse_graphics.render.camera import Camera
from assetgan.pipeline.carworld.params import CarParams
from assetgan.pipeline.carworld.scene import Background, SceneParams


def camera_rays(camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space ray directions [H, W, 3] (unit) through pixel centres, and the eye [3]."""
    h, w = camera.height, camera.width
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (2.0 / w) - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    cam_dir = torch.stack(
        [grid_x / camera.proj[0, 0], grid_y / camera.proj[1, 1], -torch.ones_like(grid_x)], -1
    )
    rot = camera.view[:3, :3]  # world -> camera rotation
    world = (cam_dir.unsqueeze(-2) * rot.T).sum(-1)  # [H, W, 3] = R^T d
    return F.normalize(world, dim=-1), camera.eye


def _noise(gen: np.random.Generator, cells: int) -> torch.Tensor:
    """A [1, 1, cells, cells] grid of uniform values (tileable value noise source)."""
    return torch.tensor(gen.random((1, 1, cells, cells)), dtype=torch.float32)


def _sample_wrap(table: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear, wrapping lookup of a [1, 1, n, n] table at texel coordinates u, v [H, W]."""
    n = table.shape[-1]
    padded = F.pad(table, (1, 1, 1, 1), mode="circular")
    gx = ((u % n) + 1.0) / (n + 2) * 2.0 - 1.0
    gy = ((v % n) + 1.0) / (n + 2) * 2.0 - 1.0
    grid = torch.stack([gx, gy], -1).unsqueeze(0)
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, 0]


def _fractal(
    gen: np.random.Generator, u: torch.Tensor, v: torch.Tensor, octaves: int = 3
) -> torch.Tensor:
    """Value noise in [-1, 1] (roughly) at continuous coordinates u, v [H, W]."""
    total = torch.zeros_like(u)
    amp, freq, norm = 1.0, 1.0, 0.0
    for _ in range(octaves):
        total += amp * (_sample_wrap(_noise(gen, 32), u * freq, v * freq) * 2.0 - 1.0)
        norm += amp
        amp *= 0.5
        freq *= 2.0
    return total / norm


def _footprint(
    x: torch.Tensor, z: torch.Tensor, hx: float, hz: float, corner: float
) -> torch.Tensor:
    """Signed distance (m) from ground points to a rounded rectangle centred at the origin."""
    qx = x.abs() - (hx - corner)
    qz = z.abs() - (hz - corner)
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qz.clamp(min=0) ** 2)
    inside = torch.maximum(qx, qz).clamp(max=0)
    return outside + inside - corner


def contact_shadow(
    x: torch.Tensor, z: torch.Tensor, car: CarParams, scene: SceneParams, wheels: np.ndarray
) -> torch.Tensor:
    """Shadow factor in [0, 1] (1 = fully dark) on ground points x, z [H, W]."""
    lx, ly, lz = scene.light_dir
    reach = min(0.4 * car.height / max(ly, 0.25), 1.2)  # the sun pushes the shadow away
    horizontal = math.hypot(lx, lz) + 1e-9
    ox, oz = -lx / horizontal * reach * 0.5, -lz / horizontal * reach * 0.5
    hx, hz = car.width / 2.0 + 0.05 + 0.3 * abs(ox), car.length / 2.0 + 0.05 + 0.3 * abs(oz)
    cast = torch.sigmoid(-_footprint(x - ox, z - oz, hx, hz, 0.5) / 0.18)
    core = torch.sigmoid(
        -_footprint(x, z, car.width / 2.0 - 0.05, car.length / 2.0 - 0.1, 0.4) / 0.07
    )
    dark = scene.shadow * (0.75 * cast + 0.25 * core)
    for wx, _, wz in wheels:  # tire contact patches
        d2 = (x - wx) ** 2 / 0.03 + (z - wz) ** 2 / 0.12
        dark = torch.maximum(dark, 0.85 * torch.exp(-d2))
    return dark.clamp(0.0, 0.95)


def _skyline(
    gen: np.random.Generator, azimuth: torch.Tensor, count: int, max_el: float, vivid: bool
):
    """Silhouettes along the horizon: per azimuth bin a top elevation and a colour."""
    bins = 720
    top = np.zeros(bins)
    colour = np.zeros((bins, 3))
    for _ in range(count):
        centre = gen.uniform(0, bins)
        half = gen.uniform(3, 18) if gen.uniform() < 0.6 else gen.uniform(2, 7)
        height = gen.uniform(0.15, 1.0) * max_el
        idx = np.arange(int(centre - half), int(centre + half) + 1) % bins
        rounded = gen.uniform() < 0.4
        t = (np.arange(len(idx)) - len(idx) / 2) / (len(idx) / 2 + 1e-9)
        h = height * (np.sqrt(np.clip(1 - t**2, 0, 1)) if rounded else np.ones_like(t))
        if vivid:
            c = gen.uniform(0.1, 1.0, 3)
        elif rounded:
            c = np.array([0.12, 0.22, 0.1]) * gen.uniform(0.6, 1.4)
        else:
            c = np.full(3, gen.uniform(0.3, 0.7)) + gen.normal(0, 0.04, 3)
        closer = h > top[idx]
        top[idx[closer]] = h[closer]
        colour[idx[closer]] = c
    index = ((azimuth / (2 * math.pi)) % 1.0 * bins).long().clamp(0, bins - 1)
    return torch.tensor(top, dtype=torch.float32)[index], torch.tensor(colour, dtype=torch.float32)[
        index
    ]


def render_background(
    scene: SceneParams, camera: Camera, car: CarParams, wheels: np.ndarray
) -> torch.Tensor:
    """Background colour [H, W, 3] in [0, 1] (row 0 = bottom) for every pixel of camera."""
    gen = np.random.default_rng(scene.texture_seed)
    rays, eye = camera_rays(camera)
    dir_y = rays[..., 1]
    elevation = torch.asin(dir_y.clamp(-1.0, 1.0))
    azimuth = torch.atan2(rays[..., 0], rays[..., 2])
    zenith = torch.tensor(scene.sky_zenith)
    horizon = torch.tensor(scene.sky_horizon)
    ground_rgb = torch.tensor(scene.ground)

    # ---- sky ----------------------------------------------------------------------------------
    t_sky = (elevation.clamp(min=0.0) / (math.pi / 3)).clamp(max=1.0).pow(0.7).unsqueeze(-1)
    sky = horizon * (1 - t_sky) + zenith * t_sky
    kind = scene.background
    if kind is Background.outdoor:
        clouds = _fractal(gen, azimuth * 6.0, elevation * 12.0).unsqueeze(-1)
        sky = sky + 0.25 * (clouds.clamp(min=0.0) * (elevation > 0).unsqueeze(-1))
        if gen.uniform() < 0.75:
            top, colour = _skyline(gen, azimuth, int(gen.integers(15, 45)), 0.22, vivid=False)
            colour = 0.55 * colour + 0.45 * horizon
            sky = torch.where((elevation < top).unsqueeze(-1), colour, sky)
    elif kind is Background.clutter:
        top, colour = _skyline(gen, azimuth, int(gen.integers(60, 120)), 0.7, vivid=True)
        sky = torch.where((elevation < top).unsqueeze(-1), colour, sky)
    elif kind is Background.pattern:
        stripes = torch.floor(azimuth / (2 * math.pi) * float(gen.integers(12, 48))) % 2
        second = torch.tensor(gen.uniform(0.1, 1.0, 3), dtype=torch.float32)
        sky = torch.where((stripes > 0).unsqueeze(-1), second, sky)

    # ---- ground -------------------------------------------------------------------------------
    t_hit = torch.where(
        dir_y < -1e-6, -eye[1] / dir_y.clamp(max=-1e-6), torch.full_like(dir_y, 1e6)
    )
    gx = eye[0] + t_hit * rays[..., 0]
    gz = eye[2] + t_hit * rays[..., 2]
    scale = scene.ground_scale
    grain = _fractal(gen, gx / scale, gz / scale).unsqueeze(-1)
    ground = ground_rgb * (1.0 + scene.ground_texture * grain)
    if kind is Background.pattern:
        cell = float(gen.uniform(0.4, 2.0))
        checker = (torch.floor(gx / cell) + torch.floor(gz / cell)) % 2
        other = torch.tensor(gen.uniform(0.0, 1.0, 3), dtype=torch.float32)
        ground = torch.where((checker > 0).unsqueeze(-1), other, ground)
    elif kind is Background.clutter:
        for _ in range(int(gen.integers(15, 40))):
            r = gen.uniform(4.0, 20.0)
            a = gen.uniform(0, 2 * math.pi)
            cx, cz, size = r * math.sin(a), r * math.cos(a), gen.uniform(0.3, 1.5)
            blob = ((gx - cx) ** 2 + (gz - cz) ** 2) < size**2
            ground = torch.where(
                blob.unsqueeze(-1), torch.tensor(gen.uniform(0, 1, 3), dtype=torch.float32), ground
            )
    fog = (1.0 - torch.exp(-t_hit / scene.fog_distance)).unsqueeze(-1)
    ground = ground * (1 - fog) + horizon * fog
    shadow = contact_shadow(gx, gz, car, scene, wheels).unsqueeze(-1)
    ground = ground * (1.0 - shadow)
    below = (dir_y < 0).unsqueeze(-1)
    image = torch.where(below, ground, sky)

    if kind is Background.backdrop:  # screen-space backdrop; keep only the shadow of the floor
        h, w = camera.height, camera.width
        v = torch.linspace(0.0, 1.0, h).unsqueeze(1).expand(h, w)
        u = torch.linspace(0.0, 1.0, w).unsqueeze(0).expand(h, w)
        angle = gen.uniform(0, 2 * math.pi)
        t = (u * math.cos(angle) + v * math.sin(angle)).unsqueeze(-1)
        t = (t - t.min()) / (t.max() - t.min() + 1e-9)
        flat = horizon * (1 - t) + zenith * t
        flat = flat * (1.0 + scene.ground_texture * _fractal(gen, u * 4.0, v * 4.0).unsqueeze(-1))
        image = flat * (1.0 - torch.where(below, shadow, torch.zeros_like(shadow)))
    return image.clamp(0.0, 1.0)
