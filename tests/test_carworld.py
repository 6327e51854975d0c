"""CarWorld: taxonomy merges, car geometry, labels against independent re-computation,
determinism across workers, kill-and-resume, COCO, and the `world` CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from assetgan.assets import taxonomy
from assetgan.cli import app
from assetgan.core.errors import AssetganError
from assetgan.pipeline.carworld.generate import (
    WorldRenderConfig,
    _render_chunks,
    prepare_out_dir,
    render_chunk,
    run,
    sample_item,
)
from assetgan.pipeline.carworld.model import build_car
from assetgan.pipeline.carworld.params import (
    SHIFT_PAINTS,
    TRAIN_PAINTS,
    BodyStyle,
    CarParams,
    Shift,
    sample_car_params,
)
from assetgan.pipeline.carworld.render import (
    clip_coordinates,
    keypoint_visibility,
    single_thread,
    visibility_tolerance,
)
from assetgan.pipeline.carworld.split import WorldConfig, WorldSplit
from assetgan.render import rasterize
from assetgan.render.camera import Camera
from assetgan.render.reference import rasterize_dense

TINY = WorldConfig(split="test", n=6, size=64, seed=3, chunk=4)


def car_of_style(style: BodyStyle, seed: int = 0) -> CarParams:
    rng = np.random.default_rng(seed)
    while True:
        params = sample_car_params(rng)
        if params.style is style:
            return params


def render(world: WorldConfig, out: Path, workers: int = 1) -> WorldSplit:
    return run(WorldRenderConfig(world=world, out=out, workers=workers))


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory) -> WorldSplit:
    events = []
    split = run(WorldRenderConfig(TINY, tmp_path_factory.mktemp("world") / "split"), events.append)
    assert [(e.done, e.total, e.task) for e in events] == [
        (0, 6, "images"),
        (4, 6, "images"),
        (6, 6, "images"),
    ]
    return split


def split_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "split.json"  # split.json holds run timings
    }


# ---- taxonomy -------------------------------------------------------------------------------
def test_taxonomy_sizes_and_merges_are_consistent():
    assert len(taxonomy.CAR_20) == 20 and len(taxonomy.CAR_12) == 12 and len(taxonomy.CAR_5) == 6
    assert len(taxonomy.KEYPOINTS) == 12
    ids = np.arange(20)
    np.testing.assert_array_equal(
        taxonomy.car20_to_car5(ids), taxonomy.car12_to_car5(taxonomy.car20_to_car12(ids))
    )
    names12 = [taxonomy.CAR_12[i] for i in taxonomy.car20_to_car12(ids)]
    assert names12[taxonomy.PART_ID["tire"]] == "wheel"
    assert names12[taxonomy.PART_ID["windshield"]] == "wind shield"
    assert names12[taxonomy.PART_ID["hoods"]] == "car"
    assert names12[0] == "background"
    names5 = [taxonomy.CAR_5[i] for i in taxonomy.car20_to_car5(ids)]
    assert names5[taxonomy.PART_ID["wheelhub"]] == "wheel"
    assert names5[taxonomy.PART_ID["licensePlate"]] == "plate"
    assert names5[taxonomy.PART_ID["tailLight"]] == "light"
    assert names5[taxonomy.PART_ID["door"]] == "body"
    assert set(taxonomy.car20_to_car12(ids[1:])) == set(range(1, 12))  # every car_12 part reached
    flip = np.array(taxonomy.KEYPOINT_FLIP)
    np.testing.assert_array_equal(flip[flip], np.arange(12))
    assert all(1 <= a <= 12 and 1 <= b <= 12 for a, b in taxonomy.coco_skeleton())
    with pytest.raises(AssetganError):
        taxonomy.car20_to_car12(np.array([20]))


# ---- geometry -------------------------------------------------------------------------------
def test_cars_share_topology_are_symmetric_and_carry_all_parts():
    from scipy.spatial import cKDTree

    cars = [build_car(car_of_style(style)) for style in BodyStyle]
    faces = cars[0].mesh.faces
    for car in cars:
        assert torch.equal(car.mesh.faces, faces)
        verts = car.mesh.vertices.numpy()
        mirrored = verts * np.array([-1.0, 1.0, 1.0])
        assert cKDTree(verts).query(mirrored)[0].max() < 1e-5  # left-right symmetric
        present = set(car.mesh.face_parts.tolist())
        expected = set(range(1, 20)) - {taxonomy.PART_ID["running_boards"]}
        assert expected <= present, [taxonomy.CAR_20[k] for k in expected - present]
        kp = car.keypoints.numpy()
        left = [taxonomy.KEYPOINT_ID[n] for n in taxonomy.KEYPOINTS if "left" in n]
        assert (kp[left, 0] > 0).all()
        np.testing.assert_allclose(kp[list(taxonomy.KEYPOINT_FLIP)] * [-1, 1, 1], kp, atol=1e-6)
        assert car.mesh.vertices[:, 1].min() >= -1e-6  # nothing below the ground
        np.testing.assert_allclose(car.wheel_pivots[:, 1], car.wheel_radius, atol=1e-6)
    assert all(len(c.mesh.face_parts) == c.num_faces for c in cars)


def test_build_car_is_a_pure_function_of_params():
    params = car_of_style(BodyStyle.pickup, seed=4)
    again = CarParams.from_json(json.loads(json.dumps(params.to_json())))
    assert again == params
    assert torch.equal(build_car(params).mesh.vertices, build_car(again).mesh.vertices)


def test_shifts_change_the_distribution():
    rng = np.random.default_rng(0)
    train = np.array([c for _, c in TRAIN_PAINTS])
    shifted = np.array([c for _, c in SHIFT_PAINTS])
    for _ in range(40):
        paint = np.array(sample_car_params(rng, paint_shift=True).paint)
        assert (
            np.linalg.norm(shifted - paint, axis=1).min()
            < np.linalg.norm(train - paint, axis=1).min()
        )
    styles = [sample_car_params(rng, style_shift=True).style for _ in range(200)]
    rare = sum(s in (BodyStyle.van, BodyStyle.pickup) for s in styles)
    assert rare > 80  # vs ~36 of 200 without the shift
    config = replace(TINY, shift=Shift.background)
    assert all(
        sample_item(config, i)[1].background.value in ("pattern", "clutter") for i in range(8)
    )


# ---- labels ---------------------------------------------------------------------------------
def test_part_png_equals_rasterised_face_parts(tiny_split):
    for index in range(len(tiny_split)):
        meta = tiny_split.meta(index)
        car = build_car(CarParams.from_json(meta["params"]))
        camera = Camera.from_json(meta["camera"])
        clip = clip_coordinates(
            car.mesh.vertices.numpy()[None].astype(np.float64),
            camera.mvp.numpy()[None].astype(np.float64),
        )
        rast = rasterize(torch.tensor(clip, dtype=torch.float32), car.mesh.faces, (64, 64))
        face = rast[0, ..., 3].long() - 1
        parts = torch.where(face >= 0, car.mesh.face_parts[face.clamp(min=0)], 0).flip(0).numpy()
        saved = tiny_split.parts(index)
        assert saved.dtype == np.uint8 and saved.shape == (64, 64)
        assert (parts == saved).mean() > 0.998  # without back-face culling: same up to ties
        assert (saved > 0).sum() > 200


def test_part_labels_match_the_dense_reference_rasterizer():
    params, scene = sample_item(TINY, 1)
    car = build_car(params)
    camera = scene.camera(32)
    clip = torch.tensor(
        clip_coordinates(
            car.mesh.vertices.numpy()[None].astype(np.float64),
            camera.mvp.numpy()[None].astype(np.float64),
        ),
        dtype=torch.float32,
    )
    fast = rasterize(clip, car.mesh.faces, (32, 32), cull_backfaces=True)[..., 3]
    dense = rasterize_dense(clip, car.mesh.faces, (32, 32))[..., 3]

    def to_parts(ids: torch.Tensor) -> torch.Tensor:
        return torch.where(ids > 0, car.mesh.face_parts[(ids.long() - 1).clamp(min=0)], 0)

    assert (to_parts(fast) == to_parts(dense)).float().mean() > 0.99


def test_keypoints_project_through_the_saved_camera_and_match_the_depth_buffer(tiny_split):
    counts = np.zeros(3, dtype=int)
    for index in range(len(tiny_split)):
        meta = tiny_split.meta(index)
        camera = Camera.from_json(meta["camera"])
        world = torch.tensor(meta["keypoints"]["world"])
        xy, depth = camera.project(world)
        xyv = np.array(meta["keypoints"]["xyv"])
        np.testing.assert_allclose(xy.numpy(), xyv[:, :2], atol=2e-3)
        np.testing.assert_allclose(depth.numpy(), meta["keypoints"]["depth"], atol=1e-3)
        depth_map = tiny_split.depth(index)
        again = keypoint_visibility(
            xyv[:, :2], np.array(meta["keypoints"]["depth"]), depth_map, camera
        )
        np.testing.assert_array_equal(again, xyv[:, 2])
        for (x, y, v), d in zip(xyv, meta["keypoints"]["depth"], strict=True):
            if v == 0:
                assert not (0 <= x < 64 and 0 <= y < 64)
                continue
            buffer = depth_map[int(y), int(x)]
            slack = visibility_tolerance(np.array(d), camera)
            assert (buffer > 0 and buffer < d - slack) == (v == 1)
            assert slack < 0.3  # the rule is tight enough to mean something at 64 px
        counts += np.bincount(xyv[:, 2].astype(int), minlength=3)
    assert counts[2] > 0 and counts[1] > 0  # both visible and self-occluded keypoints occur


def test_depth_matches_car_mask_and_is_plausible(tiny_split):
    for index in range(len(tiny_split)):
        depth, parts = tiny_split.depth(index), tiny_split.parts(index)
        np.testing.assert_array_equal(depth > 0, parts > 0)
        distance = tiny_split.meta(index)["scene"]["distance"]
        assert depth[depth > 0].min() > distance - 4.0 and depth.max() < distance + 4.0


# ---- split files ----------------------------------------------------------------------------
def test_coco_loads_with_pycocotools_and_matches_the_part_pngs(tiny_split):
    from pycocotools.coco import COCO

    coco = COCO(str(tiny_split.root / "coco.json"))
    car_category = coco.loadCats(100)[0]
    assert car_category["keypoints"] == list(taxonomy.KEYPOINTS)
    assert car_category["skeleton"] == taxonomy.coco_skeleton()
    assert len(coco.getImgIds()) == len(tiny_split)
    parts = tiny_split.parts(0)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[0])):
        mask = coco.annToMask(ann)
        if ann["category_id"] == 100:
            np.testing.assert_array_equal(mask, parts > 0)
            assert len(ann["keypoints"]) == 36
        else:
            np.testing.assert_array_equal(mask, parts == ann["category_id"])


def test_split_load_merges_and_manifest(tiny_split):
    again = WorldSplit.load(tiny_split.root)
    assert again.config == TINY and len(again) == TINY.n
    written = json.loads((tiny_split.root / "split.json").read_text())
    assert written["config"] == {  # the split's identity only: not --out, not --workers
        "split": "test", "n": 6, "size": 64, "seed": 3, "shift": "none", "meshes": False,
        "degrade": 0.25, "supersample": 2, "chunk": 4, "generator": "carworld-3",
    }  # fmt: skip
    lines = (tiny_split.root / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(TINY.n))
    assert all(json.loads(line)["schema_version"] == 1 for line in lines)
    np.testing.assert_array_equal(again.parts(2, "car_5"), taxonomy.car20_to_car5(again.parts(2)))
    assert again.keypoints().shape == (TINY.n, 12, 3)
    assert again.image(0).shape == (64, 64, 3)


def test_same_seed_same_bytes_whatever_the_chunk_order(tmp_path, tiny_split):
    out = tmp_path / "reversed"
    prepare_out_dir(out, TINY)
    with single_thread():
        for chunk in reversed(range(2)):  # workers finish chunks in any order
            render_chunk(out, TINY, chunk)
    render(TINY, out)  # everything done: only rebuilds manifest and COCO
    assert split_bytes(out) == split_bytes(tiny_split.root)
    different = render(replace(TINY, seed=4, n=1), tmp_path / "other")
    assert different.image(0).tobytes() != tiny_split.image(0).tobytes()


@pytest.mark.slow
def test_two_worker_processes_give_the_same_bytes(tmp_path, tiny_split):
    render(TINY, tmp_path / "two", workers=2)
    assert split_bytes(tmp_path / "two") == split_bytes(tiny_split.root)


def test_kill_and_resume_gives_the_uninterrupted_split(tmp_path, tiny_split):
    out = tmp_path / "resumed"
    _render_chunks(WorldRenderConfig(TINY, out), stop_after_chunks=1)  # "killed" after a chunk
    assert not (out / "manifest.jsonl").exists()
    assert len(list((out / "meta").glob("*.json"))) == 4
    (out / "meta" / "000002.json").unlink()  # lost its completion marker
    (out / "images" / "000004.png").write_bytes(b"partial")  # killed before its meta
    (out / "parts" / ".000005.png.xyz.tmp").write_bytes(b"half a file")
    render(TINY, out)
    assert split_bytes(out) == split_bytes(tiny_split.root)


def test_run_refuses_bad_configs_and_foreign_directories(tmp_path, tiny_split):
    with pytest.raises(AssetganError, match="--n must be at least 1"):
        render(replace(TINY, n=0), tmp_path / "a")
    with pytest.raises(AssetganError, match="--size"):
        render(replace(TINY, size=100), tmp_path / "a")
    with pytest.raises(AssetganError, match="different config"):
        render(replace(TINY, seed=9), tiny_split.root)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(AssetganError, match="not an empty directory"):
        render(TINY, tmp_path / "busy")
    with pytest.raises(AssetganError, match="--workers must be at least 1"):
        render(TINY, tmp_path / "w", workers=0)


def test_meshes_are_written_as_glb_with_part_nodes(tmp_path):
    import trimesh

    split = render(replace(TINY, n=1, meshes=True), tmp_path / "meshes")
    scene = trimesh.load(split.root / "meshes" / "000000.glb", force="scene")
    names = set(scene.geometry)
    assert {"door", "tire", "wheelhub", "windshield", "hoods"} <= names
    assert names <= set(taxonomy.CAR_20)


# ---- CLI ------------------------------------------------------------------------------------
def test_cli_world_render_sheet_and_bad_input(tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(
        app, ["world", "render", "--split", "val", "--n", "3", "--seed", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(WorldSplit.load(out)) == 3
    result = runner.invoke(app, ["world", "render", "--n", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "--n must be at least 1" in result.output
    result = runner.invoke(app, ["world", "render", "--size", "100", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "--size must be one of" in result.output
    result = runner.invoke(app, ["world", "render", "--n", "4", "--out", str(out)])
    assert result.exit_code == 1 and "different config" in result.output
    result = runner.invoke(
        app, ["world", "render", "--shift", "weather", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(app, ["world", "sheet", "--size", "32", "--out", str(sheet)])
    assert result.exit_code == 0, result.output
    assert Image.open(sheet).size[0] > 32 * 5
    result = runner.invoke(app, ["world", "sheet", "--size", "8", "--out", str(sheet)])
    assert result.exit_code == 1 and "--size" in result.output
