"""Wheels: fit each wheel (centre, radius, width, axle) from the tire and wheelhub faces and the
wheel keypoints, and build a clean wheel (tire + rim + hub, UV-mapped) at the fitted size.

Frames: docs/conventions.md (left = +X, front = +Z). A fitted axle points to the car's left.
A built wheel lives in its own frame: centre at the origin, axle = local +X, and its outer face
towards +X for a left wheel (mirrored for a right wheel), so spinning is a rotation about X.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assetgan.assets.taxonomy import KEYPOINT_ID, PART_ID
from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.export.topology import face_areas
from assetgan.render.asset import MATERIAL_ID, CarAsset

WHEELS = ("FL", "FR", "RL", "RR")  # front left, front right, rear left, rear right
WHEEL_WORDS = {"FL": "front left", "FR": "front right", "RL": "rear left", "RR": "rear right"}
_WHEEL_KEYPOINT = {
    "FL": "left_front_wheel",
    "FR": "right_front_wheel",
    "RL": "left_back_wheel",
    "RR": "right_back_wheel",
}
WHEEL_PARTS = (PART_ID["tire"], PART_ID["wheelhub"])
MAX_AXLE_TILT_DEG = 25.0  # a fitted axle further than this from X means a wrong frame
WIDTH_RANGE = (0.35, 1.2)  # tire width / radius kept in this range (real tires: ~0.5-0.8)


@dataclass(frozen=True)
class WheelFit:
    """One fitted wheel, in the input car frame (metres)."""

    name: str  # FL, FR, RL or RR
    centre: np.ndarray  # [3] centre of the tire
    axle: np.ndarray  # [3] unit spin axis of the rig: the car's +X (left)
    axle_fit: np.ndarray  # [3] unit axle fitted to the wheel's vertices (within 25 deg of X)
    radius: float  # outer tire radius
    width: float  # tire width along the axle
    rim_ratio: float  # rim radius / tire radius
    tire_color: tuple[float, float, float]  # albedo of the tire faces (median)
    rim_color: tuple[float, float, float]  # albedo of the brighter half of the hub faces
    faces: int  # input faces assigned to this wheel
    keypoint_offset: float | None  # distance from the wheel keypoint to the axle line (m)

    @property
    def left(self) -> bool:
        return self.name.endswith("L")

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "centre": [round(float(c), 6) for c in self.centre],
            "axle": [round(float(c), 6) for c in self.axle],
            "axle_fit": [round(float(c), 6) for c in self.axle_fit],
            "radius": round(self.radius, 6),
            "width": round(self.width, 6),
            "rim_ratio": round(self.rim_ratio, 4),
            "faces": self.faces,
            "keypoint_offset": None
            if self.keypoint_offset is None
            else round(self.keypoint_offset, 6),
        }


def _circle_fit(points: np.ndarray) -> np.ndarray:
    """Kasa least-squares circle through 2D points [N, 2] -> centre [2]."""
    design = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    rhs = (points**2).sum(1)
    solution, *_ = np.linalg.lstsq(design, rhs, rcond=None)
    return solution[:2]


def _median_colour(colours: np.ndarray, brighter_half: bool = False) -> tuple[float, ...]:
    if len(colours) == 0:
        return (0.06, 0.06, 0.065) if not brighter_half else (0.72, 0.73, 0.76)
    if brighter_half:
        luminance = colours @ np.array([0.2126, 0.7152, 0.0722])
        colours = colours[luminance >= np.median(luminance)]
    return tuple(float(c) for c in np.median(colours, axis=0))


def fit_wheels(asset: CarAsset) -> list[WheelFit]:
    """Fit the four wheels (WHEELS order). AssetganError when the asset has no wheel parts or
    wheel geometry in fewer than four corners."""
    where = asset.source or "car asset"
    vertices = asset.vertices.astype(np.float64)
    area = face_areas(vertices, asset.faces)
    wheel = np.isin(asset.face_parts, WHEEL_PARTS) & (area > 1e-12)
    if not wheel.any():
        raise AssetganError(
            f"{where}: no wheel parts (no 'tire' or 'wheelhub' faces); export needs a "
            "part-labelled car with four wheels"
        )
    keypoints = asset.keypoints
    if keypoints is not None:
        wheel_kp = np.stack([keypoints[KEYPOINT_ID[_WHEEL_KEYPOINT[n]]] for n in WHEELS])
        x_mid, z_mid = float(wheel_kp[:, 0].mean()), float(wheel_kp[:, 2].mean())
    else:
        lo, hi = vertices.min(0), vertices.max(0)
        x_mid, z_mid = float(lo[0] + hi[0]) / 2.0, float(lo[2] + hi[2]) / 2.0
    centroids = vertices[asset.faces].mean(1)
    left = centroids[:, 0] > x_mid
    front = centroids[:, 2] > z_mid
    corner_of = {"FL": left & front, "FR": ~left & front, "RL": left & ~front, "RR": ~left & ~front}
    corner_area = {n: float(area[wheel & m].sum()) for n, m in corner_of.items()}
    largest = max(corner_area.values())
    missing = [n for n in WHEELS if corner_area[n] < 0.1 * largest]
    if missing:
        raise AssetganError(
            f"{where}: wheel geometry in only {4 - len(missing)} of 4 corners (none at "
            f"{', '.join(WHEEL_WORDS[n] for n in missing)}); export needs four wheels"
        )
    fits = []
    for name in WHEELS:
        faces = wheel & corner_of[name]
        kp = None if keypoints is None else wheel_kp[WHEELS.index(name)].astype(np.float64)
        fits.append(_fit_one(name, asset, vertices, faces, kp, where))
    return fits


def _fit_one(
    name: str,
    asset: CarAsset,
    vertices: np.ndarray,
    face_mask: np.ndarray,
    keypoint: np.ndarray | None,
    where: str,
) -> WheelFit:
    points = vertices[np.unique(asset.faces[face_mask])]
    tire_mask = face_mask & (asset.face_parts == PART_ID["tire"])
    hub_mask = face_mask & (asset.face_parts == PART_ID["wheelhub"])
    tire_points = vertices[np.unique(asset.faces[tire_mask])] if tire_mask.any() else points
    if len(points) < 6:
        raise AssetganError(f"{where}: the {WHEEL_WORDS[name]} wheel has too few vertices to fit")
    # The fitted axle: the direction of least spread of the wheel's vertices (a flat disc). It
    # checks the frame; the rig turns every wheel about the car's X axis (docs/conventions.md).
    _, _, axes = np.linalg.svd(points - points.mean(0), full_matrices=False)
    fitted = axes[-1] / np.linalg.norm(axes[-1])
    fitted = fitted if fitted[0] >= 0 else -fitted
    tilt = float(np.degrees(np.arccos(np.clip(fitted[0], -1.0, 1.0))))
    if tilt > MAX_AXLE_TILT_DEG:
        raise AssetganError(
            f"{where}: the {WHEEL_WORDS[name]} wheel's axle is {tilt:.0f} deg off the car's X "
            "axis; is the car in the +Y-up, +Z-forward frame (docs/conventions.md)?"
        )
    axle = np.array([1.0, 0.0, 0.0])
    # Centre and radius in the wheel plane (y, z): a least-squares circle through the tire's
    # vertices, the radius at their 95th percentile (robust to a patch's ragged edge).
    plane = tire_points[:, 1:]
    centre_yz = _circle_fit(plane)
    radius = float(np.percentile(np.linalg.norm(plane - centre_yz, axis=1), 95))
    if radius <= 1e-6:
        raise AssetganError(f"{where}: the {WHEEL_WORDS[name]} wheel is flat (empty geometry)")
    along = tire_points[:, 0]
    # A reconstruction may show only the tire's face (a flat patch): keep a plausible width.
    width = float(np.clip(np.ptp(along), WIDTH_RANGE[0] * radius, WIDTH_RANGE[1] * radius))
    centre = np.array([0.5 * (along.max() + along.min()), centre_yz[0], centre_yz[1]])
    rim_ratio = 0.65
    if hub_mask.any():
        hub = vertices[np.unique(asset.faces[hub_mask])] - centre
        hub_radial = np.linalg.norm(hub - np.outer(hub @ axle, axle), axis=1)
        rim_ratio = float(np.clip(np.percentile(hub_radial, 95) / radius, 0.45, 0.85))
    offset = None
    if keypoint is not None:
        to_kp = keypoint - centre
        offset = float(np.linalg.norm(to_kp - (to_kp @ axle) * axle))
    return WheelFit(
        name=name,
        centre=centre,
        axle=axle,
        axle_fit=fitted,
        radius=radius,
        width=width,
        rim_ratio=rim_ratio,
        tire_color=_median_colour(asset.face_colors[tire_mask]),
        rim_color=_median_colour(asset.face_colors[hub_mask], brighter_half=True),
        faces=int(face_mask.sum()),
        keypoint_offset=offset,
    )


def inside_wheels(vertices: np.ndarray, faces: np.ndarray, fits: list[WheelFit]) -> np.ndarray:
    """[T] bool: faces whose three corners lie inside a fitted wheel's cylinder."""
    inside = np.zeros(len(faces), dtype=bool)
    for fit in fits:
        rel = vertices[faces].astype(np.float64) - fit.centre  # [T, 3, 3]
        along = rel @ fit.axle
        radial = np.linalg.norm(rel - along[..., None] * fit.axle, axis=-1)
        corner_in = (np.abs(along) <= 0.5 * fit.width) & (radial <= fit.radius)
        inside |= corner_in.all(1)
    return inside


# ---- the clean wheel ---------------------------------------------------------------------


@dataclass(frozen=True)
class WheelMesh:
    """A built wheel in its own frame (see the module docstring)."""

    vertices: np.ndarray  # [V, 3] float64
    faces: np.ndarray  # [T, 3] int64, counter-clockwise seen from outside
    uv: np.ndarray  # [V, 2] texture coordinates in [0, 1]
    face_parts: np.ndarray  # [T] car_20 ids: tire, wheelhub
    face_materials: np.ndarray  # [T] render.asset.MATERIALS ids: rubber, metal
    face_colors: np.ndarray  # [T, 3] albedo


def revolve(
    profile: np.ndarray, segments: int, v_marks: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Revolve (x, r) profile points [P, 2] about the X axis -> vertices [P * (S + 1), 3],
    faces, uv [.., 2] (u = angle / 2 pi with a duplicated seam column, v = profile arc length in
    [0, 1]; with v_marks = (i, j) the arc from point i to point j maps to v in [0.25, 0.75]).
    Faces that collapse at r = 0 are dropped. Winding: outward for a profile that runs with
    the solid on its left in the (x, r) half-plane (counter-clockwise)."""
    count = len(profile)
    phi = np.linspace(0.0, 2.0 * np.pi, segments + 1)
    x = np.broadcast_to(profile[:, 0:1], (count, segments + 1))
    y = profile[:, 1:2] * np.cos(phi)[None, :]
    z = profile[:, 1:2] * np.sin(phi)[None, :]
    vertices = np.stack([x, y, z], -1).reshape(-1, 3)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(profile, axis=0), axis=1))])
    if v_marks is None:
        along = arc / max(arc[-1], 1e-12)
    else:
        along = np.interp(arc, [0.0, arc[v_marks[0]], arc[v_marks[1]], arc[-1]], [0, 0.25, 0.75, 1])
    u = np.broadcast_to(phi[None, :] / (2.0 * np.pi), (count, segments + 1))
    v = np.broadcast_to(along[:, None], (count, segments + 1))
    uv = np.stack([u, v], -1).reshape(-1, 2)
    i, j = np.meshgrid(np.arange(count - 1), np.arange(segments), indexing="ij")
    a = i * (segments + 1) + j
    b = a + 1
    c = a + segments + 1
    d = c + 1
    faces = np.concatenate([np.stack([a, d, b], -1), np.stack([a, c, d], -1)]).reshape(-1, 3)
    keep = face_areas(vertices, faces) > 1e-14
    return vertices, faces[keep], uv


def _box_spoke(angle: float, r0: float, r1: float, x0: float, x1: float, half: float):
    """A spoke: a box from radius r0 to r1 at `angle` around X, x from x0 to x1."""
    corners = np.array(
        [[x, r, t] for x in (x0, x1) for r in (r0, r1) for t in (-half, half)], dtype=np.float64
    )
    faces = np.array(
        [
            [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
            [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],
        ],
        dtype=np.int64,
    )  # fmt: skip
    cos, sin = np.cos(angle), np.sin(angle)
    y = corners[:, 1] * cos - corners[:, 2] * sin
    z = corners[:, 1] * sin + corners[:, 2] * cos
    vertices = np.stack([corners[:, 0], y, z], 1)
    return vertices, faces


def _rounded_corner(cx: float, cr: float, radius: float, start: float, end: float, n: int):
    angles = np.linspace(start, end, n)
    return np.stack([cx + radius * np.cos(angles), cr + radius * np.sin(angles)], 1)


def build_wheel(
    fit: WheelFit,
    spokes: int = 5,  # rim spokes
    segments: int = 48,  # steps around the axle
) -> WheelMesh:
    """A clean wheel at the fitted radius, width and rim ratio: a closed tire with two tread
    grooves, a dished rim with a lip, a hub cap and `spokes` spokes (UV-mapped)."""
    r, w = fit.radius, fit.width
    rim_r = fit.rim_ratio * r
    half = w / 2.0
    bevel = 0.3 * min(half, r - rim_r)
    groove = min(0.012, 0.08 * (r - rim_r))
    # Tire profile: closed loop (x, r), solid on the left when walked in this order.
    tread = [[half - bevel, r], [0.25 * half, r], [0.22 * half, r - groove],
             [0.12 * half, r - groove], [0.09 * half, r], [-0.09 * half, r],
             [-0.12 * half, r - groove], [-0.22 * half, r - groove], [-0.25 * half, r],
             [-(half - bevel), r]]  # fmt: skip
    tire_profile = np.concatenate(
        [
            [[-0.92 * half, rim_r], [0.92 * half, rim_r], [half, rim_r + 0.15 * (r - rim_r)]],
            _rounded_corner(half - bevel, r - bevel, bevel, 0.0, np.pi / 2.0, 5),
            tread[1:-1],
            _rounded_corner(-(half - bevel), r - bevel, bevel, np.pi / 2.0, np.pi, 5),
            [[-half, rim_r + 0.15 * (r - rim_r)], [-0.92 * half, rim_r]],
        ]
    )
    tread_from = 3 + 5 - 1  # the tread runs between the two rounded corners
    tire_v, tire_f, tire_uv = revolve(
        tire_profile, segments, v_marks=(tread_from, tread_from + len(tread) - 1)
    )
    # Rim: from the hub cap's centre (on the axle, outer side) round to the back (on the axle),
    # a closed surface of revolution (the profile's ends lie on the axle).
    rim_profile = np.array(
        [
            [0.55 * half, 0.0],
            [0.55 * half, 0.14 * rim_r],
            [0.42 * half, 0.2 * rim_r],
            [0.3 * half, 0.24 * rim_r],
            [0.3 * half, 0.84 * rim_r],
            [0.7 * half, 0.94 * rim_r],
            [0.9 * half, 1.0 * rim_r],
            [0.9 * half, 0.95 * rim_r],
            [-0.9 * half, 0.95 * rim_r],
            [-0.9 * half, 0.0],
        ]
    )
    rim_v, rim_f, rim_uv = revolve(rim_profile, segments)
    pieces = [
        (tire_v, tire_f, tire_uv, PART_ID["tire"], "rubber", fit.tire_color),
        (rim_v, rim_f, rim_uv, PART_ID["wheelhub"], "metal", None),
    ]
    for k in range(spokes):
        spoke_v, spoke_f = _box_spoke(
            2.0 * np.pi * k / spokes, 0.16 * rim_r, 0.9 * rim_r, 0.28 * half, 0.52 * half,
            0.07 * rim_r,
        )  # fmt: skip
        spoke_uv = 0.5 + spoke_v[:, 1:] / (2.0 * r)
        pieces.append((spoke_v, spoke_f, spoke_uv, PART_ID["wheelhub"], "metal", fit.rim_color))
    vertices, faces, uvs, parts, materials, colours = [], [], [], [], [], []
    count = 0
    rim_dark = tuple(0.25 * c for c in fit.rim_color)
    for verts, tris, uv, part, material, colour in pieces:
        vertices.append(verts)
        faces.append(tris + count)
        uvs.append(uv)
        parts.append(np.full(len(tris), part))
        materials.append(np.full(len(tris), MATERIAL_ID[material]))
        if colour is None:  # the rim: dark dish between the spokes, bright lip and cap
            centroid = verts[tris].mean(1)
            radial = np.linalg.norm(centroid[:, 1:], axis=1)
            dish = (radial > 0.22 * rim_r) & (radial < 0.86 * rim_r) & (centroid[:, 0] > 0)
            colours.append(np.where(dish[:, None], rim_dark, fit.rim_color))
        else:
            colours.append(np.broadcast_to(colour, (len(tris), 3)))
        count += len(verts)
    mesh = WheelMesh(
        vertices=np.concatenate(vertices),
        faces=np.concatenate(faces).astype(np.int64),
        uv=np.concatenate(uvs),
        face_parts=np.concatenate(parts).astype(np.int64),
        face_materials=np.concatenate(materials).astype(np.int64),
        face_colors=np.concatenate(colours).astype(np.float64),
    )
    return mesh if fit.left else mirror_wheel(mesh)


def mirror_wheel(mesh: WheelMesh) -> WheelMesh:
    """The wheel reflected x -> -x (a right wheel), winding reversed to stay outward."""
    return WheelMesh(
        vertices=mesh.vertices * np.array([-1.0, 1.0, 1.0]),
        faces=mesh.faces[:, ::-1].copy(),
        uv=mesh.uv,
        face_parts=mesh.face_parts,
        face_materials=mesh.face_materials,
        face_colors=mesh.face_colors,
    )


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed mesh; positive when its faces wind outward."""
    corners = vertices[faces]
    return float(
        np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6.0
    )


def wheel_textures() -> dict[str, np.ndarray]:
    """Small procedural textures for the clean wheels ([H, W, 3] uint8, multiplied with the
    colours): `tire`, lateral tread grooves where v is in [0.25, 0.75] (the tread, see
    `revolve`'s v_marks) and a ring on each sidewall; `rim`, brushed metal streaks."""
    rows, cols = 64, 256
    v = (np.arange(rows) + 0.5) / rows
    u = np.arange(cols)
    tire = np.full((rows, cols), 235.0)
    tread = (v >= 0.27) & (v <= 0.73)
    groove = (u % 8) < 2
    tire[np.ix_(tread, groove)] = 90.0
    tire[(np.abs(v - 0.1) < 0.02) | (np.abs(v - 0.9) < 0.02), :] = 255.0
    rng = np.random.default_rng(0)
    streaks = np.clip(225.0 + 30.0 * rng.standard_normal(rows), 170.0, 255.0)
    rim = np.repeat(streaks[:, None], 64, axis=1)
    return {
        name: np.repeat(image.round().astype(np.uint8)[..., None], 3, axis=2)
        for name, image in (("tire", tire), ("rim", rim))
    }
