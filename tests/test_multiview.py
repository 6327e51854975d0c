"""multiview sample: view codes x content codes, labels, drop rules, cameras per view code,
identity figures; deterministic, sharded, resumable; the command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from interpreter_fixtures import TINY_CROP, save_tiny_generator, toy_annotations
from typer.testing import CliRunner

from assetgan.commands.multiview import app
from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.io_utils import atomic_write_json
from assetgan.pipeline.interpreter.checkpoint import save_interpreter
from assetgan.pipeline.interpreter.config import InterpreterTrainSettings
from assetgan.pipeline.interpreter.train import train
from assetgan.pipeline.multiview.sample import (
    MultiviewSampleConfig,
    MultiviewSet,
    MultiviewSettings,
    content_files,
    finalize,
    identity_figures,
    image_record,
    run,
)
from assetgan.pipeline.multiview.template import load_shipped_template
from assetgan.render.camera import orbit_camera

SETTINGS = MultiviewSettings(views=3, contents=4, view_layers=2, batch=2, min_mask=0.0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory, one_torch_thread):
    """(generator path, interpreter path): a tiny cropped generator, a 3-member interpreter
    trained for 40 iterations on three toy annotations."""
    root = tmp_path_factory.mktemp("models")
    generator, sha = save_tiny_generator(root / "G.safetensors", TINY_CROP)
    settings = InterpreterTrainSettings(members=3, batch_pixels=32, max_iterations=40)
    interpreter = train(toy_annotations(generator, [0, 1, 2], "G", sha), generator, sha, settings)
    return root / "G.safetensors", save_interpreter(interpreter, root / "I.safetensors")


def sample(models, out: Path, settings=SETTINGS, shard=(0, 1), progress=None) -> MultiviewSet:
    generator, interpreter = models
    config = MultiviewSampleConfig(
        generator, interpreter, out, settings, shard=shard, device=Device.cpu
    )
    return run(config, progress)


def tree(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under root."""
    return {str(p.relative_to(root)): file_sha256(p) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def reference(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "set"
    events = []
    result = sample(models, out, progress=events.append)
    return out, result, tree(out), events


def test_outputs_summary_and_manifest(reference):
    out, result, files, events = reference
    assert result.finished and result.present == 4 and result.written == 4
    assert events[-1].done == events[-1].total == 12 and events[-1].task == "images"
    summary = result.summary
    assert summary["images"] == 12
    assert summary["kept"] + sum(summary["dropped"].values()) == 12
    assert summary["dropped"]["uncertain"] == 1  # floor(0.1 * 12)
    manifest = result.manifest()
    assert len(manifest) == 12 and {(r["content"], r["view"]) for r in manifest} == {
        (c, v) for c in range(4) for v in range(3)
    }
    assert sum(r["kept"] for r in manifest) == summary["kept"]
    dropped = [r for r in manifest if r["reason"] == "uncertain"]
    assert dropped[0]["score"] == max(r["score"] for r in manifest)
    assert "images/c00003_v002.png" in files and "parts/c00003_v002.png" in files
    views_ws = np.load(out / "latents" / "views.npy")
    content_ws = np.load(out / "latents" / "c00001.npy")
    assert views_ws.shape[0] == 3 and content_ws.shape == views_ws.shape[1:]
    loaded = MultiviewSet.load(out)
    assert loaded.settings == SETTINGS and loaded.summary == summary
    assert set(summary["identity"]) >= {"paint_identity", "size_rank_agreement"}
    cameras = json.loads((out / "cameras.json").read_text())
    assert (
        cameras["fov_y"] == SETTINGS.fov_y
        and len(cameras["views"]) == summary["view_codes_with_camera"]
    )


def test_same_car_across_views_shares_content_ws(reference):
    out, _, _, _ = reference
    views_ws = np.load(out / "latents" / "views.npy")
    content_ws = np.load(out / "latents" / "c00002.npy")
    assert not np.allclose(views_ws[0, :2], content_ws[:2])  # the view code is its own seed
    assert not np.allclose(views_ws[0], views_ws[1])


def test_deterministic_sharded_and_resumable(reference, models, tmp_path):
    _, _, files, _ = reference
    sharded = tmp_path / "sharded"
    first = sample(models, sharded, shard=(0, 2))
    assert not first.finished and first.present == 2
    second = sample(models, sharded, shard=(1, 2))
    assert second.finished
    assert tree(sharded) == files
    # a lost image and its meta: a rerun writes just that content code again
    (sharded / content_files(1, 3)["meta"]).unlink()
    (sharded / "images" / "c00001_v000.png").unlink()
    again = sample(models, sharded)
    assert again.written == 1 and tree(sharded) == files


def test_other_settings_in_the_same_directory_are_refused(reference, models):
    out, _, _, _ = reference
    with pytest.raises(AssetganError, match="different settings"):
        sample(models, out, dataclasses.replace(SETTINGS, seed=1))


def test_view_layers_come_from_the_viewcode_measurement(models, tmp_path):
    generator, interpreter = models
    settings = dataclasses.replace(SETTINGS, view_layers=None, contents=2, views=2)
    config = MultiviewSampleConfig(generator, interpreter, tmp_path / "a", settings)
    with pytest.raises(AssetganError, match="gan viewcode"):
        run(config)
    viewcode = tmp_path / "viewcode.json"
    atomic_write_json(viewcode, {"best_k": 3})
    result = run(dataclasses.replace(config, viewcode=viewcode))
    assert result.settings.view_layers == 3


def _fake_set(root: Path, records: dict[tuple[int, int], dict], views: int, contents: int):
    settings = MultiviewSettings(
        views=views, contents=contents, view_layers=2, drop_uncertain=0.25, max_view_deviation=45
    )
    multiview = MultiviewSet(
        root, settings, "g" * 64, "i" * 64, "t" * 64, 8, (32, 32), ("background",), ("kp",)
    )
    root.mkdir(parents=True)
    multiview.save()
    for content in range(contents):
        meta = {"content": content, "views": [records[content, v] for v in range(views)]}
        atomic_write_json(root / content_files(content, views)["meta"], meta)
    return multiview


def _record(score, mask, azimuth, rgb=(0.5, 0.1, 0.1)):
    camera = None
    if azimuth is not None:
        camera = {"azimuth": azimuth, "elevation": 10.0, "distance": 9.0, "target": [0, 0.6, 0]}
    return {
        "score": score,
        "mask": mask,
        "camera": camera,
        "body_rgb": list(rgb),
        "areas_car12": [0.67] + [0.03] * 11,
    }


def test_finalize_drop_rules_and_cameras(tmp_path):
    records = {
        (0, 0): _record(0.1, 0.3, 10.0),
        (1, 0): _record(0.1, 0.3, 20.0),
        (2, 0): _record(0.1, 0.05, 200.0),  # mask under 10%: dropped first
        (3, 0): _record(0.1, 0.3, 120.0),  # 100+ deg from its view code's mean: dropped
        (0, 1): _record(0.9, 0.3, 90.0),  # the most uncertain of the 7 left: dropped
        (1, 1): _record(0.2, 0.3, 95.0),
        (2, 1): _record(0.1, 0.3, None),  # no camera: kept, uses the view code's
        (3, 1): _record(0.1, 0.3, 100.0),
    }
    multiview = _fake_set(tmp_path / "set", records, views=2, contents=4)
    done = finalize(multiview)
    summary = done.summary
    assert summary["dropped"] == {"mask": 1, "uncertain": 1, "view": 1}
    assert summary["kept"] == 5 and summary["without_camera"] == 1
    reasons = {(r["content"], r["view"]): r["reason"] for r in done.manifest()}
    assert reasons[2, 0] == "mask" and reasons[0, 1] == "uncertain" and reasons[3, 0] == "view"
    cameras = done.cameras()
    assert cameras[0].azimuth in (10.0, 20.0) and cameras[0].count == 2
    assert cameras[1].azimuth in (95.0, 100.0) and cameras[1].count == 2
    document = json.loads((tmp_path / "set" / "cameras.json").read_text())
    assert document["views"]["0"]["camera"]["width"] == 32
    assert MultiviewSet.load(tmp_path / "set").summary == summary


def test_identity_figures_see_paint_kept_and_lost():
    rng = np.random.default_rng(0)
    colours = rng.uniform(0, 1, (6, 3))
    kept = [
        (c, v, _record(0.1, 0.2 + 0.02 * c, 0.0, colours[c] + rng.normal(0, 0.01, 3)))
        for c in range(6)
        for v in range(4)
    ]
    figures = identity_figures(kept, 6, 4)
    assert figures["paint_identity"] > 0.8 and figures["paint_retrieval"] == 1.0
    assert figures["size_rank_agreement"] == pytest.approx(1.0)
    lost = [
        (c, v, _record(0.1, rng.uniform(0.2, 0.4), 0.0, rng.uniform(0, 1, 3))) for c, v, _ in kept
    ]
    figures = identity_figures(lost, 6, 4)
    assert figures["paint_identity"] < 0.3 and figures["size_rank_agreement"] < 0.5


def test_sample_command_bad_input(models, tmp_path):
    generator, interpreter = models
    runner = CliRunner()
    base = ["sample", "-g", str(generator), "--interpreter", str(interpreter)]
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "a"), "--views", "1"])
    assert (
        result.exit_code == 1 and "error: multiview settings: --views must be >= 2" in result.output
    )
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--shard", "2/2"])
    assert result.exit_code == 1 and "--shard 2/2" in result.output
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "c")])  # no viewcode.json
    assert result.exit_code == 1 and "gan viewcode" in result.output
    result = runner.invoke(
        app,
        [*base, "--out", str(tmp_path / "d"), "--views", "2", "--contents", "2",
         "--view-layers", "2", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "kept" in result.output and "identity across views" in result.output


def test_image_record_cameras_from_weak_peaks_when_asked():
    template = load_shipped_template()
    camera = orbit_camera(60.0, 12.0, 9.0, fov_y_deg=32.0, size=(64, 64))
    xy = camera.project(torch.tensor(template.points_m(), dtype=torch.float32))[0].numpy()
    keypoints = np.concatenate([xy, np.ones((len(xy), 1)), np.full((len(xy), 1), 0.4)], 1)
    part_ids = np.zeros((64, 64), np.uint8)
    part_ids[20:40, 10:50] = 3  # car_body: 31 % of the image
    image = np.full((64, 64, 3), 200, np.uint8)
    js = np.zeros((64, 64), np.float32)
    strict = dataclasses.replace(SETTINGS, pnp_visibility=2)
    assert image_record(image, part_ids, js, keypoints, template, strict)["camera"] is None
    record = image_record(image, part_ids, js, keypoints, template, SETTINGS)
    assert abs(record["camera"]["azimuth"] - 60.0) < 0.5
    assert record["mask"] == pytest.approx(800 / 4096, abs=1e-6)
    assert record["body_rgb"] == pytest.approx([200 / 255] * 3, abs=1e-5)
