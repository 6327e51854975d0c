"""Cameras from named 2D keypoints: robust perspective PnP against a 3D keypoint template, and a
robust mean of cameras.

`solve_pnp` takes the keypoints of one image (x, y, v in image pixels, docs/conventions.md) in
the template's order and a vertical field of view (the focal length), and returns the camera
whose projection of the template best fits the visible keypoints:

1. hypotheses: RANSAC over random subsets of `settings.subset` visible keypoints (plus the set of
   all of them); each subset is fitted by Levenberg-Marquardt from `len(START_AZIMUTHS) *
   len(START_ELEVATIONS)` orbit starts around the template (one batch), since a small subset has
   several exact fits (a minimal solver would return them all too);
2. scoring: every hypothesis on all visible keypoints, MSAC (sum of min(e^2, T^2), T =
   `settings.threshold` x image height), plus T^2 for every keypoint the image does not show
   that the hypothesis would show (inside the image and, with an optional visibility model
   p(visible | direction to the camera) per keypoint, visible with probability >=
   `settings.visibility_confidence`); hypotheses outside `settings.elevation_range` lose.
   The best one's inliers are the keypoints with e < T;
3. refinement: Levenberg-Marquardt on the inliers (rotation as a left-multiplied rotation vector,
   translation), inliers re-selected, refined again.

Keypoints that sit within `settings.duplicate_distance` of each other form one group
(`keypoint_groups`): distinct keypoints of a car almost never project onto one spot, but heatmap
detectors often put a keypoint and its left/right twin on the same peak. At most one member of
a group is used: subsets draw one member per group, scoring takes a group's best member, and so
does the refinement.

The keypoints are named (the template's order): a mirror-image pose would put the left
keypoints on the right, so names settle the left/right ambiguity; no extra step is needed.

Orbit parameters (`PnPResult.azimuth/elevation/distance/target`) follow render/camera.py: the
camera looks at `target`, the template centre's projection on the optical axis, from `distance`
along the direction (azimuth, elevation); `roll` is the angle of the camera's x axis from the
look-at x axis (0 for every `orbit_camera`), so `orbit_camera(azimuth, elevation, distance,
target=target)` rebuilds the camera when roll is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from assetgan.core.errors import AssetganError
from assetgan.render.camera import Camera, orbit_camera, perspective

START_AZIMUTHS = tuple(range(0, 360, 30))  # degrees: the orbit starts of every fit
START_ELEVATIONS = (8.0, 30.0)  # degrees
MIN_DEPTH = 1e-3  # a hypothesis with a keypoint nearer than this (or behind) is rejected


@dataclass(frozen=True)
class PnPSettings:
    """How `solve_pnp` fits a camera. Defaults suit 64-128 px CarWorld / generator images."""

    fov_y: float = 32.0  # vertical field of view (degrees): fixes the focal length in pixels
    iterations: int = 40  # RANSAC subsets (hypotheses = (iterations + 1) x orbit starts)
    subset: int = 4  # keypoints per subset
    threshold: float = 0.06  # inlier reprojection error as a share of the image height
    min_keypoints: int = 4  # fewer visible keypoints -> AssetganError
    steps: int = 25  # Levenberg-Marquardt steps per fit
    upright: bool = True  # roll fixed at 0 (look-at cameras of an upright car); False: any rotation
    elevation_range: tuple[float, float] = (-15.0, 75.0)  # degrees: hypotheses outside lose
    visibility_confidence: float = 0.9  # with a visibility model: a keypoint the image lacks
    # counts as an outlier under a hypothesis that makes it visible with this probability
    duplicate_distance: float = 0.02  # keypoints nearer than this (share of the image height)
    # to another visible keypoint are dropped: a detector firing twice on one spot
    seed: int = 0  # seed of the subsets (same input + settings -> same camera)

    def __post_init__(self) -> None:
        if not 0.0 < self.fov_y < 180.0:
            raise AssetganError(f"pnp fov_y must be in (0, 180) degrees, got {self.fov_y}")
        if self.min_keypoints < 3 or self.subset < 3:
            raise AssetganError(
                f"pnp needs min_keypoints >= 3 and subset >= 3, got {self.min_keypoints}, "
                f"{self.subset}"
            )
        if self.threshold <= 0 or self.iterations < 0 or self.steps < 1:
            raise AssetganError("pnp threshold must be > 0, iterations >= 0 and steps >= 1")


@dataclass(frozen=True)
class PnPResult:
    """One image's camera. Angles in degrees, lengths in the template's units (metres)."""

    camera: Camera  # the fitted camera (view from the pose, proj from fov_y), image size
    rotation: np.ndarray  # [3, 3] world-to-camera rotation (camera looks down -Z)
    translation: np.ndarray  # [3] world-to-camera translation
    azimuth: float  # orbit azimuth in [0, 360) (render/camera.py orbit_eye)
    elevation: float  # orbit elevation (> 0 above)
    roll: float  # camera roll about its optical axis (0 for look-at cameras)
    distance: float  # eye to target
    target: np.ndarray  # [3] the point looked at (template centre projected on the axis)
    inliers: np.ndarray  # [K] bool: keypoints used by the final fit
    errors: np.ndarray  # [K] reprojection error in pixels (nan where not visible)
    rms_error: float  # root-mean-square reprojection error of the inliers (pixels)

    @property
    def inlier_count(self) -> int:
        return int(self.inliers.sum())

    def to_json(self) -> dict:
        return {
            "azimuth": self.azimuth,
            "elevation": self.elevation,
            "roll": self.roll,
            "distance": self.distance,
            "target": [float(v) for v in self.target],
            "inliers": int(self.inliers.sum()),
            "rms_error": self.rms_error,
            "camera": self.camera.to_json(),
        }


def focal_pixels(fov_y: float, height: int) -> float:
    """Focal length in pixels of a vertical field of view over `height` pixels."""
    return 0.5 * height / math.tan(math.radians(fov_y) / 2.0)


def _rodrigues(omega: np.ndarray) -> np.ndarray:
    """[B, 3] rotation vectors -> [B, 3, 3] rotation matrices."""
    angle = np.linalg.norm(omega, axis=-1)[:, None, None]  # [B, 1, 1]
    axis = omega / np.maximum(angle[:, :, 0], 1e-12)
    skew = np.zeros(omega.shape[:1] + (3, 3))
    skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    skew = skew - skew.transpose(0, 2, 1)
    eye = np.eye(3)[None]
    return eye + np.sin(angle) * skew + (1.0 - np.cos(angle)) * skew @ skew


def _project(rotation, translation, points, focal, centre):
    """rotation [B, 3, 3], translation [B, 3], points [K, 3] -> (pixels [B, K, 2], camera
    points [B, K, 3], points rotated [B, K, 3]) with the image y axis down."""
    rotated = np.einsum("bij,kj->bki", rotation, points)
    cam = rotated + translation[:, None, :]
    depth = np.maximum(-cam[..., 2], MIN_DEPTH)
    x = centre[0] + focal * cam[..., 0] / depth
    y = centre[1] - focal * cam[..., 1] / depth
    return np.stack([x, y], axis=-1), cam, rotated


def _errors(rotation, translation, points, xy, focal, centre) -> np.ndarray:
    """[B, K] reprojection errors in pixels; inf where a keypoint is not in front."""
    pixels, cam, _ = _project(rotation, translation, points, focal, centre)
    errors = np.linalg.norm(pixels - xy[None], axis=-1)
    return np.where(-cam[..., 2] > MIN_DEPTH, errors, np.inf)


def _cost(rotation, translation, points, xy, weights, focal, centre) -> np.ndarray:
    """[B] weighted sum of squared reprojection errors (inf behind the camera)."""
    errors = _errors(rotation, translation, points, xy, focal, centre)
    squared = np.where(weights > 0, errors**2, 0.0)  # inf where a used keypoint is behind
    return (weights * squared).sum(-1)


def upright_rotation(azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """[B] azimuths, [B] elevations (radians) -> [B, 3, 3] world-to-camera rotations of look-at
    cameras (roll 0; rows: camera x, y, z in the world; camera.py orbit convention)."""
    sa, ca, se, ce = np.sin(azimuth), np.cos(azimuth), np.sin(elevation), np.cos(elevation)
    zero = np.zeros_like(sa)
    rows = (
        np.stack([ca, zero, -sa], -1),
        np.stack([-se * sa, ce, -se * ca], -1),
        np.stack([ce * sa, se, ce * ca], -1),
    )
    return np.stack(rows, -2)


def _upright_derivatives(azimuth: np.ndarray, elevation: np.ndarray):
    """(dR/dazimuth, dR/delevation), each [B, 3, 3], of upright_rotation."""
    sa, ca, se, ce = np.sin(azimuth), np.cos(azimuth), np.sin(elevation), np.cos(elevation)
    zero = np.zeros_like(sa)
    d_azimuth = np.stack(
        [
            np.stack([-sa, zero, -ca], -1),
            np.stack([-se * ca, zero, se * sa], -1),
            np.stack([ce * ca, zero, -ce * sa], -1),
        ],
        -2,
    )
    d_elevation = np.stack(
        [
            np.stack([zero, zero, zero], -1),
            np.stack([-ce * sa, -se, -ce * ca], -1),
            np.stack([-se * sa, ce, -se * ca], -1),
        ],
        -2,
    )
    return d_azimuth, d_elevation


def levenberg_marquardt(
    rotation: np.ndarray,  # [B, 3, 3] starts
    translation: np.ndarray,  # [B, 3]
    points: np.ndarray,  # [K, 3] template
    xy: np.ndarray,  # [K, 2] image keypoints (pixels)
    weights: np.ndarray,  # [B, K] per-fit keypoint weights (0 = unused)
    focal: float,  # pixels
    centre: tuple[float, float],  # principal point (pixels)
    steps: int,
    angles: np.ndarray | None = None,  # [B, 2] (azimuth, elevation) radians: upright fits
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """A batch of pose fits minimising the weighted squared reprojection error. With `angles`
    the rotation is upright_rotation(angles) (5 parameters: roll stays 0), else any rotation
    (updated as exp(w) R, 6 parameters). Returns (rotation, translation, angles, cost [B])."""
    rotation, translation = rotation.copy(), translation.copy()
    if angles is not None:
        angles = angles.copy()
        rotation = upright_rotation(angles[:, 0], angles[:, 1])
    batch = len(rotation)
    damping = np.full(batch, 1e-3)
    cost = _cost(rotation, translation, points, xy, weights, focal, centre)
    for _ in range(steps):
        pixels, cam, rotated = _project(rotation, translation, points, focal, centre)
        depth = np.maximum(-cam[..., 2], MIN_DEPTH)
        residual = pixels - xy[None]  # [B, K, 2]
        # d(camera point)/d(parameters) [B, K, 3, D]: rotation part, then translation (I)
        if angles is None:  # P = exp(w) R X + t: dP/dw = -[R X]_x
            qx, qy, qz = rotated[..., 0], rotated[..., 1], rotated[..., 2]
            zero = np.zeros_like(qx)
            d_rotation = np.stack(
                [np.stack([zero, -qz, qy], -1), np.stack([qz, zero, -qx], -1),
                 np.stack([-qy, qx, zero], -1)], -1,
            )  # fmt: skip
        else:
            d_azimuth, d_elevation = _upright_derivatives(angles[:, 0], angles[:, 1])
            d_rotation = np.stack(
                [np.einsum("bij,kj->bki", d_azimuth, points),
                 np.einsum("bij,kj->bki", d_elevation, points)], -1,
            )  # fmt: skip
        d_point = np.concatenate(
            [d_rotation, np.broadcast_to(np.eye(3), cam.shape[:2] + (3, 3))], -1
        )
        # pixel x = cx + f Px / d, y = cy - f Py / d with d = -Pz
        along = (focal / depth)[..., None]  # [B, K, 1]
        slope_x = (focal * cam[..., 0] / depth**2)[..., None]
        slope_y = (focal * cam[..., 1] / depth**2)[..., None]
        jac_x = along * d_point[..., 0, :] + slope_x * d_point[..., 2, :]
        jac_y = -along * d_point[..., 1, :] - slope_y * d_point[..., 2, :]
        root = np.sqrt(weights)
        jacobian = np.stack([jac_x, jac_y], -2) * root[..., None, None]  # [B, K, 2, D]
        residual = np.where(np.isfinite(residual), residual, 0.0) * root[..., None]
        jac = jacobian.reshape(batch, -1, jacobian.shape[-1])
        res = residual.reshape(batch, -1)
        hessian = jac.transpose(0, 2, 1) @ jac
        gradient = np.einsum("bni,bn->bi", jac, res)
        diagonal = np.diagonal(hessian, axis1=1, axis2=2)
        eye = np.eye(jac.shape[-1])[None]
        damped = hessian + (damping[:, None] * (diagonal + 1e-9))[:, :, None] * eye
        delta = -np.linalg.solve(damped, gradient[..., None])[..., 0]
        new_translation = translation + delta[:, -3:]
        if angles is None:
            new_angles = None
            new_rotation = _rodrigues(delta[:, :3]) @ rotation
        else:
            new_angles = angles + delta[:, :2]
            new_rotation = upright_rotation(new_angles[:, 0], new_angles[:, 1])
        new_cost = _cost(new_rotation, new_translation, points, xy, weights, focal, centre)
        better = new_cost < cost
        rotation[better], translation[better], cost[better] = (
            new_rotation[better],
            new_translation[better],
            new_cost[better],
        )
        if angles is not None:
            angles[better] = new_angles[better]
        damping = np.clip(np.where(better, damping * 0.3, damping * 10.0), 1e-9, 1e9)
    return rotation, translation, angles, cost


def _starts(
    points: np.ndarray, xy: np.ndarray, visible: np.ndarray, focal: float, centre
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orbit starts (rotation [S, 3, 3], translation [S, 3], angles [S, 2] radians): the
    template's visible keypoints placed at the depth that matches their 2D spread, their
    centroid on its 2D centroid."""
    vis_points, vis_xy = points[visible], xy[visible]
    spread_3d = np.sqrt(((vis_points - vis_points.mean(0)) ** 2).sum(-1).mean())
    spread_2d = np.sqrt(((vis_xy - vis_xy.mean(0)) ** 2).sum(-1).mean())
    depth = focal * spread_3d / max(spread_2d, 1.0)
    u, v = vis_xy.mean(0)
    ray = np.array([(u - centre[0]) / focal, -(v - centre[1]) / focal, -1.0])
    grid = np.radians([(a, e) for e in START_ELEVATIONS for a in START_AZIMUTHS])
    rotations = upright_rotation(grid[:, 0], grid[:, 1])
    translations = depth * ray[None] - rotations @ vis_points.mean(0)
    return rotations, translations, grid


def expected_visible(
    rotation: np.ndarray,  # [B, 3, 3]
    translation: np.ndarray,  # [B, 3]
    points: np.ndarray,  # [K, 3]
    visibility: np.ndarray,  # [K, 4] logistic model (w, b) on the unit keypoint-to-eye vector
) -> np.ndarray:
    """[B, K] probability that each keypoint is not hidden by the car under each pose."""
    visibility = np.asarray(visibility, dtype=np.float64)
    if visibility.shape != (len(points), 4):
        raise AssetganError(
            f"pnp visibility model must be [K, 4] with K = {len(points)}, got "
            f"{list(visibility.shape)}"
        )
    eye = -np.einsum("bji,bj->bi", rotation, translation)  # [B, 3]
    to_eye = eye[:, None, :] - points[None]
    to_eye = to_eye / np.maximum(np.linalg.norm(to_eye, axis=-1, keepdims=True), 1e-9)
    logit = (to_eye * visibility[None, :, :3]).sum(-1) + visibility[:, 3]
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))


def orbit_parameters(
    rotation: np.ndarray, translation: np.ndarray, centre_point: np.ndarray
) -> tuple[float, float, float, float, np.ndarray]:
    """(azimuth, elevation, roll, distance, target [3]) of a world-to-camera pose; target is
    `centre_point` projected on the optical axis (render/camera.py orbit convention)."""
    offset = rotation[2]  # unit vector from the target towards the eye
    azimuth = math.degrees(math.atan2(offset[0], offset[2])) % 360.0
    elevation = math.degrees(math.asin(float(np.clip(offset[1], -1.0, 1.0))))
    forward = -offset
    right = np.cross(forward, [0.0, 1.0, 0.0])
    if np.linalg.norm(right) < 1e-9:  # straight down or up: roll is undefined
        roll = 0.0
    else:
        right = right / np.linalg.norm(right)
        up = np.cross(right, forward)
        roll = math.degrees(math.atan2(float(rotation[0] @ up), float(rotation[0] @ right)))
    eye = -rotation.T @ translation
    distance = float(-(rotation @ centre_point + translation)[2])
    target = eye + forward * distance
    return azimuth, elevation, roll, distance, target


def keypoint_groups(
    keypoints_xyv: np.ndarray,  # [K, 3] (x, y, v)
    image_height: int,
    settings: PnPSettings = PnPSettings(),
) -> list[np.ndarray]:
    """The visible keypoints (v > 0, finite) grouped by position: keypoints within
    settings.duplicate_distance x height of each other (transitively) form one group, one
    detection that several names claim. Groups in order of their first keypoint."""
    keypoints_xyv = np.asarray(keypoints_xyv, dtype=np.float64)
    visible = (keypoints_xyv[:, 2] > 0) & np.isfinite(keypoints_xyv[:, :2]).all(-1)
    ids = np.flatnonzero(visible)
    xy = keypoints_xyv[ids, :2]
    near = (
        np.linalg.norm(xy[:, None] - xy[None], axis=-1) < settings.duplicate_distance * image_height
    )
    label = np.arange(len(ids))
    for _ in range(len(ids)):  # connected components by repeated min-label propagation
        new_label = np.where(near, label[None, :], len(ids)).min(1)
        if np.array_equal(new_label, label):
            break
        label = new_label
    return [ids[label == value] for value in np.unique(label)]


def _check_inputs(keypoints_xyv, template, image_size) -> tuple[np.ndarray, np.ndarray, int, int]:
    keypoints_xyv = np.asarray(keypoints_xyv, dtype=np.float64)
    template = np.asarray(template, dtype=np.float64)
    if template.ndim != 2 or template.shape[1] != 3:
        raise AssetganError(f"pnp template must be [K, 3], got {list(template.shape)}")
    if keypoints_xyv.shape != (len(template), 3):
        raise AssetganError(
            f"pnp keypoints must be [K, 3] (x, y, v) with K = {len(template)} template "
            f"keypoints, got {list(keypoints_xyv.shape)}"
        )
    height, width = (int(v) for v in image_size)
    if height < 1 or width < 1:
        raise AssetganError(f"pnp image size must be positive, got {image_size}")
    return keypoints_xyv, template, height, width


def solve_pnp(
    keypoints_xyv: np.ndarray,  # [K, 3] (x, y, v) pixels, v > 0 = visible, template order
    template: np.ndarray,  # [K, 3] 3D keypoints in the world frame (metres)
    image_size: tuple[int, int],  # (height, width) in pixels
    settings: PnPSettings = PnPSettings(),
    visibility: np.ndarray | None = None,  # [K, 4] (w, b): p(visible) = sigmoid(w . d + b)
) -> PnPResult:
    """The camera of one image from its visible keypoints (module docstring). AssetganError when
    fewer than `settings.min_keypoints` keypoints are visible."""
    keypoints_xyv, template, height, width = _check_inputs(keypoints_xyv, template, image_size)
    groups = keypoint_groups(keypoints_xyv, height, settings)
    if len(groups) < settings.min_keypoints:
        raise AssetganError(
            f"pnp needs at least {settings.min_keypoints} visible keypoints at distinct spots, "
            f"got {len(groups)}: drop this image or lower min_keypoints"
        )
    visible = np.zeros(len(template), dtype=bool)
    visible[np.concatenate(groups)] = True
    xy = keypoints_xyv[:, :2]
    focal = focal_pixels(settings.fov_y, height)
    centre = (width / 2.0, height / 2.0)
    threshold = settings.threshold * height

    # ---- hypotheses: random subsets (one member per group) x orbit starts, one batch ----------
    rng = np.random.default_rng(settings.seed)
    subsets = {tuple(int(rng.choice(group)) for group in groups)}  # every group once
    if len(groups) > settings.subset or max(len(group) for group in groups) > 1:
        for _ in range(settings.iterations):
            chosen = rng.choice(len(groups), min(settings.subset, len(groups)), replace=False)
            subsets.add(tuple(sorted(int(rng.choice(groups[g])) for g in chosen)))
    subsets = sorted(subsets)
    start_rotation, start_translation, start_angles = _starts(template, xy, visible, focal, centre)
    n_starts = len(start_rotation)
    weights = np.zeros((len(subsets) * n_starts, len(template)))
    for index, subset in enumerate(subsets):
        weights[index * n_starts : (index + 1) * n_starts, list(subset)] = 1.0
    rotation, translation, angles, _ = levenberg_marquardt(
        np.tile(start_rotation, (len(subsets), 1, 1)),
        np.tile(start_translation, (len(subsets), 1)),
        template,
        xy,
        weights,
        focal,
        centre,
        settings.steps,
        np.tile(start_angles, (len(subsets), 1)) if settings.upright else None,
    )

    # ---- scoring: MSAC, a group scored by its best member; priors ----------------------------
    capped = np.minimum(_errors(rotation, translation, template, xy, focal, centre), threshold)
    msac = sum((capped[:, group] ** 2).min(-1) for group in groups)
    elevation = np.degrees(np.arcsin(np.clip(rotation[:, 2, 1], -1.0, 1.0)))
    low, high = settings.elevation_range
    upside_down = rotation[:, 1, 1] <= 0.0  # the camera's up axis points down
    msac = msac + np.where((elevation < low) | (elevation > high) | upside_down, 1e12, 0.0)
    if visibility is not None:
        pixels = _project(rotation, translation, template, focal, centre)[0]
        inside = (pixels >= 0).all(-1) & (pixels[..., 0] < width) & (pixels[..., 1] < height)
        shown = expected_visible(rotation, translation, template, visibility)
        missing = inside & (shown >= settings.visibility_confidence) & ~visible[None]  # [B, K]
        msac = msac + threshold**2 * missing.sum(-1)
    best = int(np.argmin(msac))
    rotation, translation = rotation[best : best + 1], translation[best : best + 1]
    angles = None if angles is None else angles[best : best + 1]

    # ---- refinement on the inliers (at most one per group) -----------------------------------
    inliers = np.zeros(len(template), dtype=bool)
    for _ in range(3):
        all_errors = _errors(rotation, translation, template, xy, focal, centre)[0]
        members = np.array([group[np.argmin(all_errors[group])] for group in groups])
        order = members[np.argsort(all_errors[members])]
        count = max(int((all_errors[order] < threshold).sum()), settings.min_keypoints)
        new_inliers = np.zeros(len(template), dtype=bool)
        new_inliers[order[:count]] = True  # the inliers, or the best few when too few
        if np.array_equal(new_inliers, inliers):
            break
        inliers = new_inliers
        rotation, translation, angles, _ = levenberg_marquardt(
            rotation, translation, template, xy, inliers[None].astype(float), focal, centre,
            settings.steps * 2, angles,
        )  # fmt: skip

    rotation, translation = rotation[0], translation[0]
    errors = _errors(rotation[None], translation[None], template, xy, focal, centre)[0]
    errors = np.where(visible, errors, np.nan)
    box_centre = 0.5 * (template.min(0) + template.max(0))
    azimuth, elevation, roll, distance, target = orbit_parameters(rotation, translation, box_centre)
    return PnPResult(
        camera=pose_camera(rotation, translation, settings.fov_y, (height, width), template),
        rotation=rotation,
        translation=translation,
        azimuth=azimuth,
        elevation=elevation,
        roll=roll,
        distance=distance,
        target=target,
        inliers=inliers,
        errors=errors,
        rms_error=float(np.sqrt(np.mean(errors[inliers] ** 2))),
    )


def pose_camera(
    rotation: np.ndarray,  # [3, 3] world-to-camera
    translation: np.ndarray,  # [3]
    fov_y: float,  # degrees
    image_size: tuple[int, int],  # (height, width)
    template: np.ndarray,  # [K, 3]: near/far planes bracket it with a margin of its extent
) -> Camera:
    """A Camera (render/camera.py) for a pose and a field of view."""
    height, width = image_size
    view = np.eye(4)
    view[:3, :3], view[:3, 3] = rotation, translation
    depths = -(template @ rotation.T + translation)[:, 2]
    extent = float(np.linalg.norm(template.max(0) - template.min(0)))
    near = max(float(depths.min()) - extent, 0.1)
    far = float(depths.max()) + extent
    return Camera(
        torch.tensor(view, dtype=torch.float32),
        perspective(fov_y, width / height, near, max(far, near + 1.0)),
        width,
        height,
    )


def angle_difference(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Absolute difference of angles in degrees on the circle, in [0, 180]."""
    diff = np.abs((np.asarray(a, dtype=np.float64) - np.asarray(b)) % 360.0)
    return np.minimum(diff, 360.0 - diff)


def rotation_error(rotation_a: np.ndarray, rotation_b: np.ndarray) -> np.ndarray:
    """Geodesic angle (degrees) between rotations [..., 3, 3] (ANCHORS.md viewpoint metric)."""
    relative = np.swapaxes(rotation_a, -1, -2) @ rotation_b
    cosine = (np.trace(relative, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def circular_median(angles: Sequence[float] | np.ndarray) -> float:
    """The sample angle (degrees, [0, 360)) with the least summed circular distance to the others
    (the median on the circle; robust to a few angles off by 180)."""
    angles = np.asarray(angles, dtype=np.float64) % 360.0
    if angles.size == 0:
        raise AssetganError("circular_median of no angles")
    spread = angle_difference(angles[:, None], angles[None, :]).sum(1)
    return float(angles[int(np.argmin(spread))])


@dataclass(frozen=True)
class OrbitMean:
    """The robust mean of several cameras (e.g. one view code over its content codes)."""

    azimuth: float  # circular median (degrees, [0, 360))
    elevation: float  # median (degrees)
    distance: float  # median
    target: tuple[float, float, float]  # per-coordinate median of the look-at points
    count: int  # cameras averaged
    azimuth_spread: float  # median circular distance of the azimuths from `azimuth` (degrees)
    elevation_spread: float  # median absolute deviation of the elevations (degrees)

    def camera(self, fov_y: float, image_size: tuple[int, int]) -> Camera:
        """The look-at (roll 0) camera of the mean; image_size = (height, width)."""
        return orbit_camera(
            self.azimuth,
            self.elevation,
            self.distance,
            fov_y_deg=fov_y,
            size=image_size,
            target=self.target,
            near=max(self.distance * 0.3, 0.1),
            far=self.distance * 3.0,
        )

    def to_json(self) -> dict:
        return {
            "azimuth": self.azimuth,
            "elevation": self.elevation,
            "distance": self.distance,
            "target": list(self.target),
            "count": self.count,
            "azimuth_spread": self.azimuth_spread,
            "elevation_spread": self.elevation_spread,
        }

    @classmethod
    def from_json(cls, obj: dict) -> OrbitMean:
        try:
            return cls(
                azimuth=float(obj["azimuth"]),
                elevation=float(obj["elevation"]),
                distance=float(obj["distance"]),
                target=tuple(float(v) for v in obj["target"]),
                count=int(obj["count"]),
                azimuth_spread=float(obj["azimuth_spread"]),
                elevation_spread=float(obj["elevation_spread"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(
                f"orbit mean json is missing or has a bad field: {error}"
            ) from error


def mean_orbit(results: Sequence[PnPResult]) -> OrbitMean:
    """Robust mean of cameras: circular median azimuth, median elevation, distance, target."""
    if not results:
        raise AssetganError("mean_orbit needs at least one camera")
    azimuths = np.array([r.azimuth for r in results])
    elevations = np.array([r.elevation for r in results])
    azimuth = circular_median(azimuths)
    elevation = float(np.median(elevations))
    target = np.median(np.array([r.target for r in results]), axis=0)
    return OrbitMean(
        azimuth=azimuth,
        elevation=elevation,
        distance=float(np.median([r.distance for r in results])),
        target=tuple(float(v) for v in target),
        count=len(results),
        azimuth_spread=float(np.median(angle_difference(azimuths, azimuth))),
        elevation_spread=float(np.median(np.abs(elevations - elevation))),
    )
