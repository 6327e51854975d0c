"""The car body: cross-sections lofted along the length, parts assigned by region.

The side silhouette is a 2D profile per style (nose, hood, windshield, roof, rear glass,
trunk / hatch / bed); the plan view rounds the corners at both ends; the underside rises over
the wheel arches. Every car has the same loft topology (STATIONS x RING faces): the stations
sit at the car's own key lengths (arch edges, door seams, windshield base, ...), so part
boundaries fall on face edges and all cars can be rasterized in one batch.
Frames: docs/conventions.md (+Y up, front +Z, left +X, metres).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from assetgan.assets.taxonomy import PART_ID
from assetgan.pipeline.carworld.params import BodyStyle, CarParams, is_hatch_like

STATIONS = 56  # cross-sections along the length (fixed for every car)
HALF_RING = 12  # ring points from bottom centre (0) to top centre (11) on one side
CROWN = 0.04  # hood / roof crown height (m)
SEAM = 0.006  # half width of a door seam (m)

# Materials (per face); shading constants live in render.py.
MAT_PAINT, MAT_GLASS, MAT_UNDER, MAT_TRIM, MAT_RUBBER, MAT_METAL, MAT_LIGHT, MAT_PLATE = range(8)


@dataclass(frozen=True)
class Layout:
    """Key lengths (z, m) and helpers of one car's body; z grows towards the nose."""

    params: CarParams
    z_front: float  # nose face
    z_tail: float  # rear face
    z_front_axle: float
    z_rear_axle: float
    arch_radius: float  # wheel-arch radius
    z_windshield_base: float  # A: hood meets windshield
    z_roof_front: float  # windshield meets roof
    z_roof_rear: float  # roof meets rear glass
    z_deck: float  # C: rear glass meets trunk / hatch / bed
    c_pillar: float  # length of the pillar in front of z_deck on the side glass
    z_door_front: float  # front edge of the front door
    z_door_split: float  # front/rear door seam (= z_door_rear with one door per side)
    z_door_rear: float  # rear edge of the rear-most door
    z_b_pillar: float  # centre of the B pillar
    top_profile: PchipInterpolator  # z -> centre-line top height
    belt_profile: PchipInterpolator  # z -> shoulder height (before clamping under the top)

    # ---- profiles (vectorised over z) -------------------------------------------------------
    def half_width(self, z: np.ndarray) -> np.ndarray:
        """Body half width at z with plan-view rounded corners at both ends."""
        p = self.params
        half = p.width / 2.0
        out = np.full_like(z, half, dtype=np.float64)
        for end, radius, sign in (
            (self.z_front, p.nose_round, 1.0),
            (self.z_tail, p.tail_round, -1.0),
        ):
            into = sign * (z - (end - sign * radius))  # > 0 inside the rounded zone
            inside = into > 0
            depth = np.clip(into[inside], 0.0, radius)
            out[inside] = half - radius + np.sqrt(np.maximum(radius**2 - depth**2, 0.0))
        return out

    def bottom(self, z: np.ndarray) -> np.ndarray:
        """Underside height: ride height, raised into arches over the wheels."""
        p = self.params
        out = np.full_like(z, p.ride_height, dtype=np.float64)
        for axle in (self.z_front_axle, self.z_rear_axle):
            dz = z - axle
            inside = np.abs(dz) <= self.arch_radius + 1e-9
            arch = p.wheel_radius + np.sqrt(np.maximum(self.arch_radius**2 - dz[inside] ** 2, 0.0))
            out[inside] = np.maximum(out[inside], arch)
        return out

    def top(self, z: np.ndarray) -> np.ndarray:
        """Centre-line height of the upper surface (nose, hood, glass, roof, deck, tail)."""
        return self.top_profile(z)

    def belt(self, z: np.ndarray) -> np.ndarray:
        """Height of the shoulder line (top of the side panels)."""
        return np.minimum(self.belt_profile(z), self.top_profile(z) - CROWN)


def _monotone(points: list[tuple[float, float]]) -> PchipInterpolator:
    points = sorted(points)
    zs, ys = [points[0][0]], [points[0][1]]
    for z, y in points[1:]:
        if z <= zs[-1] + 0.02:
            z = zs[-1] + 0.02
        zs.append(z)
        ys.append(y)
    return PchipInterpolator(np.array(zs), np.array(ys), extrapolate=True)


def make_layout(p: CarParams) -> Layout:
    """Place the key lengths of the body from the parameters (clamped to stay consistent)."""
    z_front, z_tail = p.length / 2.0, -p.length / 2.0
    overhang = p.length - p.wheelbase
    z_fa = z_front - overhang * p.front_overhang_share
    z_ra = z_fa - p.wheelbase
    arch = p.wheel_radius + 0.05
    min_hood = 0.35 if p.style is BodyStyle.van else 0.65
    z_a = min(z_fa - p.cabin_offset, z_front - min_hood)
    z_rf = z_a - p.windshield_run
    if is_hatch_like(p.style):
        z_deck = z_tail + 0.10
        z_rr = z_deck + p.rear_run
    else:
        min_tail = 1.3 if p.style is BodyStyle.pickup else 0.55
        z_rr = z_rf - p.roof_length
        z_deck = z_rr - p.rear_run
        if z_deck < z_tail + min_tail:  # shrink the roof to keep a trunk / bed
            shift = z_tail + min_tail - z_deck
            z_rr += shift
            z_deck += shift
        if z_rr > z_rf - 0.3:
            z_rr = z_rf - 0.3
            z_deck = min(z_deck, z_rr - 0.05)
    c_pillar = {BodyStyle.sedan: 0.14, BodyStyle.coupe: 0.18, BodyStyle.hatchback: 0.24}.get(
        p.style, 0.09 if p.style is not BodyStyle.pickup else 0.04
    )
    door_front = z_fa - arch - 0.07
    rear_limit = max(z_ra + arch + 0.07, z_deck + 0.05)
    if p.doors >= 2:
        door_rear = rear_limit
        split = door_front - 0.52 * (door_front - door_rear)
        b_pillar = split
    else:
        door_rear = max(
            door_front - float(np.clip(0.5 * (door_front - rear_limit), 1.0, 1.3)), rear_limit
        )
        split = door_rear
        b_pillar = door_rear
    top_points = [
        (z_front, p.nose_height),
        (z_front - 0.22, p.nose_height + 0.45 * (p.hood_height - p.nose_height)),
        (z_a, p.hood_height),
        (z_rf, p.height - 0.03),
        ((z_rf + z_rr) / 2.0, p.height),
        (z_rr, p.height - 0.03),
        (z_deck, p.deck_height),
        (z_tail, p.tail_height),
    ]
    if not is_hatch_like(p.style):
        top_points.append((z_tail + 0.12, 0.5 * (p.deck_height + p.tail_height) + 0.01))
    return Layout(
        params=p,
        z_front=z_front,
        z_tail=z_tail,
        z_front_axle=z_fa,
        z_rear_axle=z_ra,
        arch_radius=arch,
        z_windshield_base=z_a,
        z_roof_front=z_rf,
        z_roof_rear=z_rr,
        z_deck=z_deck,
        c_pillar=c_pillar,
        z_door_front=door_front,
        z_door_split=split,
        z_door_rear=door_rear,
        z_b_pillar=b_pillar,
        top_profile=_monotone(top_points),
        belt_profile=_monotone(
            [
                (z_front, p.nose_height - CROWN),
                (z_a, p.hood_height - CROWN),
                (z_deck, p.deck_height - CROWN),
                (z_tail, p.tail_height - CROWN),
            ]
        ),
    )


def stations(lay: Layout) -> np.ndarray:
    """STATIONS z values (ascending): every key length plus fill-in spread by weighted length."""
    p = lay.params
    keys = [
        lay.z_tail,
        lay.z_tail + p.tail_round,
        lay.z_deck,
        lay.z_deck + lay.c_pillar,
        lay.z_roof_rear,
        lay.z_roof_front,
        lay.z_windshield_base,
        lay.z_front - p.nose_round,
        lay.z_front,
        lay.z_b_pillar - 0.045,
        lay.z_b_pillar + 0.045,
    ]
    for axle in (lay.z_rear_axle, lay.z_front_axle):
        r = lay.arch_radius
        keys += [axle - r - 0.01, axle - r, axle + r, axle + r + 0.01]
    for seam in (lay.z_door_front, lay.z_door_split, lay.z_door_rear):
        keys += [seam - SEAM, seam + SEAM]
    keys = np.sort(np.clip(np.array(keys), lay.z_tail, lay.z_front))
    gaps = np.diff(keys)
    mids = (keys[:-1] + keys[1:]) / 2.0
    weight = gaps.copy()
    for axle in (lay.z_rear_axle, lay.z_front_axle):
        weight[np.abs(mids - axle) < lay.arch_radius] *= 3.0
    weight[(mids > lay.z_front - p.nose_round) | (mids < lay.z_tail + p.tail_round)] *= 2.5
    weight[(mids < lay.z_windshield_base) & (mids > lay.z_deck)] *= 1.3
    extra = STATIONS - len(keys)
    share = extra * weight / weight.sum()
    count = np.floor(share).astype(int)
    order = np.argsort(-(share - count), kind="stable")
    count[order[: extra - count.sum()]] += 1
    out = [keys[:1]]
    for k in range(len(gaps)):
        fill = np.linspace(keys[k], keys[k + 1], count[k] + 2)[1:]
        out.append(fill)
    return np.concatenate(out)


def ring_points(lay: Layout, z: np.ndarray) -> np.ndarray:
    """Right-half cross-section points [len(z), HALF_RING, 2] = (x, y), bottom to top centre.

    Index: 0 bottom centre, 1 underside edge, 2 lower corner, 3 rocker top, 4 side bulge,
    5 side top, 6 shoulder (belt), 7 glass base, 8 glass top, 9 roof-rail top, 10 roof, 11 top.
    """
    p = lay.params
    w = lay.half_width(z)
    yb = lay.bottom(z)
    top = lay.top(z)
    belt = lay.belt(z)
    glass = np.clip((top - belt - CROWN) / 0.25, 0.0, 1.0)  # 0 on hood/deck, 1 under the roof
    pts = np.zeros((len(z), HALF_RING, 2))
    ys = np.stack(
        [
            yb,
            yb,
            yb + 0.06,
            np.maximum(p.ride_height + 0.17, yb + 0.09),
            np.zeros_like(z),  # filled below
            belt - 0.09,
            belt,
        ],
        axis=1,
    )
    ys[:, 4] = 0.45 * ys[:, 3] + 0.55 * ys[:, 5]
    for k in range(1, 7):  # keep the side monotone when the arch pushes the underside up
        ys[:, k] = np.maximum(ys[:, k], ys[:, k - 1] + (0.0 if k == 1 else 0.012))
    xs = np.stack([0 * w, 0.86 * w, 0.975 * w, 0.995 * w, w, 0.985 * w, w - 0.035], axis=1)
    pts[:, :7, 0], pts[:, :7, 1] = xs, ys
    x7 = w - 0.05
    x8 = (1.0 - glass) * 0.84 * w + glass * p.tumblehome * w
    y8 = (1.0 - glass) * (belt + 0.4 * CROWN) + glass * (top - 0.035)
    y8 = np.maximum(y8, belt + 0.006)
    x9 = x8 - (0.02 + 0.015 * glass)
    y9 = np.minimum(y8 + 0.012 + 0.012 * glass, top - 0.004)
    pts[:, 7] = np.stack([x7, belt + 0.004], axis=1)
    pts[:, 8] = np.stack([x8, y8], axis=1)
    pts[:, 9] = np.stack([x9, y9], axis=1)
    pts[:, 10] = np.stack([0.5 * x9, top - 0.006], axis=1)
    pts[:, 11] = np.stack([0 * w, top], axis=1)
    return pts


# Smoothing groups: consecutive right-side bands (band k joins ring points k and k+1) whose
# vertices are shared so normals are smooth inside a group and creased between groups.
# Groups that touch the centre line continue across it to the left side.
_GROUPS = ((0,), (1,), (2, 3, 4), (5,), (6,), (7,), (8, 9, 10))


@dataclass(frozen=True)
class BodyMesh:
    vertices: np.ndarray  # [V, 3]
    faces: np.ndarray  # [T, 3] counter-clockwise from outside
    band: np.ndarray  # [T] right-side band index 0..10, -1 for the end caps
    z_mid: np.ndarray  # [T] z of the face's station interval centre
    side: np.ndarray  # [T] +1 on the car's left (+X), -1 on its right
    ring: np.ndarray  # [STATIONS, HALF_RING, 2] the cross-sections
    z: np.ndarray  # [STATIONS] station positions


@functools.lru_cache(maxsize=1)
def _topology() -> dict[str, np.ndarray]:
    """The loft's fixed topology: per vertex (station, ring point, side sign, is-cap-centre) and
    per face (corners, band, the two stations it spans, side). Same for every car."""
    n = STATIONS
    v_station, v_ring, v_sign, v_centre = [], [], [], []
    faces, bands, lo, hi, sides = [], [], [], [], []
    count = 0
    for group in _GROUPS:
        for sign in (1.0, -1.0):  # +1: car's left (+X), -1: right (-X)
            idx = np.arange(group[0], group[-1] + 2)  # ring point indices of the group
            m = len(idx)
            st, rk = np.meshgrid(np.arange(n), idx, indexing="ij")
            v_station.append(st.reshape(-1))
            v_ring.append(rk.reshape(-1))
            v_sign.append(np.full(n * m, sign))
            v_centre.append(np.zeros(n * m, dtype=bool))
            s_idx, k_idx = np.meshgrid(np.arange(n - 1), np.arange(m - 1), indexing="ij")
            a = count + s_idx * m + k_idx  # (s, k)
            b, d = a + m, a + 1  # (s+1, k), (s, k+1)
            c = b + 1  # (s+1, k+1)
            if sign > 0:  # ring goes up the +X side: outward is +X, z increases with s
                tri = np.stack([np.stack([a, d, c], -1), np.stack([a, c, b], -1)], axis=2)
            else:
                tri = np.stack([np.stack([a, c, d], -1), np.stack([a, b, c], -1)], axis=2)
            faces.append(tri.reshape(-1, 3))
            bands.append(np.repeat(np.array(group), 2)[None, :].repeat(n - 1, 0).reshape(-1))
            lo.append(np.repeat(np.arange(n - 1), (m - 1) * 2))
            hi.append(np.repeat(np.arange(1, n), (m - 1) * 2))
            sides.append(np.full((n - 1) * (m - 1) * 2, sign))
            count += n * m
    # End caps: fans from the centre of the end cross-section (own vertices: flat).
    loop_ring = np.concatenate([np.arange(HALF_RING), np.arange(HALF_RING - 2, 0, -1)])
    loop_sign = np.concatenate([np.ones(HALF_RING), -np.ones(HALF_RING - 2)])
    for end, normal_sign in ((n - 1, 1.0), (0, -1.0)):
        k = len(loop_ring)
        v_station.append(np.full(k + 1, end))
        v_ring.append(np.concatenate([[0], loop_ring]))
        v_sign.append(np.concatenate([[1.0], loop_sign]))
        v_centre.append(np.arange(k + 1) == 0)
        j = np.arange(k)
        j_next = (j + 1) % k
        # the loop runs bottom -> up the +X side -> top -> down the -X side
        if normal_sign > 0:
            tri = np.stack([np.full(k, count), count + 1 + j, count + 1 + j_next], -1)
        else:
            tri = np.stack([np.full(k, count), count + 1 + j_next, count + 1 + j], -1)
        faces.append(tri)
        bands.append(np.full(k, -1))
        lo.append(np.full(k, end))
        hi.append(np.full(k, end))
        sides.append(np.where(loop_sign + loop_sign[j_next] >= 0, 1.0, -1.0))
        count += k + 1
    return {
        "v_station": np.concatenate(v_station),
        "v_ring": np.concatenate(v_ring),
        "v_sign": np.concatenate(v_sign),
        "v_centre": np.concatenate(v_centre),
        "faces": np.concatenate(faces).astype(np.int64),
        "band": np.concatenate(bands),
        "lo": np.concatenate(lo),
        "hi": np.concatenate(hi),
        "side": np.concatenate(sides),
    }


def build_body(lay: Layout) -> BodyMesh:
    """Loft the cross-sections into a closed, left-right symmetric surface."""
    topo = _topology()
    z = stations(lay)
    ring = ring_points(lay, z)  # [S, 12, 2]
    st, rk = topo["v_station"], topo["v_ring"]
    x = topo["v_sign"] * ring[st, rk, 0]
    y = ring[st, rk, 1]
    centre = topo["v_centre"]
    x[centre] = 0.0
    y[centre] = 0.5 * (ring[st[centre], 0, 1] + ring[st[centre], HALF_RING - 1, 1])
    return BodyMesh(
        vertices=np.stack([x, y, z[st]], axis=1),
        faces=topo["faces"],
        band=topo["band"],
        z_mid=0.5 * (z[topo["lo"]] + z[topo["hi"]]),
        side=topo["side"],
        ring=ring,
        z=z,
    )


def body_parts(lay: Layout, body: BodyMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-face car_20 part id, colour [T, 3] and material of the body faces."""
    p = lay.params
    zm, band = body.z_mid, body.band
    n = len(zm)
    part = np.full(n, PART_ID["car_body"])
    colour = np.tile(np.array(p.paint), (n, 1))
    material = np.full(n, MAT_PAINT)
    pickup = p.style is BodyStyle.pickup

    front_zone = zm > lay.z_door_front
    door_zone = (zm <= lay.z_door_front) & (zm >= lay.z_door_rear)
    arch_zone = (np.abs(zm - lay.z_front_axle) < lay.arch_radius + 0.12) | (
        np.abs(zm - lay.z_rear_axle) < lay.arch_radius + 0.12
    )
    hood_zone = zm > lay.z_windshield_base
    windshield_zone = (zm <= lay.z_windshield_base) & (zm > lay.z_roof_front)
    roof_zone = (zm <= lay.z_roof_front) & (zm > lay.z_roof_rear)
    rear_glass_zone = (zm <= lay.z_roof_rear) & (zm > lay.z_deck)
    trunk_zone = zm <= lay.z_deck
    trunk_part = PART_ID["car_body"] if pickup else PART_ID["trunk_lids"]

    side = (band >= 2) & (band <= 6)
    part[side & (front_zone | arch_zone)] = PART_ID["fender"]
    part[side & door_zone & (band >= 3)] = PART_ID["door"]
    part[(band == 2) & door_zone] = PART_ID["running_boards"]
    part[(band == 6) & hood_zone] = PART_ID["hoods"]
    seam = np.zeros(n, dtype=bool)
    for z_seam in (lay.z_door_front, lay.z_door_split, lay.z_door_rear):
        seam |= np.abs(zm - z_seam) < SEAM
    colour[side & seam & (band >= 3)] *= 0.35

    glass = band == 7
    top = band >= 8
    upper = glass | top
    part[upper & hood_zone] = PART_ID["hoods"]
    part[upper & trunk_zone] = trunk_part
    cabin_glass = glass & ~hood_zone & ~trunk_zone
    pillar = (np.abs(zm - lay.z_b_pillar) < 0.045) | (zm < lay.z_deck + lay.c_pillar)
    part[cabin_glass & ~pillar] = PART_ID["window"]
    colour[cabin_glass & ~pillar] = p.glass
    material[cabin_glass & ~pillar] = MAT_GLASS
    b_pillar = cabin_glass & (np.abs(zm - lay.z_b_pillar) < 0.045)
    colour[b_pillar] = (0.03, 0.03, 0.035)
    material[b_pillar] = MAT_TRIM
    rail = band == 8
    part[rail & roof_zone] = PART_ID["roof"]
    colour[rail & roof_zone] = p.roof_paint
    roof_top = (band >= 9) & roof_zone
    part[roof_top] = PART_ID["roof"]
    colour[roof_top] = p.roof_paint
    shield = (band >= 9) & (windshield_zone | rear_glass_zone)
    part[shield] = PART_ID["windshield"]
    colour[shield] = p.glass
    material[shield] = MAT_GLASS

    under = band <= 1
    colour[band == 0] = (0.05, 0.05, 0.05)
    material[band == 0] = MAT_UNDER
    colour[under & arch_zone] = (0.04, 0.04, 0.04)
    material[under & arch_zone] = MAT_UNDER
    part[band == -1] = PART_ID["car_body"]
    return part, colour, material
