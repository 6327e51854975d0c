"""Render a batch of cars into images and labels.

RGB is rasterized at `supersample` x the output size, shaded (ambient + Lambert sun + Blinn-Phong
highlight + a Fresnel sky reflection), composited over the background and box-filtered down.
Labels come from a second rasterization at the output size (pixel-centre sampling), so the
part map is exactly the rasterised face part ids. Outputs have row 0 at the top.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from assetgan.core.errors import AssetganError
from assetgan.pipeline.carworld.background import render_backgrounds
from assetgan.pipeline.carworld.body import MAT_PAINT
from assetgan.pipeline.carworld.model import MATERIAL_NAMES, CarModel
from assetgan.pipeline.carworld.params import Finish
from assetgan.pipeline.carworld.scene import SceneParams
from assetgan.render import interpolate, rasterize
from assetgan.render.camera import Camera
from assetgan.render.mesh import face_normals, vertex_normals

# Per material: specular, shininess, Fresnel f0, sky reflection, emission, tint reflection by albedo
_MATERIALS = {
    "paint": (0.5, 60.0, 0.04, 0.55, 0.0, 0.0),
    "glass": (0.9, 120.0, 0.10, 0.95, 0.0, 0.0),
    "underbody": (0.02, 8.0, 0.0, 0.0, 0.0, 0.0),
    "trim": (0.15, 20.0, 0.03, 0.15, 0.0, 0.0),
    "rubber": (0.05, 8.0, 0.01, 0.03, 0.0, 0.0),
    "metal": (0.8, 50.0, 0.55, 0.6, 0.0, 1.0),
    "light": (0.9, 100.0, 0.08, 0.45, 0.3, 0.0),
    "plate": (0.1, 10.0, 0.02, 0.05, 0.1, 0.0),
}
_FINISH = {  # overrides the paint row
    Finish.gloss: (0.55, 80.0, 0.05, 0.6, 0.0, 0.0),
    Finish.metallic: (0.6, 40.0, 0.25, 0.5, 0.0, 0.6),
    Finish.matte: (0.1, 10.0, 0.02, 0.08, 0.0, 0.0),
}
SUPPORTED_SIZES = (64, 128, 256)


@dataclass(frozen=True)
class RenderedBatch:
    """Images and labels of B cars at size S (row 0 = top)."""

    rgb: np.ndarray  # [B, S, S, 3] uint8
    parts: np.ndarray  # [B, S, S] uint8 car_20 ids
    depth: np.ndarray  # [B, S, S] float32 camera-space depth (m), 0 on background
    keypoints: np.ndarray  # [B, 12, 3] float64 (x, y, visibility 0/1/2), pixels, row 0 top
    keypoint_depth: np.ndarray  # [B, 12] camera-space depth of each keypoint (m)
    cameras: list[Camera]  # output-size cameras


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Torch on one thread while rendering (restored afterwards); workers parallelise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def clip_coordinates(vertices: np.ndarray, mvp: np.ndarray) -> np.ndarray:
    """[B, V, 3] world points and [B, 4, 4] matrices -> [B, V, 4] clip coordinates (float64,
    explicit sums so the result never depends on batch size or BLAS threads)."""
    homogeneous = np.concatenate([vertices, np.ones_like(vertices[..., :1])], axis=-1)
    return (homogeneous[:, :, None, :] * mvp[:, None, :, :]).sum(-1)


def visibility_tolerance(depth: np.ndarray, camera: Camera) -> np.ndarray:
    """Depth slack (m) for keypoint visibility: 5 cm plus 1.5 pixel footprints at that depth."""
    pixel = depth * 2.0 / (float(camera.proj[1, 1]) * camera.height)
    return 0.05 + 1.5 * pixel


def keypoint_visibility(
    xy: np.ndarray, kp_depth: np.ndarray, depth_map: np.ndarray, camera: Camera
) -> np.ndarray:
    """COCO visibility [K] of keypoints at pixels xy [K, 2] (row 0 top) with camera depth
    kp_depth [K], against depth_map [H, W] (0 = background): 0 outside the image or behind
    the camera, 1 occluded (the depth buffer is nearer by more than visibility_tolerance),
    2 visible."""
    h, w = depth_map.shape
    col = np.floor(xy[:, 0]).astype(np.int64)
    row = np.floor(xy[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (kp_depth > 0)
    vis = np.zeros(len(xy), dtype=np.int64)
    buffer = depth_map[row.clip(0, h - 1), col.clip(0, w - 1)]
    tol = visibility_tolerance(kp_depth, camera)
    occluded = (buffer > 0) & (buffer < kp_depth - tol)
    vis[inside] = np.where(occluded[inside], 1, 2)
    return vis


def _material_table(cars: list[CarModel]) -> torch.Tensor:
    rows = []
    for car in cars:
        table = [list(_MATERIALS[name]) for name in MATERIAL_NAMES]
        table[MAT_PAINT] = list(_FINISH[car.params.finish])
        rows.append(table)
    return torch.tensor(rows, dtype=torch.float32)  # [B, M, 6]


def _shade(albedo, normal, position, eye, material, scene_rows) -> torch.Tensor:
    """Colour [N, 3] of N shaded pixels: albedo/normal/position/eye [N, 3], material [N, 6],
    scene_rows: light and sky tensors [N, k] (see _scene_rows)."""
    light_dir, light_col, ambient, diffuse, specular, zenith, horizon, ground = scene_rows
    n = F.normalize(normal, dim=-1, eps=1e-8)
    v = F.normalize(eye - position, dim=-1, eps=1e-8)
    n_dot_v = (n * v).sum(-1, keepdim=True)
    n = torch.where(n_dot_v < 0, -n, n)
    n_dot_v = n_dot_v.abs()
    lambert = (n * light_dir).sum(-1, keepdim=True).clamp(min=0.0)
    half = F.normalize(light_dir + v, dim=-1, eps=1e-8)
    ks, shininess, f0, env, emit, tint = material.unbind(-1)
    highlight = (n * half).sum(-1).clamp(min=0.0).pow(shininess).unsqueeze(-1)
    reflect = 2.0 * n_dot_v * n - v
    up = reflect[..., 1:2]
    sky = horizon + (zenith - horizon) * up.clamp(min=0.0).sqrt()
    env_colour = torch.where(up > 0, sky, 0.5 * ground + 0.2 * horizon)
    fresnel = f0.unsqueeze(-1) + (1 - f0.unsqueeze(-1)) * (1.0 - n_dot_v).pow(5)
    env_colour = env_colour * (1 - tint.unsqueeze(-1) + tint.unsqueeze(-1) * albedo * 1.5)
    occlusion = 0.62 + 0.38 * (position[..., 1:2] / 0.55).clamp(0.0, 1.0)
    colour = albedo * (ambient + diffuse * lambert * light_col) * occlusion
    colour = colour + specular * ks.unsqueeze(-1) * highlight * light_col * (lambert > 0)
    colour = colour + env.unsqueeze(-1) * fresnel * env_colour * occlusion
    return colour + emit.unsqueeze(-1) * albedo


def _scene_rows(scenes: list[SceneParams]) -> tuple[torch.Tensor, ...]:
    def col(values) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32)  # [B, k]

    light_dir = F.normalize(col([s.light_dir for s in scenes]), dim=-1)
    return (
        light_dir,
        col([s.light_colour for s in scenes]),
        col([[s.ambient] for s in scenes]),
        col([[s.diffuse] for s in scenes]),
        col([[s.specular] for s in scenes]),
        col([s.sky_zenith for s in scenes]),
        col([s.sky_horizon for s in scenes]),
        col([s.ground for s in scenes]),
    )


def _degrade(image: np.ndarray, scene: SceneParams) -> np.ndarray:
    """Blur, noise and JPEG re-encoding of one uint8 image [S, S, 3] (deterministic)."""
    if scene.blur <= 0 and scene.noise <= 0 and scene.jpeg <= 0:
        return image
    pixels = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).unsqueeze(0) / 255.0
    if scene.blur > 0:
        radius = 2
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-(x**2) / (2 * scene.blur**2))
        kernel = kernel / kernel.sum()
        pixels = F.pad(pixels, (radius,) * 4, mode="replicate")
        pixels = F.conv2d(pixels, kernel.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        pixels = F.conv2d(pixels, kernel.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    if scene.noise > 0:
        gen = np.random.default_rng(scene.texture_seed + 1)
        pixels = pixels + torch.tensor(
            gen.normal(0.0, scene.noise, pixels.shape), dtype=torch.float32
        )
    out = (pixels[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
    if scene.jpeg > 0:
        buffer = io.BytesIO()
        Image.fromarray(out).save(buffer, format="JPEG", quality=scene.jpeg)
        out = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


def render_batch(
    cars: list[CarModel], scenes: list[SceneParams], size: int, *, supersample: int = 2
) -> RenderedBatch:
    """Render every car in its scene at size x size (all cars share one face list)."""
    if len(cars) != len(scenes) or not cars:
        raise AssetganError(
            f"render_batch needs as many scenes as cars, got {len(cars)} and {len(scenes)}"
        )
    if size < 8:
        raise AssetganError(f"image size must be >= 8, got {size}")
    faces = cars[0].mesh.faces
    for car in cars[1:]:
        if car.mesh.faces.shape != faces.shape or not torch.equal(car.mesh.faces, faces):
            raise AssetganError("render_batch: cars must share one face list (build_car topology)")
    batch, hi = len(cars), size * supersample
    cameras = [s.camera(size) for s in scenes]
    cameras_hi = [s.camera(hi) for s in scenes]
    vertices = np.stack([c.mesh.vertices.numpy().astype(np.float64) for c in cars])  # [B, V, 3]
    mvp = np.stack([cam.mvp.numpy().astype(np.float64) for cam in cameras])
    view = np.stack([cam.view.numpy().astype(np.float64) for cam in cameras])
    clip = torch.tensor(clip_coordinates(vertices, mvp), dtype=torch.float32)
    verts_t = torch.tensor(vertices, dtype=torch.float32)

    with torch.no_grad():
        # ---- RGB at supersampled resolution, shaded only where the car covers a pixel --------
        num_faces = faces.shape[0]
        rast = rasterize(clip, faces, (hi, hi), cull_backfaces=True).reshape(-1, 4)
        covered = torch.nonzero(rast[:, 3] > 0).squeeze(1)  # [N] flat pixel ids
        batch_of = covered // (hi * hi)
        face_of = rast[covered, 3].long() - 1
        global_face = batch_of * num_faces + face_of
        u, v = rast[covered, 0:1], rast[covered, 1:2]
        corners = faces[face_of]  # [N, 3]

        def at_pixels(attr: torch.Tensor) -> torch.Tensor:  # [B, V, A] -> [N, A]
            values = attr[batch_of.unsqueeze(1), corners]  # [N, 3, A]
            return values[:, 0] * u + values[:, 1] * v + values[:, 2] * (1.0 - u - v)

        albedo = torch.stack([c.mesh.face_colors for c in cars]).reshape(-1, 3)[global_face]
        mats = torch.stack([c.face_materials for c in cars]).reshape(-1)[global_face]
        material = _material_table(cars)[batch_of, mats]  # [N, 6]
        smooth = torch.stack([c.face_smooth for c in cars]).reshape(-1)[global_face]
        position = at_pixels(verts_t)
        normal = torch.where(
            smooth.unsqueeze(-1),
            at_pixels(vertex_normals(verts_t, faces)),
            face_normals(verts_t, faces).reshape(-1, 3)[global_face],
        )
        eyes = torch.stack([cam.eye for cam in cameras_hi])[batch_of]
        rows = tuple(row[batch_of] for row in _scene_rows(scenes))
        colour = _shade(albedo, normal, position, eyes, material, rows)
        backgrounds = render_backgrounds(  # smooth: rendered at S, upsampled
            scenes, cameras, [c.params for c in cars], torch.stack([c.wheel_pivots for c in cars])
        ).permute(0, 3, 1, 2)
        image = F.interpolate(backgrounds, scale_factor=supersample, mode="bilinear")
        image = image.permute(0, 2, 3, 1).reshape(-1, 3).clone()
        image[covered] = colour.clamp(0.0, 1.0)
        image = image.reshape(batch, hi, hi, 3).permute(0, 3, 1, 2)
        image = F.avg_pool2d(image, supersample).permute(0, 2, 3, 1)
        rgb = (image.flip(1).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
        rgb = np.stack([_degrade(rgb[b], scenes[b]) for b in range(batch)])

        # ---- labels at output resolution --------------------------------------------------
        rast_lo = rasterize(clip, faces, (size, size), cull_backfaces=True)
        face_lo = rast_lo[..., 3].long() - 1
        parts_all = torch.stack([c.mesh.face_parts for c in cars])  # [B, T]
        parts = torch.where(
            face_lo >= 0,
            torch.gather(parts_all, 1, face_lo.clamp(min=0).reshape(batch, -1)).reshape(
                face_lo.shape
            ),
            0,
        )
        cam_depth = -(
            (
                np.concatenate([vertices, np.ones_like(vertices[..., :1])], -1)
                * view[:, None, 2, :]
            ).sum(-1)
        )  # [B, V]
        depth = interpolate(
            torch.tensor(cam_depth, dtype=torch.float32).unsqueeze(-1), rast_lo, faces
        )[..., 0]
        depth = torch.where(face_lo >= 0, depth, torch.zeros_like(depth))
    parts_np = parts.flip(1).to(torch.uint8).numpy()
    depth_np = depth.flip(1).numpy().astype(np.float32)

    keypoints = np.zeros((batch, len(cars[0].keypoints), 3))
    kp_depth = np.zeros((batch, len(cars[0].keypoints)))
    for b, (car, cam) in enumerate(zip(cars, cameras, strict=True)):
        kp = car.keypoints.numpy().astype(np.float64)[None]
        kp_clip = clip_coordinates(kp, mvp[b : b + 1])[0]
        w = kp_clip[:, 3]
        safe_w = np.where(np.abs(w) < 1e-9, 1e-9, w)
        xy = np.stack(
            [
                (kp_clip[:, 0] / safe_w + 1.0) * 0.5 * size,
                (1.0 - kp_clip[:, 1] / safe_w) * 0.5 * size,
            ],
            -1,
        )
        d = -(np.concatenate([kp[0], np.ones((len(kp[0]), 1))], -1) * view[b, 2]).sum(-1)
        keypoints[b, :, :2] = xy
        keypoints[b, :, 2] = keypoint_visibility(xy, d, depth_np[b], cam)
        kp_depth[b] = d
    return RenderedBatch(rgb, parts_np, depth_np, keypoints, kp_depth, cameras)
