"""report paper (pipeline/paper): the --quick report end to end through the CLI, re-run skipping,
the snapshot trainer against downstream.fit, the fold protocol, the step runner, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from assetgan.assets.taxonomy import CAR_20, KEYPOINTS
from assetgan.cli import app
from assetgan.core.hashing import file_sha256
from assetgan.core.steps import StepRunner
from assetgan.pipeline.downstream.checkpoint import load_segmenter
from assetgan.pipeline.downstream.config import SegmenterConfig
from assetgan.pipeline.downstream.data import LabeledArrays
from assetgan.pipeline.downstream.train import SegmentTrainConfig, fit
from assetgan.pipeline.paper import report
from assetgan.pipeline.paper.config import (
    QUICK_SIZES,
    SHIPPED_GENERATOR,
    PaperReportConfig,
    PaperSizes,
)
from assetgan.pipeline.paper.protocol import (
    choose_and_report,
    fold_slices,
    snapshot_steps,
    train_with_snapshots,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
PLOTS = ("table1.png", "table3_pairs.png", "table4_filtering.png", "figure6_annotations.png")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory) -> Path:
    """`assetgan report paper --quick` once for the module (about half a minute)."""
    out = tmp_path_factory.mktemp("paper") / "report"
    result = runner.invoke(
        app, ["report", "paper", "--quick", "--out", str(out), "--device", "cpu", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "ours / full car_5 mIoU, in-domain" in result.output
    return out


def test_quick_report_writes_every_file(quick_report):
    for name in ("report.md", "report.json", *PLOTS):
        assert (quick_report / name).stat().st_size > 100, name
    record = json.loads((quick_report / "report.json").read_text())
    assert PaperSizes.from_dict(record["config"]["sizes"]) == QUICK_SIZES
    assert set(record["rows"]) == {"few", "full", "ours_datasetgan", "ours_handsoff"}
    assert record["rows"]["few"]["images"] == QUICK_SIZES.few_images
    assert record["rows"]["full"]["images"] == QUICK_SIZES.full_images
    drop = round(QUICK_SIZES.drop * QUICK_SIZES.pairs)  # the most uncertain pairs left out
    assert record["rows"]["ours_datasetgan"]["images"] == QUICK_SIZES.pairs - drop
    assert record["table4"]["0.0"]["images"] == QUICK_SIZES.pairs
    for row in record["rows"].values():  # the protocol's figures for both test splits
        for split in ("in_domain", "shifted"):
            protocol = row["protocol"][split]
            assert protocol["snapshot"] in snapshot_steps(
                QUICK_SIZES.segment_steps, QUICK_SIZES.snapshots
            )
            assert 0 <= protocol["mean"]["miou_car_20"] <= 1
            assert protocol["std"]["miou_car_5"] >= 0
    assert [t["goal"] for t in record["targets"]] == [0.97, 1.0, 0.2, 0.75]
    assert set(record["table6"]) == {"random", "active"}
    assert record["table6"]["active"].keys() == {str(k) for k in QUICK_SIZES.annotation_counts}
    assert record["full_protocol_estimate"]["total_hours"] > 0
    probe = record["evidence"]["keypoints"]
    assert set(probe["decoded"]) == {"0.75", "0.3", "0"}  # the interpreter's threshold and lower
    everything = probe["decoded"]["0"]  # every peak counts: all 12 keypoints visible
    assert everything["visible_per_image"] == 12 and probe["real_visible_per_image"] > 0
    sha = file_sha256(SHIPPED_GENERATOR)  # a new generator recomputes exactly these steps
    settings = {name: json.dumps(step["settings"]) for name, step in record["steps"].items()}
    uses_generator = {name for name, text in settings.items() if "generator_sha256" in text}
    assert all(sha in settings[name] for name in uses_generator)
    assert "dataset_simulated" in uses_generator and "seg_handsoff_n8_drop25" in uses_generator
    assert not uses_generator & {"world_train", "world_test", "seg_few", "seg_full"}
    steps = quick_report / "steps"
    for name, step in record["steps"].items():
        assert (steps / name / "step.json").is_file() and step["seconds"] >= 0
    assert not list(steps.glob(".*.tmp"))  # every temp folder renamed
    scores = json.loads((steps / "seg_few" / "scores.json").read_text())
    assert len(scores["shifted"][str(QUICK_SIZES.segment_steps)]) == QUICK_SIZES.folds
    text = (quick_report / "report.md").read_text()
    for part in ("## Table 1", "## Targets", "## What limits ours", "## Table 6", "ANCHORS.md"):
        assert part in text


def test_rerun_skips_finished_steps(quick_report):
    before = {p: p.stat().st_mtime_ns for p in (quick_report / "steps").glob("*/step.json")}
    config = PaperReportConfig(out=quick_report, sizes=QUICK_SIZES, device="cpu")
    result = report.run(config)
    assert result.steps_run == ()
    assert len(result.steps_skipped) == len(before)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert result.report_md.is_file() and len(result.plots) == len(PLOTS)
    assert result.steps_replaced == ()


def _arrays(count: int, size: int = 16) -> LabeledArrays:
    rng = np.random.default_rng(0)
    keypoints = np.zeros((count, len(KEYPOINTS), 3), np.float32)
    keypoints[..., :2] = rng.uniform(1, size - 1, (count, len(KEYPOINTS), 2))
    keypoints[..., 2] = rng.choice([0, 2], (count, len(KEYPOINTS)))
    return LabeledArrays(
        Path("synthetic"),
        "carworld_split",
        tuple(f"{i:06d}" for i in range(count)),
        rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8),
        rng.integers(0, len(CAR_20), (count, size, size), dtype=np.uint8),
        keypoints,
    )


def test_snapshot_trainer_matches_fit(tmp_path):
    data = _arrays(8)
    config = SegmentTrainConfig(
        data=Path("-"),
        out=tmp_path / "fit",
        device="cpu",
        model=SegmenterConfig(channels=(4, 8)),
        epochs=3,
        batch=4,
        class_weight_power=0.5,
        warmup_steps=2,
    )
    seen = []
    model = train_with_snapshots(config, data, (2, 6), lambda s, m: seen.append((s, m.training)))
    assert seen == [(2, False), (6, False)]  # eval mode, at the asked steps
    reference, _ = load_segmenter(fit(config, data).checkpoint)
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    assert model.config.visible_threshold == reference.config.visible_threshold


def test_protocol_chooses_on_fold_zero_and_reports_the_others():
    def folds(values):
        return [{"miou_car_20": v, "miou_car_12": v, "miou_car_5": v, "pck@0.05": None,
                 "pck@0.1": v} for v in values]  # fmt: skip

    summary = choose_and_report({"10": folds([0.5, 0.9, 0.9, 0.9, 0.9]), "20": folds([0.6, 0.1,
                                 0.2, 0.3, 0.4])})  # fmt: skip
    assert summary["snapshot"] == 20 and summary["choose_fold_score"] == 0.6
    assert summary["mean"]["miou_car_20"] == pytest.approx(0.25)
    assert summary["std"]["miou_car_20"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1))
    assert summary["mean"]["pck@0.05"] is None
    assert [len(f) for f in fold_slices(12, 5)] == [3, 3, 2, 2, 2]
    assert snapshot_steps(1200, 4) == (300, 600, 900, 1200)


def test_step_runner_is_atomic_and_checks_settings(tmp_path):
    steps = StepRunner(tmp_path)
    (tmp_path / ".a.tmp").mkdir()
    (tmp_path / ".a.tmp" / "stale").write_text("from a killed run")

    def body(folder: Path) -> dict:
        assert not (folder / "stale").exists()
        (folder / "x.txt").write_text("done")
        return {"value": 1}

    assert steps.run("a", {"k": Path("p")}, body) == tmp_path / "a"
    assert steps.run("a", {"k": Path("p")}, pytest.fail) == tmp_path / "a"  # skipped
    assert steps.ran == ["a"] and steps.records["a"]["summary"] == {"value": 1}
    again = StepRunner(tmp_path)  # other settings (a new generator, say): computed again
    (tmp_path / "a" / "x.txt").write_text("old")
    again.run("a", {"k": "q"}, body)
    assert again.replaced == ["a"] and (tmp_path / "a" / "x.txt").read_text() == "done"
    assert again.records["a"]["settings"] == {"k": "q"}

    def killed(folder: Path) -> dict:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        steps.run("b", {}, killed)
    assert not (tmp_path / "b").exists() and (tmp_path / ".b.tmp").is_dir()


def test_cli_bad_inputs(tmp_path):
    result = runner.invoke(
        app, ["report", "paper", "--quick", "--out", str(tmp_path / "r"), "--train", str(tmp_path)]
    )
    assert result.exit_code == 1 and "not a CarWorld split" in result.output
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({"segment_stepz": 3}))
    result = runner.invoke(
        app, ["report", "paper", "--out", str(tmp_path / "r"), "--sizes", str(sizes)]
    )
    assert result.exit_code == 1 and "unknown fields ['segment_stepz']" in result.output
    sizes.write_text(json.dumps({"segment_batch": 32, "few_images": 16}))
    result = runner.invoke(
        app, ["report", "paper", "--out", str(tmp_path / "r"), "--sizes", str(sizes)]
    )
    assert result.exit_code == 1 and "segment_batch 32" in result.output
    assert not (tmp_path / "r").exists()
