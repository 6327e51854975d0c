"""gan eval: car-aware generator metrics (Fréchet, precision/recall, part areas, identity)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from interpreter_fixtures import TINY, save_tiny_generator
from PIL import Image

from assetgan.assets.taxonomy import CAR_20, PART_ID
from assetgan.core.errors import AssetganError
from assetgan.core.metrics import frechet_distance, precision_recall
from assetgan.pipeline.downstream.checkpoint import save_segmenter
from assetgan.pipeline.downstream.model import Segmenter, SegmenterConfig
from assetgan.pipeline.quality.evaluate import (
    GanEvalConfig,
    GanEvalResult,
    Labelled,
    identity_scores,
    run,
    small_part_area,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_frechet_and_precision_recall_on_known_sets():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, b + 2.0) == pytest.approx(16.0, rel=0.15)  # |mu|^2 = 4 * 2^2
    assert precision_recall(a, a) == (1.0, 1.0)
    precision, recall = precision_recall(a, 0.05 * b)  # a tight clump in the middle of a
    assert precision == 1.0 and recall < 0.1
    with pytest.raises(AssetganError, match="same D"):
        frechet_distance(a, b[:, :3])


def test_identity_scores_see_paint_that_survives_views():
    contents, views = 4, 3
    colours = np.repeat(np.eye(4)[:, :3][:, None], views, 1) + 0.1  # one paint per content
    areas = np.zeros((contents * views, len(CAR_20)))
    kept = identity_scores(
        Labelled(np.zeros((12, 2)), areas, colours.reshape(-1, 3)), contents, views
    )
    assert kept["paint_identity"] == pytest.approx(1.0) and kept["paint_retrieval"] == 1.0
    shuffled = np.random.default_rng(1).permutation(colours.reshape(-1, 3))
    lost = identity_scores(Labelled(np.zeros((12, 2)), areas, shuffled), contents, views)
    assert lost["paint_identity"] < 0.7


def test_small_part_area_sums_the_small_parts():
    areas = np.zeros((2, len(CAR_20)))
    areas[:, PART_ID["mirror"]] = 0.01
    areas[:, PART_ID["door"]] = 0.5
    areas[1, PART_ID["tailLight"]] = 0.02
    assert small_part_area(areas) == pytest.approx(0.02)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    torch.manual_seed(0)
    save_segmenter(Segmenter(SegmenterConfig(channels=(4, 8))), root / "seg.safetensors")
    save_tiny_generator(root / "G.safetensors", TINY)
    rng = np.random.default_rng(0)
    (root / "reals/images").mkdir(parents=True)
    for index in range(16):
        picture = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(picture).save(root / f"reals/images/{index:06d}.png")
    return root


def test_run_without_cli_writes_a_result_that_loads_back(inputs):
    config = GanEvalConfig(
        generator=inputs / "G.safetensors",
        segmenter=inputs / "seg.safetensors",
        reals=inputs / "reals",
        out=inputs / "eval.json",
        n=8,
        contents=3,
        views=2,
        view_layers=1,
        device="cpu",
    )
    events = []
    result = run(config, events.append)
    assert events[-1].done == events[-1].total
    assert set(result.generated) >= {"seg_fd", "precision", "recall", "area_fd", "paint_identity"}
    assert all(np.isfinite(v) for k, v in result.floor.items())
    assert GanEvalResult.load(inputs / "eval.json") == result
    with pytest.raises(AssetganError, match="needs 40"):
        run(GanEvalConfig(**{**config.__dict__, "n": 20, "out": None}))


def test_bad_inputs_are_one_line_errors(inputs, tmp_path):
    base = dict(generator=inputs / "G.safetensors", reals=inputs / "reals", n=8, device="cpu")
    with pytest.raises(AssetganError, match="segmenter"):
        run(GanEvalConfig(segmenter=inputs / "G.safetensors", **base))
    with pytest.raises(AssetganError, match="view-layers"):
        run(GanEvalConfig(segmenter=inputs / "seg.safetensors", view_layers=99, **base))
    assert not Path(tmp_path / "eval.json").exists()


def test_cli_eval_prints_figures_and_refuses_a_bad_reals_dir(inputs, tmp_path):
    from typer.testing import CliRunner

    from assetgan.cli import app

    runner = CliRunner()
    args = [
        "gan",
        "eval",
        str(inputs / "G.safetensors"),
        "--segmenter",
        str(inputs / "seg.safetensors"),
    ]
    ok = runner.invoke(
        app, [*args, "--reals", str(inputs / "reals"), "--n", "8", "--view-layers", "1",
              "--device", "cpu", "--out", str(tmp_path / "e.json")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "seg_fd" in ok.output and (tmp_path / "e.json").is_file()
    bad = runner.invoke(app, [*args, "--reals", str(tmp_path), "--n", "8", "--device", "cpu"])
    assert bad.exit_code == 1 and "error:" in bad.output and "Traceback" not in bad.output


def test_snapshot_hook_puts_car_figures_beside_kid_in_metrics(inputs, tmp_path):
    from stylegan_fixtures import tiny_train_config, write_shape_folder

    from assetgan.pipeline.quality.evaluate import SnapshotCarMetric
    from assetgan.pipeline.stylegan import run_dir as runs
    from assetgan.pipeline.stylegan.train import run as train
    from assetgan.pipeline.stylegan.train import tick_message

    hook = SnapshotCarMetric(
        inputs / "reals", n=8, view_layers=1, segmenter=inputs / "seg.safetensors"
    )
    calls = []

    def counting(generator):
        calls.append(generator.training)
        return hook(generator)

    shapes = write_shape_folder(tmp_path / "shapes", count=24, size=16)
    result = train(tiny_train_config(shapes, tmp_path / "run"), snapshot_metrics=[counting])
    lines = runs.read_metrics(result.run_dir)
    snapshots = [line for line in lines if "kid" in line]
    assert len(calls) == len(snapshots) == 2
    for line in snapshots:
        assert np.isfinite(line["car_seg_fd"]) and line["car_seg_fd_floor"] > 0
        assert "car seg-FD" in tick_message(line)
    assert not any("car_seg_fd" in line for line in lines if "kid" not in line)
