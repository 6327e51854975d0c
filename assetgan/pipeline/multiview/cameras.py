"""Cameras of many images from their keypoints (PnP against the keypoint template), the robust
mean per view code, and their errors against known cameras.

Per image: `assetgan.render.pnp.solve_pnp` on the visible keypoints (v > 0) with the template in
metres; an image with fewer than `settings.min_keypoints` usable keypoints (visible keypoints at
distinct spots: `keypoint_groups`) gets no camera (None). Per view code: `assetgan.render.pnp.mean_orbit` over its images' cameras.

Errors (ANCHORS.md viewpoint metrics): azimuth and elevation errors in degrees on the orbit
parameters, the geodesic rotation error, and Acc@30deg = share of images with rotation error <=
30 deg. An image without a camera counts as a miss (180 deg for every error), so medians and
percentiles are over all images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assetgan.core.errors import AssetganError
from assetgan.core.progress import Progress, emit
from assetgan.render.pnp import (
    OrbitMean,
    PnPResult,
    PnPSettings,
    angle_difference,
    keypoint_groups,
    mean_orbit,
    rotation_error,
    solve_pnp,
)

MISS_DEGREES = 180.0  # the error charged to an image that got no camera


def estimate_cameras(
    keypoints_xyv: np.ndarray,  # [N, K, 3] (x, y, v) pixels, v > 0 visible
    template_m: np.ndarray,  # [K, 3] template keypoints in metres
    image_size: tuple[int, int],  # (height, width)
    settings: PnPSettings | Sequence[PnPSettings] = PnPSettings(),  # one, or one per image
    visibility: np.ndarray | None = None,  # [K, 4] the template's visibility model, or None
    progress: Progress | None = None,
) -> list[PnPResult | None]:
    """One PnP camera per image; None where too few keypoints are visible."""
    keypoints_xyv = np.asarray(keypoints_xyv, dtype=np.float64)
    if keypoints_xyv.ndim != 3 or keypoints_xyv.shape[-1] != 3:
        raise AssetganError(
            f"keypoints must be [N, K, 3] (x, y, v), got {list(keypoints_xyv.shape)}"
        )
    per_image = [settings] * len(keypoints_xyv) if isinstance(settings, PnPSettings) else settings
    if len(per_image) != len(keypoints_xyv):
        raise AssetganError(f"got {len(per_image)} settings for {len(keypoints_xyv)} images")
    results: list[PnPResult | None] = []
    for index, (xyv, image_settings) in enumerate(zip(keypoints_xyv, per_image, strict=True)):
        if len(keypoint_groups(xyv, image_size[0], image_settings)) < image_settings.min_keypoints:
            results.append(None)
        else:
            results.append(solve_pnp(xyv, template_m, image_size, image_settings, visibility))
        emit(progress, index + 1, len(keypoints_xyv), task="cameras")
    return results


def mean_cameras(
    results: Sequence[PnPResult | None],
    groups: Sequence[int],  # [N] view-code index of every image
    min_count: int = 1,  # view codes with fewer cameras get none
) -> dict[int, OrbitMean]:
    """The robust mean camera of every view code that has at least `min_count` cameras."""
    if len(results) != len(groups):
        raise AssetganError(f"got {len(groups)} view-code indices for {len(results)} cameras")
    by_group: dict[int, list[PnPResult]] = {}
    for result, group in zip(results, groups, strict=True):
        if result is not None:
            by_group.setdefault(int(group), []).append(result)
    return {
        group: mean_orbit(members)
        for group, members in sorted(by_group.items())
        if len(members) >= min_count
    }


@dataclass(frozen=True)
class CameraErrors:
    """Per-image errors (degrees) of estimated against true cameras; misses are 180."""

    azimuth: np.ndarray  # [N] circular azimuth difference
    elevation: np.ndarray  # [N] absolute elevation difference
    rotation: np.ndarray  # [N] geodesic rotation error
    solved: np.ndarray  # [N] bool: a camera was found

    def summary(self) -> dict[str, float]:
        """Median and 90th percentile of each error, Acc@30deg, share solved."""
        out = {"images": int(len(self.azimuth)), "solved": float(self.solved.mean())}
        for name in ("azimuth", "elevation", "rotation"):
            values = getattr(self, name)
            out[f"{name}_median"] = float(np.median(values))
            out[f"{name}_p90"] = float(np.percentile(values, 90))
        out["acc30_rotation"] = float((self.rotation <= 30.0).mean())
        out["acc30_azimuth"] = float((self.azimuth <= 30.0).mean())
        return out


def camera_errors(
    results: Sequence[PnPResult | None],
    true_azimuth: np.ndarray,  # [N] degrees
    true_elevation: np.ndarray,  # [N] degrees
    true_rotation: np.ndarray,  # [N, 3, 3] world-to-camera rotations
) -> CameraErrors:
    """Errors of estimated cameras against the true ones (misses count 180 deg)."""
    n = len(results)
    if not len(true_azimuth) == len(true_elevation) == len(true_rotation) == n:
        raise AssetganError(f"camera_errors: {n} estimates but truths of other lengths")
    azimuth = np.full(n, MISS_DEGREES)
    elevation = np.full(n, MISS_DEGREES)
    rotation = np.full(n, MISS_DEGREES)
    solved = np.array([r is not None for r in results])
    for index, result in enumerate(results):
        if result is None:
            continue
        azimuth[index] = angle_difference(result.azimuth, true_azimuth[index])
        elevation[index] = abs(result.elevation - float(true_elevation[index]))
        rotation[index] = rotation_error(result.rotation, np.asarray(true_rotation[index]))
    return CameraErrors(azimuth, elevation, rotation, solved)


def draw_overlay(
    image: np.ndarray,  # [H, W, 3] uint8
    scale: int,  # upscaling factor (nearest) so that lines are visible on small images
    skeletons: Sequence[tuple[np.ndarray, tuple[int, int, int]]],  # ([K, 2] pixels, RGB) each
    keypoints_xyv: np.ndarray | None = None,  # [K, 3] detections drawn as dots (v > 0)
) -> np.ndarray:
    """The image upscaled with keypoint skeletons (taxonomy.SKELETON) drawn over it: e.g. the
    template projected by the true and by the estimated camera. Returns [H*s, W*s, 3] uint8."""
    from PIL import Image, ImageDraw

    from assetgan.assets.taxonomy import SKELETON

    height, width = image.shape[:2]
    canvas = Image.fromarray(image).resize((width * scale, height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(canvas)
    for xy, colour in skeletons:
        points = [tuple(float(v) * scale for v in p) for p in np.asarray(xy)]
        for a, b in SKELETON:
            draw.line([points[a], points[b]], fill=colour, width=max(1, scale // 3))
    if keypoints_xyv is not None:
        radius = max(1.5, scale / 2.5)
        for x, y, v in np.asarray(keypoints_xyv):
            if v > 0:
                cx, cy = x * scale, y * scale
                draw.ellipse(
                    [cx - radius, cy - radius, cx + radius, cy + radius], fill=(255, 230, 0)
                )
    return np.asarray(canvas)
