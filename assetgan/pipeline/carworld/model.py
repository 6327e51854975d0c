"""build_car(params) -> CarModel: the lofted body plus bumpers, lights, grille, plates, mirrors,
handles, running boards and wheels, with per-face parts and materials, keypoints and wheel pivots.

Every car has the same face list (same topology), so a batch of cars rasterizes in one call.
Frames and units: docs/conventions.md; parts and keypoints: assetgan/assets/taxonomy.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from assetgan.assets.taxonomy import KEYPOINTS, PART_ID
from assetgan.core.errors import AssetganError
from assetgan.pipeline.carworld.body import (
    MAT_GLASS,
    MAT_LIGHT,
    MAT_METAL,
    MAT_PAINT,
    MAT_PLATE,
    MAT_RUBBER,
    MAT_TRIM,
    Layout,
    body_parts,
    build_body,
    make_layout,
    ring_points,
)
from assetgan.pipeline.carworld.params import BodyStyle, CarParams, is_hatch_like
from assetgan.pipeline.carworld.parts import (
    PieceBuilder,
    box,
    corner_outline,
    mirror_x,
    revolve,
    rim,
    rounded_slab,
    strip,
    tire,
)
from assetgan.render.asset import MATERIALS, CarAsset
from assetgan.render.mesh import Mesh

MATERIAL_NAMES = ("paint", "glass", "underbody", "trim", "rubber", "metal", "light", "plate")
WHEEL_NAMES = ("front_left", "front_right", "back_left", "back_right")  # keypoint order


@dataclass(frozen=True)
class CarModel:
    """One car. Face attributes are aligned with mesh.faces."""

    params: CarParams  # the recipe
    mesh: Mesh  # vertices [V, 3], faces [T, 3], face_parts [T] car_20, face_colors [T, 3]
    face_materials: torch.Tensor  # [T] int64 index into MATERIAL_NAMES
    face_wheel: torch.Tensor  # [T] int64 wheel index 0..3 (WHEEL_NAMES) or -1 for the body
    face_smooth: torch.Tensor  # [T] bool: shade with interpolated vertex normals (body, tires)
    keypoints: torch.Tensor  # [12, 3] PASCAL3D+ keypoints (taxonomy.KEYPOINTS order)
    wheel_pivots: torch.Tensor  # [4, 3] wheel centres (WHEEL_NAMES order)
    wheel_axles: torch.Tensor  # [4, 3] unit spin axes (+X for all: left = +X)
    wheel_radius: float  # tire radius (m)

    @property
    def num_faces(self) -> int:
        return self.mesh.num_faces


def _mirrored_pair(builder: PieceBuilder, verts, faces, part, colour, material, present=True):
    """Add a piece built on the car's left (+X) and its mirror image on the right."""
    builder.add(verts, faces, part, colour, material, present)
    builder.add(*mirror_x(verts, faces), part, colour, material, present)


def _front_and_rear(builder: PieceBuilder, lay: Layout, ring_front, ring_rear) -> dict:
    """Bumpers, grille, lights, plates and the rear panel. Returns keypoint anchors."""
    p = lay.params
    tall = p.style in (BodyStyle.suv, BodyStyle.pickup, BodyStyle.van)
    bumper_h = (0.30 if tall else 0.24) * (0.9 + 0.2 * p.front_overhang_share)
    trim_mat = MAT_PAINT if p.trim == p.paint else MAT_TRIM
    anchors = {}

    # ---- front ------------------------------------------------------------------------------
    zf, half = lay.z_front, p.width / 2.0
    belt_f = float(ring_front[6, 1])
    y0 = p.ride_height + 0.02
    y1 = min(y0 + bumper_h, belt_f - 0.2)
    z_in = max(zf - 0.42, lay.z_front_axle + lay.arch_radius + 0.04)
    builder.add(
        *rounded_slab(half + 0.012, z_in, zf + 0.045, y0, y1, p.nose_round + 0.05),
        PART_ID["bumper"],
        p.trim,
        trim_mat,
    )
    flat_f = half - p.nose_round
    grille_w = float(np.clip(0.55 * flat_f, 0.25, 0.5))
    grille_top = min(belt_f - 0.06, y1 + 0.32)
    grille_colour = (0.04, 0.04, 0.045) if p.rim[0] < 0.5 else (0.45, 0.46, 0.48)
    builder.add(
        *box((-grille_w, y1 + 0.015, zf - 0.02), (grille_w, grille_top, zf + 0.008)),
        PART_ID["grilles"],
        grille_colour,
        MAT_TRIM,
    )
    builder.add(  # lower intake in the bumper
        *box((-0.8 * grille_w, y0 + 0.03, zf + 0.03), (0.8 * grille_w, y0 + 0.085, zf + 0.05)),
        PART_ID["grilles"],
        (0.03, 0.03, 0.03),
        MAT_TRIM,
    )
    light_y0 = max(y1 + 0.03, belt_f - 0.2)
    light_y1 = belt_f - 0.012
    outline = corner_outline(half, p.nose_round, zf, 1.0, grille_w + 0.04, 0.9, 8, 0.007)
    _mirrored_pair(
        builder, *strip(outline, light_y0, light_y1, 1.0), PART_ID["car_lights"], p.headlight,
        MAT_LIGHT,
    )  # fmt: skip
    mid = outline[len(outline) // 2]
    anchors["front_light"] = (float(mid[0]), 0.5 * (light_y0 + light_y1), float(mid[1]))
    plate_w, plate_h = (0.26, 0.06) if p.plate[2] > 0.5 else (0.16, 0.08)
    plate_y = y0 + 0.6 * (y1 - y0)
    builder.add(
        *box((-plate_w, plate_y - plate_h, zf + 0.045), (plate_w, plate_y + plate_h, zf + 0.056)),
        PART_ID["licensePlate"],
        p.plate,
        MAT_PLATE,
    )

    # ---- rear -------------------------------------------------------------------------------
    zt = lay.z_tail
    belt_r = float(ring_rear[6, 1])
    y1r = min(y0 + bumper_h, belt_r - 0.22)
    z_in_r = min(zt + 0.42, lay.z_rear_axle - lay.arch_radius - 0.04)
    verts, faces = rounded_slab(half + 0.012, -z_in_r, -(zt - 0.045), y0, y1r, p.tail_round + 0.05)
    builder.add(
        verts * np.array([1.0, 1.0, -1.0]), faces[:, ::-1], PART_ID["back_bumper"], p.trim, trim_mat
    )
    flat_r = half - p.tail_round
    panel_top = belt_r - 0.025
    builder.add(  # panel seam (dark outline around the lid)
        *box(
            (-flat_r + 0.03, y1r + 0.005, zt - 0.003), (flat_r - 0.03, panel_top + 0.01, zt + 0.02)
        ),
        PART_ID["car_body"],
        (0.03, 0.03, 0.03),
        MAT_TRIM,
    )
    builder.add(
        *box((-flat_r + 0.04, y1r + 0.015, zt - 0.006), (flat_r - 0.04, panel_top, zt + 0.02)),
        PART_ID["trunk_lids"],
        p.paint,
        MAT_PAINT,
    )
    if is_hatch_like(p.style) or p.style is BodyStyle.pickup:
        tl_y0, tl_y1, tl_from = y1r + 0.08, min(panel_top - 0.02, y1r + 0.45), flat_r - 0.12
    else:
        tl_y0, tl_y1, tl_from = panel_top - 0.16, panel_top - 0.02, flat_r - 0.3
    outline = corner_outline(half, p.tail_round, zt, -1.0, tl_from, 1.0, 8, 0.011)
    _mirrored_pair(
        builder, *strip(outline, tl_y0, tl_y1, -1.0), PART_ID["tailLight"], p.taillight, MAT_LIGHT
    )
    plate_y = y1r + 0.03 + plate_h
    builder.add(
        *box((-plate_w, plate_y - plate_h, zt - 0.018), (plate_w, plate_y + plate_h, zt - 0.008)),
        PART_ID["licensePlate"],
        p.plate,
        MAT_PLATE,
    )
    anchors["back_trunk"] = (float(ring_rear[6, 0]), belt_r, zt)
    return anchors


def _sides(builder: PieceBuilder, lay: Layout) -> None:
    """Mirrors, door handles, running boards and the pickup bed floor."""
    p = lay.params
    z_m = lay.z_windshield_base - 0.2
    w_m = float(lay.half_width(np.array([z_m]))[0])
    belt_m = float(lay.belt(np.array([z_m]))[0])
    mirror_colour = p.trim if p.trim != p.paint else p.paint
    _mirrored_pair(
        builder,
        *box((w_m - 0.04, belt_m + 0.03, z_m - 0.06), (w_m + 0.17, belt_m + 0.15, z_m + 0.07)),
        PART_ID["mirror"],
        mirror_colour,
        MAT_PAINT if mirror_colour == p.paint else MAT_TRIM,
    )
    chrome = p.rim[0] > 0.5
    handle_colour = (0.7, 0.7, 0.72) if chrome else tuple(0.8 * c for c in p.paint)
    for z_edge, present in ((lay.z_door_split, True), (lay.z_door_rear, p.doors >= 2)):
        z_h = z_edge + 0.16
        w_h = float(lay.half_width(np.array([z_h]))[0])
        y_h = float(lay.belt(np.array([z_h]))[0]) - 0.12
        _mirrored_pair(
            builder,
            *box((w_h - 0.01, y_h - 0.017, z_h - 0.075), (w_h + 0.02, y_h + 0.017, z_h + 0.075)),
            PART_ID["handles"],
            handle_colour,
            MAT_METAL if chrome else MAT_PAINT,
            present,
        )
    z0 = lay.z_rear_axle + lay.arch_radius + 0.05
    z1 = lay.z_front_axle - lay.arch_radius - 0.05
    half = p.width / 2.0
    _mirrored_pair(
        builder,
        *box((half - 0.06, p.ride_height + 0.03, z0), (half + 0.1, p.ride_height + 0.08, z1)),
        PART_ID["running_boards"],
        (0.07, 0.07, 0.075),
        MAT_TRIM,
        p.running_boards,
    )
    pickup = p.style is BodyStyle.pickup
    z_bed = np.linspace(lay.z_tail, lay.z_deck, 16)
    y_bed = float(lay.top(z_bed).max()) + 0.006
    builder.add(
        *box(
            (-half + 0.1, y_bed - 0.004, lay.z_tail + 0.08), (half - 0.1, y_bed, lay.z_deck - 0.06)
        ),
        PART_ID["car_body"],
        (0.08, 0.08, 0.085),
        MAT_TRIM,
        pickup,
    )


def _wheels(builder: PieceBuilder, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Four wheels (tire, rim, inner disc). Returns pivots [4, 3] and hub keypoints [4, 3]."""
    p = lay.params
    r, tw = p.wheel_radius, p.tire_width
    rim_r = r * p.rim_ratio
    pivots, hubs = [], []
    tire_v, tire_f = tire(r, rim_r, tw)
    rim_v, rim_f, gap = rim(rim_r, p.spokes, tw / 2.0 + 0.004)
    disc_v, disc_f = revolve(np.array([[-tw / 2.0, 0.0], [-tw / 2.0, rim_r]]))
    rim_colour = np.where(gap[:, None], np.array(p.rim) * 0.12, np.array(p.rim))
    for z_axle in (lay.z_front_axle, lay.z_rear_axle):
        w = float(lay.half_width(np.array([z_axle]))[0])
        for sign in (1.0, -1.0):
            centre = np.array([sign * (w - tw / 2.0 + 0.015), r, z_axle])
            pieces = [
                (tire_v, tire_f, PART_ID["tire"], (0.06, 0.06, 0.065), MAT_RUBBER),
                (disc_v, disc_f, PART_ID["tire"], (0.03, 0.03, 0.03), MAT_RUBBER),
                (rim_v, rim_f, PART_ID["wheelhub"], rim_colour, MAT_METAL),
            ]
            for verts, faces, part, colour, material in pieces:
                if sign < 0:
                    verts, faces = mirror_x(verts, faces)
                builder.add(verts + centre, faces, part, colour, material)
            pivots.append(centre)
            hubs.append(centre + np.array([sign * (tw / 2.0 + 0.016), 0.0, 0.0]))
    return np.array(pivots), np.array(hubs)


def build_car(params: CarParams) -> CarModel:
    """Build the car described by params (pure function; same params -> same mesh)."""
    lay = make_layout(params)
    body = build_body(lay)
    part, colour, material = body_parts(lay, body)
    builder = PieceBuilder()
    builder.add(body.vertices, body.faces, part, colour, material)
    n_body = body.faces.shape[0]
    anchors = _front_and_rear(builder, lay, body.ring[-1], body.ring[0])
    _sides(builder, lay)
    n_before_wheels = sum(len(f) for f in builder.faces)
    pivots, hubs = _wheels(builder, lay)
    vertices, faces, parts, colours, materials = builder.arrays()
    face_wheel = np.full(len(faces), -1, dtype=np.int64)
    per_wheel = (len(faces) - n_before_wheels) // 4
    for k in range(4):
        face_wheel[n_before_wheels + k * per_wheel : n_before_wheels + (k + 1) * per_wheel] = k
    smooth = np.arange(len(faces)) < n_body
    smooth |= (face_wheel >= 0) & (parts == PART_ID["tire"])

    roof_pts = ring_points(lay, np.array([lay.z_roof_front, lay.z_roof_rear]))[:, 9]  # [2, 2]
    fl, bt = anchors["front_light"], anchors["back_trunk"]
    kp = {
        "left_front_wheel": hubs[0],
        "right_front_wheel": hubs[1],
        "left_back_wheel": hubs[2],
        "right_back_wheel": hubs[3],
        "upper_left_windshield": (roof_pts[0, 0], roof_pts[0, 1], lay.z_roof_front),
        "upper_right_windshield": (-roof_pts[0, 0], roof_pts[0, 1], lay.z_roof_front),
        "upper_left_rearwindow": (roof_pts[1, 0], roof_pts[1, 1], lay.z_roof_rear),
        "upper_right_rearwindow": (-roof_pts[1, 0], roof_pts[1, 1], lay.z_roof_rear),
        "left_front_light": fl,
        "right_front_light": (-fl[0], fl[1], fl[2]),
        "left_back_trunk": bt,
        "right_back_trunk": (-bt[0], bt[1], bt[2]),
    }
    keypoints = np.array([kp[name] for name in KEYPOINTS], dtype=np.float64)
    mesh = Mesh(
        vertices=torch.tensor(vertices, dtype=torch.float32),
        faces=torch.tensor(faces, dtype=torch.int64),
        face_parts=torch.tensor(parts, dtype=torch.int64),
        face_colors=torch.tensor(np.clip(colours, 0.0, 1.0), dtype=torch.float32),
    )
    return CarModel(
        params=params,
        mesh=mesh,
        face_materials=torch.tensor(materials, dtype=torch.int64),
        face_wheel=torch.tensor(face_wheel),
        face_smooth=torch.tensor(smooth),
        keypoints=torch.tensor(keypoints, dtype=torch.float32),
        wheel_pivots=torch.tensor(pivots, dtype=torch.float32),
        wheel_axles=torch.tensor([[1.0, 0.0, 0.0]] * 4),
        wheel_radius=float(params.wheel_radius),
    )


__all__ = ["MAT_GLASS", "MATERIAL_NAMES", "WHEEL_NAMES", "CarModel", "build_car"]


def car_asset(car: CarModel) -> CarAsset:
    """The neutral CarAsset (render/asset.py) of a CarWorld car: what its GLB and the export
    stage are made from."""
    if tuple(MATERIAL_NAMES) != MATERIALS:
        raise AssetganError(f"CarWorld materials {MATERIAL_NAMES} differ from {MATERIALS}")
    return CarAsset(
        vertices=car.mesh.vertices.numpy(),
        faces=car.mesh.faces.numpy(),
        face_parts=car.mesh.face_parts.numpy(),
        face_materials=car.face_materials.numpy(),
        face_colors=car.mesh.face_colors.numpy(),
        keypoints=car.keypoints.numpy(),
        source="carworld",
    ).validate()
