"""Backgrounds, batched over images: a ray-cast ground plane (y = 0) with procedural texture, fog
and the car's soft contact shadow; a sky gradient with clouds and skyline silhouettes;
screen-space backdrops; the shift-only pattern and clutter kinds.
Images use the rasterizer's row order (row 0 = bottom)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from assetgan.pipeline.carworld.params import CarParams
from assetgan.pipeline.carworld.scene import Background, SceneParams
from assetgan.render.camera import Camera

_NOISE_CELLS = 32  # value-noise table size
_SKYLINE_BINS = 720  # azimuth bins of the skyline height map


def camera_rays(cameras: list[Camera]) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit world-space ray directions [B, H, W, 3] through pixel centres, and eyes [B, 3]."""
    h, w = cameras[0].height, cameras[0].width
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * (2.0 / w) - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    inv_fx = torch.tensor([1.0 / float(c.proj[0, 0]) for c in cameras])[:, None, None]
    inv_fy = torch.tensor([1.0 / float(c.proj[1, 1]) for c in cameras])[:, None, None]
    cam_dir = torch.stack(
        [grid_x * inv_fx, grid_y * inv_fy, -torch.ones_like(grid_x).expand_as(grid_x * inv_fx)], -1
    )  # [B, H, W, 3]
    rot = torch.stack([c.view[:3, :3] for c in cameras])  # [B, 3, 3] world -> camera
    # world_i = sum_j R_ji d_j, written as an explicit sum (independent of batch size).
    world = (cam_dir[..., None, :] * rot.transpose(1, 2)[:, None, None]).sum(-1)
    return F.normalize(world, dim=-1), torch.stack([c.eye for c in cameras])


def _sample_wrap(tables: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear, wrapping lookup of tables [B, 1, n, n] at texel coordinates u, v [B, H, W]."""
    n = tables.shape[-1]
    padded = F.pad(tables, (1, 1, 1, 1), mode="circular")
    gx = ((u % n) + 1.0) / (n + 2) * 2.0 - 1.0
    gy = ((v % n) + 1.0) / (n + 2) * 2.0 - 1.0
    grid = torch.stack([gx, gy], -1)
    out = F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[:, 0]


def _fractal(tables: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Value noise in about [-1, 1] from octave tables [B, octaves, n, n] at u, v [B, H, W]."""
    total = torch.zeros_like(u)
    amp, freq, norm = 1.0, 1.0, 0.0
    for octave in range(tables.shape[1]):
        total += amp * (_sample_wrap(tables[:, octave : octave + 1], u * freq, v * freq) * 2 - 1)
        norm += amp
        amp *= 0.5
        freq *= 2.0
    return total / norm


def _footprint(x, z, hx, hz, corner: float) -> torch.Tensor:
    """Signed distance (m) from ground points to rounded rectangles centred at the origin."""
    qx = x.abs() - (hx - corner)
    qz = z.abs() - (hz - corner)
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qz.clamp(min=0) ** 2)
    inside = torch.maximum(qx, qz).clamp(max=0)
    return outside + inside - corner


def contact_shadow(
    x: torch.Tensor, z: torch.Tensor, cars: list[CarParams], scenes: list[SceneParams],
    wheels: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """Shadow darkness in [0, 1] on ground points x, z [B, H, W]; wheels [B, 4, 3] pivots."""
    offsets, halves, cores = [], [], []
    for car, scene in zip(cars, scenes, strict=True):
        lx, ly, lz = scene.light_dir
        reach = min(0.4 * car.height / max(ly, 0.25), 1.2)  # the sun pushes the shadow away
        horizontal = math.hypot(lx, lz) + 1e-9
        ox, oz = -lx / horizontal * reach * 0.5, -lz / horizontal * reach * 0.5
        offsets.append((ox, oz))
        halves.append((car.width / 2 + 0.05 + 0.3 * abs(ox), car.length / 2 + 0.05 + 0.3 * abs(oz)))
        cores.append((car.width / 2 - 0.05, car.length / 2 - 0.1))

    def per_image(values) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.tensor(values, dtype=torch.float32)[:, :, None, None]
        return t[:, 0], t[:, 1]

    ox, oz = per_image(offsets)
    hx, hz = per_image(halves)
    cx, cz = per_image(cores)
    strength = torch.tensor([s.shadow for s in scenes])[:, None, None]
    cast = torch.sigmoid(-_footprint(x - ox, z - oz, hx, hz, 0.5) / 0.18)
    core = torch.sigmoid(-_footprint(x, z, cx, cz, 0.4) / 0.07)
    dark = strength * (0.75 * cast + 0.25 * core)
    for k in range(wheels.shape[1]):  # tire contact patches
        wx, wz = wheels[:, k, 0, None, None], wheels[:, k, 2, None, None]
        dark = torch.maximum(dark, 0.85 * torch.exp(-((x - wx) ** 2) / 0.03 - (z - wz) ** 2 / 0.12))
    return dark.clamp(0.0, 0.95)


def _skyline(gen: np.random.Generator, count: int, max_el: float, vivid: bool) -> np.ndarray:
    """Silhouettes along the horizon: [bins, 4] = (top elevation, r, g, b) per azimuth bin."""
    out = np.zeros((_SKYLINE_BINS, 4))
    for _ in range(count):
        centre = gen.uniform(0, _SKYLINE_BINS)
        half = gen.uniform(3, 18) if gen.uniform() < 0.6 else gen.uniform(2, 7)
        height = gen.uniform(0.15, 1.0) * max_el
        idx = np.arange(int(centre - half), int(centre + half) + 1) % _SKYLINE_BINS
        rounded = gen.uniform() < 0.4
        t = (np.arange(len(idx)) - len(idx) / 2) / (len(idx) / 2 + 1e-9)
        h = height * (np.sqrt(np.clip(1 - t**2, 0, 1)) if rounded else np.ones_like(t))
        if vivid:
            colour = gen.uniform(0.1, 1.0, 3)
        elif rounded:  # trees
            colour = np.array([0.12, 0.22, 0.1]) * gen.uniform(0.6, 1.4)
        else:  # buildings
            colour = np.full(3, gen.uniform(0.3, 0.7)) + gen.normal(0, 0.04, 3)
        closer = h > out[idx, 0]
        out[idx[closer], 0] = h[closer]
        out[idx[closer], 1:] = colour
    return out


def _pattern_and_clutter(
    image: torch.Tensor, gen: np.random.Generator, kind: Background, azimuth, elevation, gx, gz,
    below,
) -> torch.Tensor:  # fmt: skip
    """Shift-only kinds for one image [H, W, 3]: stripes + checker floor, or dense clutter."""
    if kind is Background.pattern:
        stripes = torch.floor(azimuth / (2 * math.pi) * float(gen.integers(12, 48))) % 2
        second = torch.tensor(gen.uniform(0.1, 1.0, 3), dtype=torch.float32)
        sky = torch.where(((stripes > 0) & ~below).unsqueeze(-1), second, image)
        cell = float(gen.uniform(0.4, 2.0))
        checker = (torch.floor(gx / cell) + torch.floor(gz / cell)) % 2
        other = torch.tensor(gen.uniform(0.0, 1.0, 3), dtype=torch.float32)
        return torch.where(((checker > 0) & below).unsqueeze(-1), other * 0.9, sky)
    skyline = torch.tensor(
        _skyline(gen, int(gen.integers(60, 120)), 0.7, vivid=True), dtype=torch.float32
    )
    index = ((azimuth / (2 * math.pi)) % 1.0 * _SKYLINE_BINS).long().clamp(0, _SKYLINE_BINS - 1)
    top, colour = skyline[index, 0], skyline[index, 1:]
    image = torch.where(((elevation < top) & ~below).unsqueeze(-1), colour, image)
    for _ in range(int(gen.integers(15, 40))):
        r, a, size = gen.uniform(4.0, 20.0), gen.uniform(0, 2 * math.pi), gen.uniform(0.3, 1.5)
        blob = ((gx - r * math.sin(a)) ** 2 + (gz - r * math.cos(a)) ** 2 < size**2) & below
        image = torch.where(
            blob.unsqueeze(-1), torch.tensor(gen.uniform(0, 1, 3), dtype=torch.float32), image
        )
    return image


def render_backgrounds(
    scenes: list[SceneParams], cameras: list[Camera], cars: list[CarParams], wheels: torch.Tensor
) -> torch.Tensor:
    """Background colours [B, H, W, 3] in [0, 1] (row 0 = bottom), one image per scene; the
    car's contact shadow included. wheels: [B, 4, 3] wheel pivots."""
    batch = len(scenes)
    gens = [np.random.default_rng(s.texture_seed) for s in scenes]
    # Random tables drawn in one fixed order per image: ground, clouds, backdrop noise.
    tables = torch.tensor(
        np.stack([g.random((9, _NOISE_CELLS, _NOISE_CELLS)) for g in gens]), dtype=torch.float32
    )
    skylines = torch.tensor(
        np.stack(
            [
                _skyline(g, int(g.integers(15, 45)), 0.22, vivid=False)
                if s.background is Background.outdoor and g.uniform() < 0.75
                else np.zeros((_SKYLINE_BINS, 4))
                for g, s in zip(gens, scenes, strict=True)
            ]
        ),
        dtype=torch.float32,
    )  # [B, bins, 4]

    def column(values) -> torch.Tensor:  # per-image values -> [B, 1, 1, k]
        return torch.tensor(values, dtype=torch.float32).reshape(batch, 1, 1, -1)

    zenith = column([s.sky_zenith for s in scenes])
    horizon = column([s.sky_horizon for s in scenes])
    kinds = [s.background for s in scenes]
    outdoor = column([[k is Background.outdoor] for k in kinds])
    rays, eyes = camera_rays(cameras)
    dir_y = rays[..., 1]
    elevation = torch.asin(dir_y.clamp(-1.0, 1.0))
    azimuth = torch.atan2(rays[..., 0], rays[..., 2])
    below = dir_y < 0

    # ---- sky: gradient, clouds (outdoor), skyline -------------------------------------------
    t_sky = (elevation.clamp(min=0.0) / (math.pi / 3)).clamp(max=1.0).pow(0.7).unsqueeze(-1)
    sky = horizon * (1 - t_sky) + zenith * t_sky
    clouds = _fractal(tables[:, 3:6], azimuth * 6.0, elevation * 12.0).clamp(min=0.0).unsqueeze(-1)
    sky = sky + outdoor * 0.25 * clouds * (elevation > 0).unsqueeze(-1)
    index = ((azimuth / (2 * math.pi)) % 1.0 * _SKYLINE_BINS).long().clamp(0, _SKYLINE_BINS - 1)
    line = torch.gather(skylines, 1, index.reshape(batch, -1, 1).expand(-1, -1, 4))
    line = line.reshape(*index.shape, 4)
    building = 0.55 * line[..., 1:] + 0.45 * horizon
    sky = torch.where((elevation < line[..., 0]).unsqueeze(-1), building, sky)

    # ---- ground: texture, fog, shadow -------------------------------------------------------
    t_hit = torch.where(
        below, -eyes[:, 1, None, None] / dir_y.clamp(max=-1e-6), torch.full_like(dir_y, 1e6)
    )
    gx = eyes[:, 0, None, None] + t_hit * rays[..., 0]
    gz = eyes[:, 2, None, None] + t_hit * rays[..., 2]
    scale = column([[s.ground_scale] for s in scenes])[..., 0]
    grain = _fractal(tables[:, 0:3], gx / scale, gz / scale).unsqueeze(-1)
    ground = column([s.ground for s in scenes]) * (
        1.0 + column([[s.ground_texture] for s in scenes]) * grain
    )
    fog = (1.0 - torch.exp(-t_hit / column([[s.fog_distance] for s in scenes])[..., 0])).unsqueeze(
        -1
    )
    ground = ground * (1 - fog) + horizon * fog
    image = torch.where(below.unsqueeze(-1), ground, sky)
    for b, kind in enumerate(kinds):
        if kind in (Background.pattern, Background.clutter):
            image[b] = _pattern_and_clutter(
                image[b], gens[b], kind, azimuth[b], elevation[b], gx[b], gz[b], below[b]
            )
    shadow = contact_shadow(gx, gz, cars, scenes, wheels).unsqueeze(-1) * below.unsqueeze(-1)

    # ---- screen-space backdrops (the floor stays invisible but catches the shadow) ------------
    backdrop = [b for b, k in enumerate(kinds) if k is Background.backdrop]
    if backdrop:
        h, w = image.shape[1:3]
        v = torch.linspace(0.0, 1.0, h).unsqueeze(1).expand(h, w)
        u = torch.linspace(0.0, 1.0, w).unsqueeze(0).expand(h, w)
        angles = torch.tensor([gens[b].uniform(0, 2 * math.pi) for b in backdrop])[:, None, None]
        t = u * torch.cos(angles) + v * torch.sin(angles)
        low = t.amin(dim=(1, 2), keepdim=True)
        t = ((t - low) / (t.amax(dim=(1, 2), keepdim=True) - low + 1e-9)).unsqueeze(-1)
        flat = horizon[backdrop] * (1 - t) + zenith[backdrop] * t
        noise = _fractal(
            tables[backdrop, 6:9], u.expand_as(t[..., 0]) * 4.0, v.expand_as(t[..., 0]) * 4.0
        )
        texture = column([[s.ground_texture] for s in scenes])[backdrop]
        image[backdrop] = flat * (1.0 + texture * noise.unsqueeze(-1))
    return (image * (1.0 - shadow)).clamp(0.0, 1.0)
