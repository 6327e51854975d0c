"""The export stage: CarWorld ground truth and a reconstruction-like asset -> rigged glTF, checked
by the Khronos validator, round trips through trimesh and pygltflib, the wheel fits against
CarWorld's true pivots, the drive / steer animations, OBJ / PLY, bad inputs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import trimesh
from export_fixtures import assert_valid_gltf, blob_car, world_car
from typer.testing import CliRunner

from assetgan.assets.taxonomy import PART_ID
from assetgan.commands import export as export_commands
from assetgan.commands.app import App
from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.export.car import AssetExportConfig, AssetExportResult, run
from assetgan.inverse_graphics.export.posing import (
    load_gltf,
    posed_primitives,
    read_accessor,
    sample_animation,
    world_matrices,
)
from assetgan.inverse_graphics.export.topology import boundary_count, cut_and_close, face_areas
from assetgan.pipeline.carworld.model import car_asset as asset_from_car_model
from assetgan.render.asset import CarAsset, part_glb, read_part_glb

WHEEL_NODES = ("Wheel_FL", "Wheel_FR", "Wheel_RL", "Wheel_RR")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, object, AssetExportResult]:
    """CarWorld car 0 (keypoints from its split meta) exported with default options."""
    root = tmp_path_factory.mktemp("world")
    car = world_car(root, seed=0)
    result = run(AssetExportConfig(car=car.glb, out=root / "car.glb"))
    return root / "car.glb", car.model, result


def _node(gltf: pygltflib.GLTF2, name: str) -> int:
    return next(i for i, node in enumerate(gltf.nodes) if node.name == name)


def _wheel_vertices(gltf, animation, time) -> dict[str, np.ndarray]:
    posed = posed_primitives(gltf, animation, time)
    return {n: np.concatenate([p.vertices for p in posed if p.node == n]) for n in WHEEL_NODES}


def _axle_distance(vertices: np.ndarray, centre: np.ndarray, axle: np.ndarray) -> np.ndarray:
    rel = vertices - centre
    return np.linalg.norm(rel - np.outer(rel @ axle, axle), axis=1)


def test_part_glb_is_carworlds_writer(tmp_path):
    """The neutral asset writes CarWorld's ground-truth GLB byte for byte, and reads it back."""
    from assetgan.pipeline.carworld.generate import mesh_glb
    from assetgan.pipeline.carworld.model import build_car
    from assetgan.pipeline.carworld.params import sample_car_params

    car = build_car(sample_car_params(np.random.default_rng(3)))
    asset = asset_from_car_model(car)
    payload = part_glb(asset)
    assert payload == mesh_glb(car)
    (tmp_path / "car.glb").write_bytes(payload)
    back = read_part_glb(tmp_path / "car.glb")
    present = face_areas(asset.vertices, asset.faces) > 1e-12  # absent pieces are left out
    assert back.num_faces == int(present.sum())
    assert set(back.face_parts.tolist()) == set(asset.face_parts[present].tolist())
    assert (
        np.abs(back.vertices.min(0) - asset.vertices[asset.faces[present]].min((0, 1))).max() < 1e-6
    )


def test_asset_directory_round_trip(tmp_path):
    asset = blob_car(subdivisions=3)
    asset.save(tmp_path / "asset")
    back = CarAsset.load(tmp_path / "asset")
    for name in (
        "vertices",
        "faces",
        "face_parts",
        "face_materials",
        "face_colors",
        "uv",
        "texture",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(asset, name))
    assert back.keypoints is None


def test_carworld_export_is_valid_and_round_trips(exported):
    path, _, result = exported
    report = assert_valid_gltf(path)
    assert report["issues"]["numInfos"] == 0  # nothing muted, nothing to mute
    gltf = pygltflib.GLTF2.load(str(path))
    names = [node.name for node in gltf.nodes]
    root = gltf.nodes[gltf.scenes[gltf.scene].nodes[0]]
    assert root.name == "Car"
    children = {gltf.nodes[c].name for c in root.children}
    assert children == {"Body", "Glass", "Lights", "Steer_FL", "Steer_FR", "Wheel_RL", "Wheel_RR"}
    for side in ("FL", "FR"):
        steer = gltf.nodes[_node(gltf, f"Steer_{side}")]
        assert [gltf.nodes[c].name for c in steer.children] == [f"Wheel_{side}"]
    assert all(" " not in n and "." not in n for n in names)
    animated = {ch.target.node for a in gltf.animations for ch in a.channels}
    assert all(gltf.nodes[n].matrix is None and gltf.nodes[n].rotation for n in animated)
    assert [a.name for a in gltf.animations] == ["drive", "steer"] == list(result.animations)
    materials = {m.name: m for m in gltf.materials}
    assert materials["glass"].alphaMode == "BLEND"
    assert "KHR_materials_transmission" in materials["glass"].extensions
    assert materials["head_light"].emissiveFactor == [1.0, 1.0, 1.0]
    assert (
        materials["tail_light"].emissiveFactor[0]
        == 1.0
        > 5 * materials["tail_light"].emissiveFactor[1]
    )
    assert "KHR_materials_emissive_strength" in materials["tail_light"].extensions
    scene = trimesh.load(path, force="scene")  # trimesh reads the hierarchy back
    extent = scene.bounds[1] - scene.bounds[0]
    assert abs(extent[2] - result.length_m) < 0.05 and scene.bounds[0][1] > -0.02


def test_wheel_fits_match_carworld_pivots(tmp_path, exported):
    """Fitted centres within 1% of the car length of the true pivots, radii within 5%, read
    from the written file (node translations and the wheel meshes' own radii); with keypoints
    from the split's meta (cars 0, 1) and without (car 2)."""
    cars = [exported]
    for seed in (1, 2):
        car = world_car(tmp_path, seed=seed, with_meta=seed == 1)
        out = tmp_path / f"car{seed}.glb"
        cars.append((out, car.model, run(AssetExportConfig(car=car.glb, out=out))))
    for out, model, result in cars:
        gltf = load_gltf(out)
        truth = model.wheel_pivots.numpy().astype(np.float64)
        length = float(np.ptp(model.mesh.vertices.numpy()[:, 2]))
        worlds = world_matrices(gltf, sample_animation(gltf, None, 0.0))
        rest = _wheel_vertices(gltf, None, 0.0)
        centres = np.stack([worlds[_node(gltf, n)][:3, 3] for n in WHEEL_NODES])  # Car frame
        in_input = centres + np.asarray(result.origin)
        assert np.abs(in_input - truth).max() < 0.01 * length, out
        assert np.abs(centres[:, 1] - model.wheel_radius).max() < 0.01 * length  # on the ground
        assert abs(centres[:2, 2].mean() + centres[2:, 2].mean()) < 1e-6  # mid-wheelbase
        for name, centre in zip(WHEEL_NODES, centres, strict=True):
            radial = np.linalg.norm((rest[name] - centre)[:, 1:], axis=1).max()
            assert abs(radial - model.wheel_radius) < 0.05 * model.wheel_radius, (out, name)
        fits = [w["keypoint_offset"] for w in result.wheels]
        assert (fits[0] is None) == (out.name == "car2.glb")


def test_drive_keeps_wheel_vertices_on_their_circles(exported):
    path, _, _ = exported
    gltf = load_gltf(path)
    drive = next(a for a in gltf.animations if a.name == "drive")
    times = read_accessor(gltf, drive.samplers[0].input)
    turns = read_accessor(gltf, drive.samplers[0].output).astype(np.float64)
    angles = 2 * np.degrees(np.arccos(np.clip(np.abs((turns[1:] * turns[:-1]).sum(1)), 0, 1)))
    assert len(times) >= 4 and angles.max() <= 120.0 + 1e-3  # >= 3 keys per revolution
    assert abs(angles.sum() - 360.0) < 1e-2  # one full turn
    rest = _wheel_vertices(gltf, None, 0.0)
    worlds = world_matrices(gltf, sample_animation(gltf, None, 0.0))
    for t in (0.13, 0.37, 0.5, 0.81, float(times[-1])):
        posed = _wheel_vertices(gltf, "drive", t)
        for name in WHEEL_NODES:
            world = worlds[_node(gltf, name)]
            centre, axle = world[:3, 3], world[:3, 0]
            d0, dt = (
                _axle_distance(rest[name], centre, axle),
                _axle_distance(posed[name], centre, axle),
            )
            assert np.abs(dt - d0).max() <= 1e-5 * d0.max(), (name, t)
            moved = np.abs(posed[name] - rest[name]).max()
            if t == float(times[-1]):
                assert moved < 1e-5  # one full revolution
            else:
                assert moved > 0.05, (name, t)
    for p0, p1 in zip(
        posed_primitives(gltf, None, 0.0), posed_primitives(gltf, "drive", 0.37), strict=True
    ):
        if not p0.node.startswith("Wheel_"):
            np.testing.assert_array_equal(p0.vertices, p1.vertices)


def test_steer_turns_only_the_front_wheels(exported):
    path, _, _ = exported
    gltf = load_gltf(path)
    steer = next(a for a in gltf.animations if a.name == "steer")
    assert {gltf.nodes[c.target.node].name for c in steer.channels} == {"Steer_FL", "Steer_FR"}
    rest = posed_primitives(gltf, None, 0.0)
    posed = posed_primitives(gltf, "steer", 0.5)  # a quarter of the 2 s cycle: full left
    for p0, p1 in zip(rest, posed, strict=True):
        moved = np.abs(p1.vertices - p0.vertices).max()
        assert (moved > 0.02) == (p0.node in ("Wheel_FL", "Wheel_FR")), (p0.node, moved)
    worlds = world_matrices(gltf, sample_animation(gltf, "steer", 0.5))
    rotation = worlds[_node(gltf, "Steer_FL")][:3, :3]
    angle = np.degrees(np.arctan2(rotation[0, 2], rotation[0, 0]))
    assert abs(angle - (-30.0)) < 0.5 or abs(angle - 30.0) < 0.5
    forward = rotation @ np.array([0.0, 0.0, 1.0])
    assert forward[0] > 0.45  # positive steering turns the front to the left (+X)


def test_omi_godot_and_gltf_variants(tmp_path, exported):
    glb, _, _ = exported
    source = glb.parent / "meshes" / "000000.glb"
    out = tmp_path / "car_omi.glb"
    run(AssetExportConfig(car=source, out=out, omi=True, godot=True))
    report = assert_valid_gltf(out)
    assert {m["code"] for m in report["issues"]["messages"]} == {"UNSUPPORTED_EXTENSION"}
    gltf = pygltflib.GLTF2.load(str(out))
    root = gltf.nodes[gltf.scenes[0].nodes[0]]
    assert root.name == "Car-vehicle"
    assert root.extensions["OMI_physics_body"]["motion"]["type"] == "dynamic"
    wheels = gltf.extensions["OMI_vehicle_wheel"]["wheels"]
    mounts = [gltf.nodes[c] for c in root.children if gltf.nodes[c].name.endswith("-wheel")]
    assert sorted(m.name for m in mounts) == [
        "Steer_FL-wheel",
        "Steer_FR-wheel",
        "Wheel_RL-wheel",
        "Wheel_RR-wheel",
    ]
    for mount in mounts:
        wheel = wheels[mount.extensions["OMI_vehicle_wheel"]["wheel"]]
        assert (wheel["maxSteeringAngle"] > 0) == mount.name.startswith("Steer")
    text = tmp_path / "car.gltf"
    run(AssetExportConfig(car=source, out=text))
    assert_valid_gltf(text)
    assert json.loads(text.read_text())["buffers"][0]["uri"].startswith("data:")


def test_static_obj_and_ply(tmp_path, exported):
    glb, _, result = exported
    source = glb.parent / "meshes" / "000000.glb"
    for suffix in ("obj", "ply"):
        out = tmp_path / f"car.{suffix}"
        static = run(AssetExportConfig(car=source, out=out))
        mesh = trimesh.load(out, force="mesh", process=False)
        assert static.animations == () and len(mesh.faces) == result.faces
        assert abs(np.ptp(mesh.vertices[:, 2]) - result.length_m) < 0.05
        assert mesh.visual.kind in ("vertex", "face")


def test_reconstruction_like_asset_directory(tmp_path):
    """A single closed textured surface: the wheel patches are cut out and the body closed."""
    asset = blob_car()
    cut = cut_and_close(asset.vertices, asset.faces, asset.face_parts == PART_ID["tire"])
    assert boundary_count(asset.vertices, asset.faces) == 0
    assert cut.holes_closed == 4 and cut.open_edges_after == 0
    assert boundary_count(asset.vertices, asset.faces[asset.face_parts != PART_ID["tire"]]) > 0
    asset.save(tmp_path / "recon")
    out = tmp_path / "recon.glb"
    result = run(AssetExportConfig(car=tmp_path / "recon", out=out, length_m=4.4))
    assert result.holes_closed == 4
    assert_valid_gltf(out)
    gltf = pygltflib.GLTF2.load(str(out))
    body = next(m for m in gltf.meshes if m.name == "Body")
    assert body.primitives[0].attributes.TEXCOORD_0 is not None
    assert gltf.materials[body.primitives[0].material].pbrMetallicRoughness.baseColorTexture
    for wheel in result.wheels:  # coarse patches: within 20 % of the 0.3 m design radius
        assert abs(wheel["radius"] - 0.3) < 0.06 and abs(abs(wheel["centre"][2]) - 1.4) < 0.1


def _bad(
    tmp_path: Path, name: str, asset: CarAsset | None = None, payload: bytes | None = None
) -> Path:
    if asset is not None:
        asset.save(tmp_path / name)
        return tmp_path / name
    path = tmp_path / name
    path.write_bytes(payload or b"")
    return path


@pytest.mark.parametrize(
    "case, message",
    [
        ("no_wheels", "no wheel parts"),
        ("three_wheels", "only 3 of 4 corners (none at rear right)"),
        ("non_manifold", "non-manifold"),
        ("empty", "empty"),
        ("unreadable", "cannot read glTF"),
        ("not_parts", "not named after a car_20 part"),
        ("not_metres", "--length"),
    ],
)
def test_bad_inputs_fail_in_one_line_and_write_nothing(tmp_path, case, message):
    small = blob_car(subdivisions=3)
    if case == "no_wheels":
        car = _bad(tmp_path, case, blob_car(wheels=(), subdivisions=3))
    elif case == "three_wheels":
        car = _bad(tmp_path, case, blob_car(wheels=("FL", "FR", "RL"), subdivisions=3))
    elif case == "non_manifold":
        a, b, c = small.faces[0]
        fin = small.vertices[[a, b, c]].mean(0) + np.float32(0.2)
        grown = CarAsset(
            vertices=np.concatenate([small.vertices, fin[None]]),
            faces=np.concatenate([small.faces, [[a, b, len(small.vertices)]]]),
            face_parts=np.append(small.face_parts, PART_ID["door"]),
            face_materials=np.append(small.face_materials, 0),
            face_colors=np.concatenate([small.face_colors, small.face_colors[:1]]),
        )
        car = _bad(tmp_path, case, grown)
    elif case == "empty":
        empty = pygltflib.GLTF2(
            scenes=[pygltflib.Scene(nodes=[0])], nodes=[pygltflib.Node(name="tire")]
        )
        car = _bad(tmp_path, "empty.glb", payload=b"".join(empty.save_to_bytes()))
    elif case == "unreadable":
        car = _bad(tmp_path, "garbage.glb", payload=b"glTF\x02\x00\x00\x00not really")
    elif case == "not_parts":
        scene = trimesh.Scene()
        scene.add_geometry(trimesh.creation.box(), node_name="chassis", geom_name="chassis")
        car = _bad(tmp_path, "boxes.glb", payload=scene.export(file_type="glb"))
    else:
        car = _bad(tmp_path, case, blob_car(scale=0.2, subdivisions=3))
    out = tmp_path / "out" / "car.glb"
    with pytest.raises(AssetganError) as error:
        run(AssetExportConfig(car=car, out=out))
    text = str(error.value)
    assert message in text and "\n" not in text and str(car) in text
    assert not out.exists() and not out.parent.exists()


def test_cli_default_command_and_bad_input(tmp_path, exported):
    glb, _, _ = exported
    source = glb.parent / "meshes" / "000000.glb"
    root = App(help="root")
    root.callback()(lambda: None)
    root.add_typer(export_commands.app, name="export")  # as assetgan/cli.py registers it
    runner = CliRunner()
    out = tmp_path / "cli.glb"
    done = runner.invoke(root, ["export", str(source), "--out", str(out), "--steer", "25"])
    assert done.exit_code == 0, done.output
    assert "wrote" in done.output and out.is_file()
    steer = next(a for a in pygltflib.GLTF2.load(str(out)).animations if a.name == "steer")
    assert steer.name == "steer"
    same = runner.invoke(
        export_commands.app, ["glb", str(source), "--out", str(tmp_path / "b.ply")]
    )
    assert same.exit_code == 0 and (tmp_path / "b.ply").is_file()
    bad = runner.invoke(
        root, ["export", str(tmp_path / "missing.glb"), "--out", str(tmp_path / "x.glb")]
    )
    assert bad.exit_code == 1
    assert bad.output.strip().startswith("error:") and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.glb").exists()
    wrong = runner.invoke(root, ["export", str(source), "--out", str(tmp_path / "x.fbx")])
    assert wrong.exit_code == 1 and "unknown output format" in wrong.output
