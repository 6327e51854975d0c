"""Tiny inputs for the export tests: CarWorld ground-truth cars (as part-node GLBs laid out like a
split, with their true wheel pivots) and a reconstruction-like asset (one closed textured
surface whose wheels are patches of it), plus the validator check every GLB goes through."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from assetgan.assets.taxonomy import PART_ID
from assetgan.inverse_graphics.export.validator import (
    MUTED_INFOS,
    issue_counts,
    validate_gltf,
    validator_missing,
)
from assetgan.pipeline.carworld.model import CarModel, build_car
from assetgan.pipeline.carworld.model import car_asset as asset_from_car_model
from assetgan.pipeline.carworld.params import sample_car_params
from assetgan.render.asset import MATERIAL_ID, CarAsset, part_glb


@dataclass(frozen=True)
class WorldCar:
    """A CarWorld car written as meshes/ID.glb (+ meta/ID.json with its keypoints)."""

    glb: Path
    model: CarModel


def world_car(root: Path, seed: int, with_meta: bool = True) -> WorldCar:
    """CarWorld car `seed` written like a split's mesh (keypoints in meta/ when with_meta)."""
    car = build_car(sample_car_params(np.random.default_rng(seed)))
    asset = asset_from_car_model(car)
    glb = root / "meshes" / f"{seed:06d}.glb"
    glb.parent.mkdir(parents=True, exist_ok=True)
    glb.write_bytes(part_glb(asset))
    if with_meta:
        meta = root / "meta" / f"{seed:06d}.json"
        meta.parent.mkdir(parents=True, exist_ok=True)
        world = [[round(float(c), 5) for c in p] for p in car.keypoints.tolist()]
        meta.write_text(json.dumps({"keypoints": {"world": world}}))
    return WorldCar(glb, car)


def blob_car(
    wheels: tuple[str, ...] = ("FL", "FR", "RL", "RR"),  # which wheel patches to label
    scale: float = 1.0,  # 1.0: 4.4 m long
    subdivisions: int = 5,
) -> CarAsset:
    """A reconstruction-like car: one closed rounded-box surface (+Y up, +Z forward), its four
    wheels are tire-labelled disc patches of that surface (radius 0.3 m, centres at x = +-0.9,
    y = 0.36, z = +-1.4), a glass band, head and tail lights, a UV checker texture."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    unit = np.asarray(sphere.vertices, dtype=np.float64)
    boxy = unit / np.linalg.norm(unit, ord=6, axis=1, keepdims=True)
    vertices = boxy * np.array([0.9, 0.7, 2.2]) + np.array([0.0, 0.75, 0.0])
    faces = np.asarray(sphere.faces, dtype=np.int64)
    centroid = vertices[faces].mean(1)
    parts = np.full(len(faces), PART_ID["door"], dtype=np.int64)
    glass = (centroid[:, 1] > 1.15) & (np.abs(centroid[:, 2]) < 1.2)
    parts[glass & (centroid[:, 2] > 0.8)] = PART_ID["windshield"]
    parts[glass & (centroid[:, 2] <= 0.8)] = PART_ID["window"]
    lamp = (centroid[:, 1] > 0.7) & (centroid[:, 1] < 0.95) & (np.abs(centroid[:, 0]) > 0.4)
    parts[lamp & (centroid[:, 2] > 2.0)] = PART_ID["car_lights"]
    parts[lamp & (centroid[:, 2] < -2.0)] = PART_ID["tailLight"]
    centres = {"FL": (1, 1), "FR": (-1, 1), "RL": (1, -1), "RR": (-1, -1)}
    for name in wheels:
        side, end = centres[name]
        radial = np.hypot(centroid[:, 1] - 0.36, centroid[:, 2] - end * 1.4)
        parts[(radial < 0.3) & (side * centroid[:, 0] > 0.6)] = PART_ID["tire"]
    materials = np.full(len(faces), MATERIAL_ID["paint"], dtype=np.int64)
    materials[np.isin(parts, [PART_ID["windshield"], PART_ID["window"]])] = MATERIAL_ID["glass"]
    materials[np.isin(parts, [PART_ID["car_lights"], PART_ID["tailLight"]])] = MATERIAL_ID["light"]
    materials[parts == PART_ID["tire"]] = MATERIAL_ID["rubber"]
    colours = np.tile(np.array([[0.55, 0.08, 0.06]]), (len(faces), 1))
    colours[materials == MATERIAL_ID["glass"]] = (0.1, 0.12, 0.12)
    colours[parts == PART_ID["car_lights"]] = (0.9, 0.9, 0.85)
    colours[parts == PART_ID["tailLight"]] = (0.8, 0.05, 0.03)
    colours[parts == PART_ID["tire"]] = (0.05, 0.05, 0.05)
    u = 0.5 + np.arctan2(unit[:, 0], unit[:, 2]) / (2 * np.pi)
    v = 0.5 - np.arcsin(np.clip(unit[:, 1], -1, 1)) / np.pi
    checker = ((np.arange(32)[:, None] // 4 + np.arange(32)[None, :] // 4) % 2).astype(np.uint8)
    texture = np.where(checker[..., None] > 0, [200, 40, 30], [150, 20, 15]).astype(np.uint8)
    return CarAsset(
        vertices=(vertices * scale).astype(np.float32),
        faces=faces,
        face_parts=parts,
        face_materials=materials,
        face_colors=colours.astype(np.float32),
        uv=np.stack([u, v], 1).astype(np.float32),
        uv_faces=faces.copy(),
        texture=texture,
        source="blob",
    ).validate()


def require_validator() -> None:
    """Skip (locally) or fail (CI) when the Khronos validator cannot run."""
    missing = validator_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"gltf-validator is required in CI: {missing}")
        pytest.skip(f"gltf-validator not available: {missing}")


def assert_valid_gltf(path: Path) -> dict:
    """Run the Khronos validator: zero errors and zero warnings; returns the report."""
    require_validator()
    report = validate_gltf(path)
    counts = issue_counts(report)
    messages = [f"{m['code']} {m.get('pointer', '')}" for m in report["issues"]["messages"][:10]]
    assert counts["errors"] == 0 and counts["warnings"] == 0, (path, counts, messages)
    assert not set(MUTED_INFOS) & {m["code"] for m in report["issues"]["messages"]}
    return report
