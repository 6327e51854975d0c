"""Small geometry pieces added to the body: boxes, corner-wrapping lamp strips, bumpers,
wheels (tire + rim), and a builder that collects them with per-face part, colour and material.

Every piece has a fixed face count; absent pieces are collapsed to a point (zero area, never
rasterized) so that all cars share one topology (body.py).
"""

from __future__ import annotations

import numpy as np

# Box corner signs and faces, counter-clockwise seen from outside.
_BOX_SIGNS = np.array(
    [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64
)  # index = 4*(x>0) + 2*(y>0) + (z>0)
_BOX_FACES = np.array(
    [
        [0, 1, 3], [0, 3, 2],  # -X
        [4, 6, 7], [4, 7, 5],  # +X
        [0, 4, 5], [0, 5, 1],  # -Y
        [2, 3, 7], [2, 7, 6],  # +Y
        [0, 2, 6], [0, 6, 4],  # -Z
        [1, 5, 7], [1, 7, 3],  # +Z
    ],
    dtype=np.int64,
)  # fmt: skip


class PieceBuilder:
    """Collects triangle pieces with one part id, colour and material per piece (or per face)."""

    def __init__(self) -> None:
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.attributes: list[tuple] = []  # (face count, part, colour, material) per piece
        self.count = 0

    def add(
        self,
        vertices: np.ndarray,  # [V, 3]
        faces: np.ndarray,  # [T, 3] local indices
        part: int | np.ndarray,  # car_20 id for all faces or [T]
        colour,  # (r, g, b) or [T, 3]
        material: int | np.ndarray,  # material id or [T]
        present: bool = True,  # False collapses the piece to a point
    ) -> None:
        vertices = np.asarray(vertices, dtype=np.float64)
        if not present:
            vertices = np.repeat(vertices.mean(0, keepdims=True), len(vertices), axis=0)
        self.vertices.append(vertices)
        self.faces.append(faces + self.count)
        self.attributes.append((len(faces), part, colour, material))
        self.count += len(vertices)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """vertices [V, 3], faces [T, 3], parts [T], colours [T, 3], materials [T]."""
        parts, colours, materials = [], [], []
        for t, part, colour, material in self.attributes:
            parts.append(np.broadcast_to(part, (t,)))
            colours.append(np.broadcast_to(np.asarray(colour, dtype=np.float64), (t, 3)))
            materials.append(np.broadcast_to(material, (t,)))
        return (
            np.concatenate(self.vertices),
            np.concatenate(self.faces).astype(np.int64),
            np.concatenate(parts).astype(np.int64),
            np.concatenate(colours),
            np.concatenate(materials).astype(np.int64),
        )


def box(lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box between corners lo [3] and hi [3]."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    centre, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    return centre + _BOX_SIGNS * half, _BOX_FACES


def mirror_x(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reflect a piece to the other side (x -> -x), fixing the winding."""
    return vertices * np.array([-1.0, 1.0, 1.0]), faces[:, ::-1].copy()


def corner_outline(
    half_width: float,
    radius: float,
    z_end: float,
    sign: float,
    x_from: float,
    angle_to: float,
    segments: int,
    offset: float,
) -> np.ndarray:
    """Points [segments + 1, 2] = (x, z) along the plan outline of a rounded car end, from
    x = x_from on the flat face around the corner to angle_to radians, pushed out by offset.

    sign = +1 for the nose (outline at z_end, corner centre behind it), -1 for the tail."""
    flat_end = half_width - radius  # x where the rounding starts
    centre_z = z_end - sign * radius
    x_from = min(x_from, flat_end)
    flat_len = flat_end - x_from
    arc_len = radius * angle_to
    s = np.linspace(0.0, flat_len + arc_len, segments + 1)
    out = np.zeros((segments + 1, 2))
    on_flat = s <= flat_len
    out[on_flat, 0] = x_from + s[on_flat]
    out[on_flat, 1] = z_end + sign * offset
    theta = (s[~on_flat] - flat_len) / max(radius, 1e-9)
    out[~on_flat, 0] = flat_end + (radius + offset) * np.sin(theta)
    out[~on_flat, 1] = centre_z + sign * (radius + offset) * np.cos(theta)
    return out


def strip(outline: np.ndarray, y0: float, y1: float, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """A vertical band [outline points] x [y0, y1], facing away from the car (sign = end), with
    back faces too (it pokes out of the body's rounded corner, so both sides can show)."""
    m = len(outline)
    lower = np.stack([outline[:, 0], np.full(m, y0), outline[:, 1]], axis=1)
    upper = np.stack([outline[:, 0], np.full(m, y1), outline[:, 1]], axis=1)
    verts = np.concatenate([lower, upper])
    k = np.arange(m - 1)
    a, b, c, d = k, k + 1, m + k + 1, m + k
    if sign > 0:
        faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    else:
        faces = np.concatenate([np.stack([a, c, b], 1), np.stack([a, d, c], 1)])
    return verts, np.concatenate([faces, faces[:, ::-1]])


def rounded_slab(
    half_width: float,
    z_back: float,
    z_front: float,
    y0: float,
    y1: float,
    radius: float,
    segments: int = 5,
) -> tuple[np.ndarray, np.ndarray]:
    """A bumper: the plan rectangle x in [-hw, hw], z in [z_back, z_front] with the two corners
    at z_front rounded by radius, extruded from y0 to y1 (closed)."""
    radius = min(radius, half_width * 0.9, (z_front - z_back) * 0.95)
    theta = np.linspace(0.0, np.pi / 2.0, segments + 1)
    right = np.stack(
        [half_width - radius + radius * np.sin(theta), z_front - radius + radius * np.cos(theta)], 1
    )  # from the front centre-ish to the side
    right = np.concatenate([right, [[half_width, z_back]]])
    left = right[::-1] * np.array([-1.0, 1.0])
    loop = np.concatenate([left, right])  # runs -x back corner -> front -> +x back corner
    m = len(loop)
    bottom = np.stack([loop[:, 0], np.full(m, y0), loop[:, 1]], 1)
    top = np.stack([loop[:, 0], np.full(m, y1), loop[:, 1]], 1)
    verts = np.concatenate([bottom, top, [[0.0, y0, z_back], [0.0, y1, z_back]]])
    k = np.arange(m)
    k1 = (k + 1) % m
    sides = np.concatenate([np.stack([k, k1, m + k1], 1), np.stack([k, m + k1, m + k], 1)])
    cb, ct = 2 * m, 2 * m + 1
    caps = np.concatenate(
        [np.stack([np.full(m, cb), k1, k], 1), np.stack([np.full(m, ct), m + k, m + k1], 1)]
    )
    return verts, np.concatenate([sides, caps])


WHEEL_SEGMENTS = 20  # around the axle (divisible by 4, 5 and 10 spokes' periods)


def tire(radius: float, rim_radius: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """A tire around the local X axis centred at the origin: rounded tread and sidewalls."""
    bevel = min(0.035, width * 0.2)
    profile = np.array(  # (axial x, radial r) from the inner rim edge to the outer rim edge
        [
            [-width / 2, rim_radius],
            [-width / 2, radius - bevel],
            [-width / 2 + bevel, radius],
            [width / 2 - bevel, radius],
            [width / 2, radius - bevel],
            [width / 2, rim_radius],
        ]
    )
    return revolve(profile)


def revolve(profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Revolve (x, r) profile points around the X axis with WHEEL_SEGMENTS segments."""
    n, m = WHEEL_SEGMENTS, len(profile)
    phi = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    x = np.broadcast_to(profile[None, :, 0], (n, m))
    y = profile[None, :, 1] * np.cos(phi)[:, None]
    z = profile[None, :, 1] * np.sin(phi)[:, None]
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n), np.arange(m - 1), indexing="ij")
    a = i * m + j
    b = ((i + 1) % n) * m + j
    faces = np.concatenate(
        [np.stack([a, b + 1, a + 1], -1).reshape(-1, 3), np.stack([a, b, b + 1], -1).reshape(-1, 3)]
    )
    return verts, faces


def rim(rim_radius: float, spokes: int, x: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat rim disc in the plane x facing +X: centre cap, spokes and an outer lip.

    Returns vertices, faces and a per-face flag [T] True where the face is a gap between
    spokes (drawn dark)."""
    n = WHEEL_SEGMENTS
    radii = np.array([0.0, 0.22, 0.32, 0.84, 1.0]) * rim_radius
    depth = np.array([0.012, 0.012, 0.006, 0.0, 0.006])  # slight dish
    phi = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    rings = [
        np.stack([np.full(n, x + d), r * np.cos(phi), r * np.sin(phi)], 1)
        for r, d in zip(radii, depth, strict=True)
    ]
    verts = np.concatenate(rings)
    faces, gap = [], []
    period = n // spokes
    for ring_k in range(len(radii) - 1):
        for i in range(n):
            a, b = ring_k * n + i, ring_k * n + (i + 1) % n
            c, d = a + n, b + n
            faces += [[a, c, d], [a, d, b]] if ring_k else [[a, c, d]]
            is_gap = ring_k == 2 and (i % period) >= max(1, period // 3)
            gap += [is_gap, is_gap] if ring_k else [False]
    return verts, np.array(faces, dtype=np.int64), np.array(gap)
