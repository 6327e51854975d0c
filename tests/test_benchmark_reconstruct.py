"""benchmarks/reconstruct.py and reconstruct/benchmark.py on a 3-image CarWorld split rendered
with meshes and an untrained network (issue 11 section 5)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.reconstruct.benchmark import (
    ReconstructBenchConfig,
    chamfer_l2,
    load_truth,
    orbit_cameras,
    run,
    surface_samples,
    wheel_centres,
)
from assetgan.inverse_graphics.reconstruct.model import (
    ReconstructNet,
    ReconstructNetConfig,
    save_reconstructor,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reconstruct.py"
# the smallest valid network: 2 encoder blocks, one UV upsampling (8 x 16 texels)
SMALL = dict(subdivisions=2, encoder_channels=(8, 16), code_dim=32, decoder_channels=(16,))


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    """Three CarWorld test images with their meshes (meshes/ID.glb), 64 px."""
    from assetgan.pipeline.carworld.generate import WorldRenderConfig
    from assetgan.pipeline.carworld.generate import run as render_world
    from assetgan.pipeline.carworld.split import WorldConfig

    out = tmp_path_factory.mktemp("world") / "bench"
    render_world(
        WorldRenderConfig(WorldConfig(split="bench", n=3, size=64, seed=5, meshes=True), out)
    )
    return out


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    torch.manual_seed(2)
    path = tmp_path_factory.mktemp("net") / "net.safetensors"
    return save_reconstructor(
        path, ReconstructNet(ReconstructNetConfig(**SMALL, uv_size=(8, 16))), info={"step": 0}
    )


def load_script():
    spec = importlib.util.spec_from_file_location("reconstruct_bench_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_truth_cameras_meshes_and_wheels_agree_with_the_split(split_dir):
    truth = load_truth(split_dir, None)
    data = truth.data
    # the orbit camera rebuilt from meta scene (azimuth + 0) is the image's own camera
    rebuilt = np.stack([c.mvp.numpy() for c in orbit_cameras(data.camera_params, 0.0, 64)])
    np.testing.assert_allclose(rebuilt, data.mvp, atol=2e-3)
    turned = orbit_cameras(data.camera_params, 90.0, 64)[0].eye.numpy()
    original = orbit_cameras(data.camera_params, 0.0, 64)[0].eye.numpy()
    ground = [0, 2]  # a quarter turn about the vertical through the target
    target = data.camera_params[0, 4:][ground]
    assert abs(np.dot(turned[ground] - target, original[ground] - target)) < 1e-3
    assert abs(turned[1] - original[1]) < 1e-4  # same elevation and distance
    for index, asset in enumerate(truth.meshes):
        length = np.ptp(asset.vertices[:, 2])
        assert 3.0 < length < 6.0  # metres, car along z (docs/conventions.md)
        # the wheel-centre rule applied to the truth mesh finds the true pivots
        centres, fallback = wheel_centres(asset)
        assert not fallback.any()
        error = np.linalg.norm(centres - truth.wheels[index], axis=1).max() / length
        assert error < 0.02, error
        np.testing.assert_allclose(asset.keypoints, truth.keypoints[index])


def test_surface_samples_and_chamfer():
    from assetgan.render.mesh import icosphere

    sphere = icosphere(2)
    vertices, faces = sphere.vertices.numpy() * np.array([1.0, 1.0, 2.0]), sphere.faces.numpy()
    rng = np.random.default_rng(0)
    a = surface_samples(vertices, faces, 500, rng)
    assert np.ptp(a[:, 2]) <= 1.0 + 1e-9 and np.ptp(a[:, 2]) > 0.95  # unit length along z
    assert np.abs(a.mean(0)).max() < 0.05  # centred
    b = surface_samples(vertices + 7.0, faces, 500, rng)  # moved: same after normalising
    assert chamfer_l2(a, a) < 1e-12
    assert chamfer_l2(a, b) < 0.01 < chamfer_l2(a, b * np.array([1.0, 2.0, 1.0]))


def test_run_scores_rows_and_writes_json_and_sheet(split_dir, model_path, tmp_path):
    config = ReconstructBenchConfig(
        split=split_dir,
        out=tmp_path / "bench",
        models=(("b", model_path),),
        sheet_cars=2,
        sheet_size=48,
        surface_samples=300,
        batch=2,
        device=Device.cpu,
    )
    result = run(config)
    figures = json.loads(result.json_path.read_text())
    assert figures == json.loads(json.dumps(result.figures))
    assert figures["images"] == 3 and set(figures["rows"]) == {"b", "c"}
    assert figures["frame_check"]["silhouette_iou"] > 0.97  # truth GLB in the label's frame
    for row in figures["rows"].values():
        for section in ("input_true_camera", "input_own_camera"):
            assert 0.0 <= row[section]["silhouette_iou"] <= 1.0
            assert set(row[section]) >= {"miou_car_5", "miou_car_12", "miou_car_20", "pck_0_1"}
        assert set(row["unseen"]) == {"az+45", "az+90", "az+135", "az+180", "mean"}
        assert row["3d"]["chamfer_l2"] > 0 and row["3d"]["keypoint_error_pct"] > 0
    template = figures["rows"]["c"]
    # the untrained network's template in the true camera covers much of each car (docs: 0.68)
    assert template["input_true_camera"]["silhouette_iou"] > 0.4
    # an untrained network's keypoints (all near the centroid) are far worse than the template's
    assert figures["rows"]["b"]["3d"]["keypoint_error_pct"] > template["3d"]["keypoint_error_pct"]
    sheet = np.asarray(__import__("PIL.Image").Image.open(result.sheet))
    columns = 1 + 4 * 3  # input | b x 4 | c x 4 | truth x 4
    assert sheet.shape[1] == columns * (48 + 2) + 2 and sheet.shape[0] == 2 * 2 * (48 + 2) + 2


def test_bad_inputs(split_dir, model_path, tmp_path, capsys):
    with pytest.raises(AssetganError, match="nothing to compare"):
        run(ReconstructBenchConfig(split=split_dir, out=tmp_path, template=False))
    with pytest.raises(AssetganError, match="no such file"):
        run(ReconstructBenchConfig(split=split_dir, out=tmp_path, models=(("a", tmp_path / "x"),)))
    script = load_script()
    assert script.main(["--split", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--model", "no-equals-sign", "--out", str(tmp_path)])


def test_script_prints_table_and_ends_with_json(split_dir, model_path, tmp_path, capsys):
    script = load_script()
    argv = ["--split", str(split_dir), "--model", f"b={model_path}", "--no-template"]
    argv += ["--out", str(tmp_path / "out"), "--n", "2", "--sheet-cars", "0"]
    assert script.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("b ") for line in lines)
    last = json.loads(lines[-1])
    assert last["images"] == 2 and list(last["rows"]) == ["b"]
    assert not (tmp_path / "out" / "turntables.png").exists()
