"""A reconstruction as the neutral `render.asset.CarAsset` (what `assetgan export` rigs) and as
a textured OBJ with one group per car_20 part.

Per face, the part is the argmax of the part logits and the colour the texture, both sampled at
the face's UV centroid; materials follow the parts (`render.asset.default_materials`). The
template has no wheel wells, so a reconstruction's wheels are tire / wheelhub paint on its sides;
wheel labels on faces that do not face sideways (|normal x| < `WHEEL_SIDE_COS`: the underside,
never seen from CarWorld's 0-35 deg elevations) become car_body, so that `assetgan export` fits
each wheel to a side patch (its axle is the patch's direction of least spread). A painted
patch is larger than the tire it shows (blurred labels at 64 px), and export sized wheels from
it about twice CarWorld's; so wheel labels are also kept only within a disc around the
reconstruction's own 3D wheel keypoint of the same corner, of radius the keypoint's height above
the ground (a tire touches the ground at y = 0: its centre height is its radius; clamped to
`WHEEL_RADIUS_RANGE`, with `WHEEL_DISC_SLACK`). A corner left without wheel faces keeps its
patch (export needs four wheels). The UV
texture is kept as it is (`texture.png`, row 0 = v 0, conventions "Textures"); faces on the seam
at the car's back use u > 1 (wrap).
"""

from __future__ import annotations

import numpy as np
import torch

from assetgan.assets.taxonomy import CAR_20, KEYPOINT_ID, PART_ID
from assetgan.inverse_graphics.reconstruct.model import Reconstruction
from assetgan.inverse_graphics.reconstruct.render import sample_uv
from assetgan.inverse_graphics.reconstruct.template import Template
from assetgan.render.asset import CarAsset, default_materials
from assetgan.render.backends import TorchBackend
from assetgan.render.mesh import face_normals

WHEEL_SIDE_COS = 0.85  # wheel faces need |normal . x| at least this (32 deg from the axle)
WHEEL_RADIUS_RANGE = (0.25, 0.55)  # metres: the wheel disc's radius from the keypoint's height
WHEEL_DISC_SLACK = 1.1  # wheel faces within this x the disc radius of their corner's keypoint
WHEEL_MIN_SIDE_M = 0.3  # a wheel keypoint nearer the symmetry plane than this is not trusted
WHEEL_KEYPOINTS = ("left_front_wheel", "right_front_wheel", "left_back_wheel", "right_back_wheel")


def keep_wheel_discs(
    face_parts: np.ndarray, centroids: np.ndarray, keypoints: np.ndarray
) -> np.ndarray:
    """face_parts [T] with tire / wheelhub labels outside each corner's wheel disc (module
    docstring) turned into car_body; centroids [T, 3] face centroids, keypoints [12, 3]. A
    keypoint within WHEEL_MIN_SIDE_M of the symmetry plane is no wheel position: its corner
    keeps its patch."""
    wheel = np.isin(face_parts, (PART_ID["tire"], PART_ID["wheelhub"]))
    wheels = keypoints[[KEYPOINT_ID[name] for name in WHEEL_KEYPOINTS]]
    x_mid, z_mid = wheels[:, 0].mean(), wheels[:, 2].mean()
    out = face_parts.copy()
    for centre in wheels:
        if abs(centre[0] - x_mid) < WHEEL_MIN_SIDE_M:
            continue
        corner = ((centroids[:, 0] > x_mid) == (centre[0] > x_mid)) & (
            (centroids[:, 2] > z_mid) == (centre[2] > z_mid)
        )
        radius = float(np.clip(centre[1], *WHEEL_RADIUS_RANGE)) * WHEEL_DISC_SLACK
        inside = np.linalg.norm(centroids[:, 1:] - centre[1:], axis=1) <= radius
        if (wheel & corner & inside).any():
            out[wheel & corner & ~inside] = PART_ID["car_body"]
    return out


@torch.no_grad()
def reconstruction_asset(
    reconstruction: Reconstruction, index: int, template: Template, source: str
) -> CarAsset:
    """Item `index` of a batch of reconstructions as a validated CarAsset (metres, car frame)."""
    uv = template.uv.cpu()
    uv_faces = template.uv_faces.cpu()
    centroids = uv[uv_faces].mean(1)  # [T, 2]
    channels = torch.cat(
        [reconstruction.texture[index], reconstruction.part_logits[index]], dim=-1
    ).cpu()
    sampled = sample_uv(channels[None], centroids[None, None], TorchBackend())[0, 0]  # [T, C]
    face_parts = (sampled[:, 3:].argmax(-1) + 1).numpy().astype(np.int64)
    normals = face_normals(reconstruction.vertices[index].cpu(), template.faces.cpu()).numpy()
    wheel = np.isin(face_parts, (PART_ID["tire"], PART_ID["wheelhub"]))
    face_parts[wheel & (np.abs(normals[:, 0]) < WHEEL_SIDE_COS)] = PART_ID["car_body"]
    vertices = reconstruction.vertices[index].cpu().numpy()
    keypoints = reconstruction.keypoints[index].cpu().numpy()
    faces = template.faces.cpu().numpy()
    face_parts = keep_wheel_discs(face_parts, vertices[faces].mean(1), keypoints)
    texture = reconstruction.texture[index].clamp(0, 1).mul(255).round().to(torch.uint8)
    return CarAsset(
        vertices=reconstruction.vertices[index].cpu().numpy().astype(np.float32),
        faces=template.faces.cpu().numpy().astype(np.int64),
        face_parts=face_parts,
        face_materials=default_materials(face_parts),
        face_colors=sampled[:, :3].clamp(0, 1).numpy().astype(np.float32),
        keypoints=reconstruction.keypoints[index].cpu().numpy().astype(np.float32),
        uv=uv.numpy().astype(np.float32),
        uv_faces=uv_faces.numpy().astype(np.int64),
        texture=texture.cpu().numpy(),
        source=source,
    ).validate()


def obj_files(asset: CarAsset, texture_name: str = "texture.png") -> tuple[str, str]:
    """(mesh.obj text, mesh.mtl text): positions, texture coordinates (OBJ's v runs upwards, so
    v_obj = 1 - v) and faces grouped by car_20 part (`g <part name>`), one material with the
    texture. Requires a textured asset."""
    if asset.uv is None or asset.uv_faces is None:
        raise ValueError("obj_files needs a textured asset (uv and uv_faces)")
    lines = ["# assetgan reconstruction: one group per car_20 part", "mtllib mesh.mtl"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in asset.vertices.tolist()]
    lines += [f"vt {u:.6f} {1.0 - v:.6f}" for u, v in asset.uv.tolist()]
    lines.append("usemtl reconstruction")
    for part in np.unique(asset.face_parts).tolist():
        lines.append(f"g {CAR_20[part]}")
        for face in np.flatnonzero(asset.face_parts == part).tolist():
            corners = zip(asset.faces[face].tolist(), asset.uv_faces[face].tolist(), strict=True)
            lines.append("f " + " ".join(f"{v + 1}/{t + 1}" for v, t in corners))
    material = [
        "newmtl reconstruction",
        "Ka 1 1 1",
        "Kd 1 1 1",
        "Ks 0 0 0",
        f"map_Kd {texture_name}",
    ]
    return "\n".join(lines) + "\n", "\n".join(material) + "\n"
