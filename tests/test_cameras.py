"""Cameras without a human: the keypoint template, PnP (render/pnp.py) and the camera helpers
of pipeline/multiview/cameras.py."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from assetgan.assets.taxonomy import KEYPOINT_FLIP, KEYPOINT_ID, KEYPOINTS
from assetgan.commands.multiview import app
from assetgan.core.errors import AssetganError
from assetgan.pipeline.multiview.cameras import (
    camera_errors,
    draw_overlay,
    estimate_cameras,
    mean_cameras,
)
from assetgan.pipeline.multiview.template import (
    KeypointTemplate,
    TemplateConfig,
    load_shipped_template,
    run,
)
from assetgan.render.camera import Camera, orbit_camera
from assetgan.render.pnp import (
    PnPSettings,
    angle_difference,
    circular_median,
    expected_visible,
    keypoint_groups,
    rotation_error,
    solve_pnp,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SIZE = 64
FOV = 32.0


@pytest.fixture(scope="module")
def template() -> KeypointTemplate:
    return load_shipped_template()


def project(template: KeypointTemplate, camera: Camera) -> np.ndarray:
    """[K, 3] (x, y, v = 2) keypoints of the template seen by `camera`."""
    xy, _ = camera.project(torch.tensor(template.points_m(), dtype=torch.float32))
    return np.concatenate([xy.double().numpy(), np.full((len(xy), 1), 2.0)], axis=1)


def view_rotation(camera: Camera) -> np.ndarray:
    return camera.view[:3, :3].double().numpy()


def test_shipped_template_is_a_symmetric_car(template):
    points = template.points
    assert template.names == KEYPOINTS
    mirrored = points[list(KEYPOINT_FLIP)] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(points, mirrored, atol=1e-9)
    assert points[KEYPOINT_ID["left_front_wheel"], 0] > 0  # left is +X
    assert points[KEYPOINT_ID["left_front_light"], 2] == pytest.approx(0.5, abs=0.01)  # front +Z
    assert points[KEYPOINT_ID["left_back_trunk"], 2] == pytest.approx(-0.5, abs=0.01)
    assert (
        points[KEYPOINT_ID["upper_left_windshield"], 1] > points[KEYPOINT_ID["left_front_light"], 1]
    )
    assert 3.5 < template.mean_length < 5.5
    assert template.count >= 1000 and "multiview template" in template.command
    assert (template.visibility_accuracy > 0.8).all()


def test_visibility_model_sees_the_front_from_the_front(template):
    front = orbit_camera(0.0, 10.0, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE))
    rotation = view_rotation(front)[None]
    translation = front.view[:3, 3].double().numpy()[None]
    shown = expected_visible(rotation, translation, template.points_m(), template.visibility)[0]
    assert shown[KEYPOINT_ID["left_front_light"]] > 0.9
    assert shown[KEYPOINT_ID["left_back_trunk"]] < 0.1


@pytest.mark.parametrize("azimuth, elevation", [(40.0, 15.0), (200.0, 5.0), (300.0, 30.0)])
def test_pnp_recovers_an_exact_camera(template, azimuth, elevation):
    camera = orbit_camera(
        azimuth, elevation, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE), target=(0.1, 0.7, -0.2)
    )
    result = solve_pnp(project(template, camera), template.points_m(), (SIZE, SIZE))
    assert rotation_error(result.rotation, view_rotation(camera)) < 0.05
    assert angle_difference(result.azimuth, azimuth) < 0.05
    assert result.elevation == pytest.approx(elevation, abs=0.05)
    assert result.roll == pytest.approx(0.0, abs=1e-6)
    assert result.rms_error < 1e-3
    eye = result.camera.eye.double().numpy()
    np.testing.assert_allclose(eye, camera.eye.double().numpy(), atol=2e-3)
    rebuilt = orbit_camera(
        result.azimuth, result.elevation, result.distance, fov_y_deg=FOV, size=(SIZE, SIZE),
        target=tuple(result.target),
    )  # fmt: skip
    np.testing.assert_allclose(rebuilt.view.numpy(), camera.view.numpy(), atol=2e-3)


def test_pnp_any_rotation_recovers_a_rolled_camera(template):
    camera = orbit_camera(120.0, 20.0, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE))
    roll = np.radians(12.0)
    spin = np.eye(4)
    spin[:2, :2] = [[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]]
    rolled = Camera(torch.tensor(spin, dtype=torch.float32) @ camera.view, camera.proj, SIZE, SIZE)
    settings = PnPSettings(upright=False)
    result = solve_pnp(project(template, rolled), template.points_m(), (SIZE, SIZE), settings)
    assert rotation_error(result.rotation, view_rotation(rolled)) < 0.05
    assert abs(result.roll) == pytest.approx(12.0, abs=0.05)


def test_pnp_under_noise_and_outliers(template):
    rng = np.random.default_rng(0)
    errors = []
    for azimuth in (30.0, 110.0, 160.0, 250.0, 330.0):
        camera = orbit_camera(azimuth, 12.0, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE))
        keypoints = project(template, camera)
        keypoints[:, :2] += rng.normal(0.0, 0.7, (len(keypoints), 2))
        outliers = rng.choice(len(keypoints), 2, replace=False)
        keypoints[outliers, :2] = keypoints[outliers, :2] + rng.choice([-1, 1], (2, 2)) * 15.0
        result = solve_pnp(keypoints, template.points_m(), (SIZE, SIZE))
        assert not result.inliers[outliers].any()  # RANSAC set them aside
        errors.append(rotation_error(result.rotation, view_rotation(camera)))
    assert max(errors) < 5.0


def test_pnp_names_settle_the_mirror(template):
    camera = orbit_camera(60.0, 10.0, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE))
    keypoints = project(template, camera)
    assert (
        angle_difference(solve_pnp(keypoints, template.points_m(), (SIZE, SIZE)).azimuth, 60) < 0.1
    )
    # The mirror image: x flipped and the left/right names swapped, is the car seen from -60.
    mirrored = keypoints[list(KEYPOINT_FLIP)].copy()
    mirrored[:, 0] = SIZE - mirrored[:, 0]
    result = solve_pnp(mirrored, template.points_m(), (SIZE, SIZE))
    assert angle_difference(result.azimuth, 300.0) < 0.1


def test_pnp_takes_one_keypoint_of_a_duplicate(template):
    camera = orbit_camera(70.0, 15.0, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE))
    keypoints = project(template, camera)
    left, right = KEYPOINT_ID["left_front_wheel"], KEYPOINT_ID["right_front_wheel"]
    keypoints[right, :2] = keypoints[left, :2] + 0.3  # a detector fired twice on one wheel
    groups = keypoint_groups(keypoints, SIZE)
    assert len(groups) == len(KEYPOINTS) - 1
    result = solve_pnp(keypoints, template.points_m(), (SIZE, SIZE))
    assert result.inliers[left] and not result.inliers[right]
    assert rotation_error(result.rotation, view_rotation(camera)) < 0.5


def test_pnp_refuses_too_few_keypoints(template):
    camera = orbit_camera(45.0, 10.0, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE))
    keypoints = project(template, camera)
    keypoints[3:, 2] = 0
    with pytest.raises(AssetganError, match="at least 4 visible keypoints"):
        solve_pnp(keypoints, template.points_m(), (SIZE, SIZE))
    with pytest.raises(AssetganError, match=r"\[K, 3\]"):
        solve_pnp(keypoints[:5], template.points_m(), (SIZE, SIZE))
    results = estimate_cameras(keypoints[None], template.points_m(), (SIZE, SIZE))
    assert results == [None]
    errors = camera_errors(results, np.array([45.0]), np.array([10.0]), view_rotation(camera)[None])
    assert errors.summary()["solved"] == 0.0 and errors.summary()["azimuth_median"] == 180.0


def test_mean_of_cameras_per_view_code(template):
    assert circular_median([350.0, 10.0, 5.0, 0.0, 170.0]) == pytest.approx(5.0)
    keypoints, groups, azimuths = [], [], (350.0, 10.0, 4.0, 95.0, 100.0)
    for index, azimuth in enumerate(azimuths):
        camera = orbit_camera(azimuth, 10.0 + index, 9.0, fov_y_deg=FOV, size=(SIZE, SIZE))
        keypoints.append(project(template, camera))
        groups.append(0 if index < 3 else 1)
    keypoints.append(np.zeros((len(KEYPOINTS), 3)))  # no keypoints: no camera, not averaged
    groups.append(1)
    results = estimate_cameras(np.array(keypoints), template.points_m(), (SIZE, SIZE))
    means = mean_cameras(results, groups)
    assert angle_difference(means[0].azimuth, 4.0) < 0.1 and means[0].count == 3
    assert means[0].elevation == pytest.approx(11.0, abs=0.1)
    assert means[1].count == 2
    assert means[1].azimuth == pytest.approx(95.0, abs=0.1) or means[1].azimuth == pytest.approx(
        100.0, abs=0.1
    )
    camera = means[0].camera(FOV, (SIZE, SIZE))
    assert camera.width == SIZE and float(camera.eye[1]) > 0
    sheet = draw_overlay(
        np.zeros((SIZE, SIZE, 3), np.uint8), 2, [(keypoints[0][:, :2], (0, 255, 0))]
    )
    assert sheet.shape == (2 * SIZE, 2 * SIZE, 3) and sheet[..., 1].max() == 255


def test_template_round_trip_and_run(tmp_path, template):
    path = template.save(tmp_path / "copy.json")
    again = KeypointTemplate.load(path)
    np.testing.assert_allclose(again.points, template.points, atol=1e-6)
    np.testing.assert_allclose(again.visibility, template.visibility, atol=1e-6)
    assert again.mean_length == pytest.approx(template.mean_length, abs=1e-6)
    obj = json.loads(path.read_text())
    obj["schema_version"] = 99
    path.write_text(json.dumps(obj))
    with pytest.raises(AssetganError, match="schema_version"):
        KeypointTemplate.load(path)

    events = []
    small = run(TemplateConfig(out=tmp_path / "small", count=6, views=16, seed=3), events.append)
    assert (tmp_path / "small" / "template.json").is_file()
    assert "| left_front_wheel |" in (tmp_path / "small" / "README.md").read_text()
    assert small.count == 6 and small.views == 16 and events[-1].done == 16
    assert np.abs(small.points - template.points).max() < 0.1  # 6 cars: near the 2000-car mean
    again = run(replace(TemplateConfig(out=tmp_path / "again"), count=6, views=16, seed=3))
    np.testing.assert_array_equal(again.points, small.points)  # deterministic per seed


def test_template_command(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["template", "--count", "0", "--out", str(tmp_path / "t")])
    assert result.exit_code == 1
    assert "error: template count must be >= 1" in result.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(app, ["template", "--count", "2", "--views", "4", "--out", str(blocker)])
    assert result.exit_code == 1 and "is a file" in result.output
