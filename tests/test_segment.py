"""`assetgan segment` and assetgan.pipeline.downstream: data, flip, metrics, training, checkpoints,
the simulated annotator's predictor, each verb's run() from Python, and every command through
CliRunner."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from assetgan.assets.taxonomy import KEYPOINT_ID, KEYPOINTS, PART_ID
from assetgan.cli import app
from assetgan.core.batches import batch_indices
from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.pipeline.downstream.checkpoint import load_segmenter, save_segmenter
from assetgan.pipeline.downstream.data import (
    LabeledArrays,
    flip_x,
    gaussian_heatmaps,
    load_labeled,
)
from assetgan.pipeline.downstream.evaluate import SegmentEvalConfig, evaluate_predictions
from assetgan.pipeline.downstream.model import Architecture, Segmenter, SegmenterConfig
from assetgan.pipeline.downstream.predict import SegmentPredictConfig, decode_all, predict
from assetgan.pipeline.downstream.train import SegmentTrainConfig, fit, loss_terms, make_batch

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
TINY_MODEL = SegmenterConfig(channels=(8, 16, 24))


def tiny_train(data: Path, out: Path, **settings) -> SegmentTrainConfig:
    """The tiny training config of these tests (1 epoch of 8-image batches on the CPU)."""
    defaults = {"model": TINY_MODEL, "epochs": 1, "batch": 8, "warmup_steps": 2, "log_every": 1}
    return SegmentTrainConfig(data, out, device=Device.cpu, **{**defaults, **settings})


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    """A tiny CarWorld split rendered by the real generator (24 images, 64 px)."""
    from assetgan.pipeline.carworld.generate import WorldRenderConfig, run
    from assetgan.pipeline.carworld.split import WorldConfig

    out = tmp_path_factory.mktemp("world") / "tiny"
    run(WorldRenderConfig(WorldConfig(split="tiny", n=24, size=64, seed=3), out))
    return out


@pytest.fixture(scope="module")
def labeled(split_dir) -> LabeledArrays:
    return load_labeled(split_dir)


@pytest.fixture(scope="module")
def train_events(tmp_path_factory, split_dir) -> tuple:
    """(SegmentTrainResult, progress events) of `segment train` run from Python."""
    from assetgan.pipeline.downstream.train import run

    out = tmp_path_factory.mktemp("seg") / "run"
    events = []
    result = run(tiny_train(split_dir, out, val=split_dir), events.append)
    return result, events


@pytest.fixture(scope="module")
def trained(train_events) -> Path:
    return train_events[0].checkpoint


def _expect_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ---- data and augmentation ----------------------------------------------------------------------


def test_carworld_split_reads_with_keypoints(labeled, split_dir):
    from assetgan.pipeline.carworld.split import WorldSplit

    split = WorldSplit.load(split_dir)
    assert labeled.images.shape == (24, 64, 64, 3) and labeled.part_ids.shape == (24, 64, 64)
    assert (labeled.part_ids[5] == split.parts(5)).all()
    assert np.allclose(labeled.keypoints_xyv, split.keypoints())


def test_flip_swaps_left_and_right_keypoints_by_name():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (2, 8, 10, 3), dtype=np.uint8)
    parts = rng.integers(0, 20, (2, 8, 10), dtype=np.uint8)
    keypoints = np.zeros((2, len(KEYPOINTS), 3), np.float32)
    keypoints[:, :, 0] = np.arange(len(KEYPOINTS)) * 0.5 + 1.25
    keypoints[:, :, 1] = 3.0
    keypoints[:, :, 2] = 2
    keypoints[1, KEYPOINT_ID["right_back_trunk"], 2] = 0  # absent: location kept as is
    f_images, f_parts, f_keypoints = flip_x(images, parts, keypoints)
    assert (f_images[:, :, 0] == images[:, :, -1]).all() and (
        f_parts[:, :, 3] == parts[:, :, 6]
    ).all()
    for name in KEYPOINTS:
        mirror = name.replace("left", "@").replace("right", "left").replace("@", "right")
        a, b = KEYPOINT_ID[name], KEYPOINT_ID[mirror]
        assert mirror != name  # every car keypoint has a side
        assert f_keypoints[0, b, 0] == pytest.approx(10 - keypoints[0, a, 0])
    assert f_keypoints[1, KEYPOINT_ID["left_back_trunk"]].tolist() == [
        keypoints[1, KEYPOINT_ID["right_back_trunk"], 0], 3.0, 0.0
    ]  # fmt: skip
    again = flip_x(f_images, f_parts, f_keypoints)
    assert (again[0] == images).all() and np.allclose(again[2], keypoints)


def test_heatmaps_decode_back_to_sub_pixel_keypoints():
    keypoints = np.zeros((1, len(KEYPOINTS), 3), np.float32)
    keypoints[0, :, 0] = np.linspace(5.3, 40.8, len(KEYPOINTS))
    keypoints[0, :, 1] = np.linspace(30.6, 9.2, len(KEYPOINTS))
    keypoints[0, :, 2] = 2
    keypoints[0, 4, 2] = 1  # occluded: no target, decoded absent
    heat = gaussian_heatmaps(keypoints, 48, 48, sigma=1.5)
    assert heat[0, 4].max() == 0 and heat[0, 0].max() > 0.9
    decoded = decode_all(heat, threshold=0.5)
    visible = keypoints[0, :, 2] == 2
    assert np.abs(decoded[0, visible, :2] - keypoints[0, visible, :2]).max() < 0.15
    assert (decoded[0, visible, 2] == 2).all() and decoded[0, 4].tolist() == [0, 0, 0]


# ---- metrics --------------------------------------------------------------------------------------


def test_metrics_are_one_on_perfect_predictions(labeled):
    metrics = evaluate_predictions(
        labeled.part_ids, labeled.keypoints_xyv, labeled.part_ids, labeled.keypoints_xyv
    )
    for taxonomy in ("car_20", "car_12", "car_5"):
        assert metrics["segmentation"][taxonomy]["miou"] == 1.0
    assert (
        metrics["keypoints"]["pck@0.1"] == 1.0 and metrics["keypoints"]["visibility_accuracy"] == 1
    )


def test_metrics_on_a_hand_computed_corruption():
    truth = np.zeros((1, 4, 4), np.uint8)
    truth[0, :2, :2] = PART_ID["door"]  # 4 px
    truth[0, 2:, 2:] = PART_ID["handles"]  # 4 px
    truth[0, 0, 3] = 255  # ignored
    predicted = truth.copy()
    predicted[0, 0, 3] = PART_ID["roof"]  # on an ignored pixel: no effect
    predicted[0, 0, 0] = PART_ID["handles"]  # one door pixel called handle
    metrics = evaluate_predictions(truth, np.zeros((1, 12, 3)), predicted, np.zeros((1, 12, 3)))
    car_20 = metrics["segmentation"]["car_20"]["per_class_iou"]
    # door 3/4, handles 4/5, background 7/7, roof absent from truth and counted pixels: None
    assert car_20["door"] == 0.75 and car_20["handles"] == 0.8 and car_20["background"] == 1.0
    assert car_20["roof"] is None and car_20["tire"] is None
    assert metrics["segmentation"]["car_20"]["miou"] == pytest.approx((0.75 + 0.8 + 1) / 3)
    # car_5: door and handle are both "body" -> perfect
    assert metrics["segmentation"]["car_5"]["miou"] == 1.0
    # keypoints: bbox of the car = 4 px, threshold 0.4 px at alpha 0.1
    truth_kp = np.zeros((1, 12, 3))
    truth_kp[0, :4] = [[1, 1, 2], [2, 2, 2], [3, 3, 2], [1, 3, 1]]
    guess = truth_kp.copy()
    guess[0, 1, 0] += 0.3  # within 0.4
    guess[0, 2, 0] += 0.5  # too far
    guess[0, 0, 2] = 0  # called absent: a miss
    keypoints = evaluate_predictions(truth, truth_kp, predicted, guess)["keypoints"]
    assert keypoints["pck@0.1"] == pytest.approx(1 / 3)
    assert keypoints["visibility_accuracy"] == pytest.approx(11 / 12)  # only #0 flips


# ---- training and checkpoints ---------------------------------------------------------------------


def test_training_reduces_the_loss_and_is_deterministic(labeled, tmp_path):
    eight = dataclasses.replace(
        labeled, names=labeled.names[:8], images=labeled.images[:8],
        part_ids=labeled.part_ids[:8], keypoints_xyv=labeled.keypoints_xyv[:8],
    )  # fmt: skip
    config = tiny_train(labeled.root, tmp_path / "a", epochs=12, warmup_steps=1, lr=1e-2, flip=0)
    batch = make_batch(eight, *batch_indices(8, 8, 0, 0), config)  # the one batch of an epoch

    def total(model):
        with torch.no_grad():
            ce, heat = loss_terms(model.train(), batch, config)
        return float(ce + config.heatmap_weight * heat)

    torch.manual_seed(0)
    before = total(Segmenter(TINY_MODEL))
    first, _ = load_segmenter(fit(config, eight).checkpoint)
    second, _ = load_segmenter(
        fit(dataclasses.replace(config, out=tmp_path / "b"), eight).checkpoint
    )
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert total(first) < 0.9 * before  # 3.33 -> 2.88 when written (updates BN stats: last)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 12 and log[-1]["cross_entropy"] < log[0]["cross_entropy"]


def test_class_weights_favour_rare_parts_with_mean_one_per_pixel():
    from assetgan.pipeline.downstream.train import class_weights

    parts = np.zeros((1, 10, 10), np.uint8)
    parts[0, 0, :4] = PART_ID["handles"]  # 4 px
    parts[0, 1, :] = 255  # ignored
    weights = class_weights(parts, 20, 0.5).numpy()
    frequency = np.array([86, 4]) / 90
    assert weights[PART_ID["handles"]] / weights[0] == pytest.approx(np.sqrt(86 / 4), rel=1e-5)
    assert (frequency * weights[[0, PART_ID["handles"]]]).sum() == pytest.approx(1.0, rel=1e-5)
    assert weights[PART_ID["door"]] == 0 and class_weights(parts, 20, 0.0) is None


def test_rerun_resumes_and_another_config_is_refused(labeled, trained, tmp_path):
    import shutil

    run = Path(shutil.copytree(trained.parent, tmp_path / "run"))
    assert fit(tiny_train(labeled.root, run), labeled).steps == 3  # all epochs done: no more
    assert json.loads((run / "state.json").read_text())["step"] == 3
    with pytest.raises(AssetganError, match="another config"):
        fit(tiny_train(labeled.root, run, seed=1), labeled)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x.txt").write_text("x")
    with pytest.raises(AssetganError, match="not a segmenter training directory"):
        fit(tiny_train(labeled.root, tmp_path / "foreign"), labeled)


def test_checkpoint_round_trip_gives_identical_predictions(labeled, trained, tmp_path):
    model, info = load_segmenter(trained)
    assert info["steps"] == 3 and info["val_miou_car_20"] is not None
    parts, keypoints = predict(model, labeled.images[:4])
    again, _ = load_segmenter(save_segmenter(model, tmp_path / "copy.safetensors"))
    parts2, keypoints2 = predict(again, labeled.images[:4])
    assert (parts == parts2).all() and np.array_equal(keypoints, keypoints2)
    half, _ = load_segmenter(save_segmenter(model, tmp_path / "half.safetensors", fp16=True))
    assert next(half.parameters()).dtype == torch.float32
    assert (predict(half, labeled.images[:4])[0] == parts).mean() > 0.95
    odd = predict(model, labeled.images[:2, :37, :45])  # any input size
    assert odd[0].shape == (2, 37, 45) and odd[1].shape == (2, 12, 3)


def test_bad_checkpoints_are_one_line_errors(tmp_path, trained):
    from assetgan.core.checkpoint import save_tensors

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(AssetganError, match="not a readable safetensors"):
        load_segmenter(garbage)
    foreign = save_tensors(
        tmp_path / "f.safetensors", {"x": torch.zeros(2)}, {"assetgan_kind": "x"}
    )
    with pytest.raises(AssetganError, match="not a segmenter checkpoint"):
        load_segmenter(foreign)
    with pytest.raises(AssetganError, match="no such segmenter checkpoint"):
        load_segmenter(tmp_path / "missing")


def test_generated_dataset_format_reads_kept_samples(tmp_path):
    from assetgan.pipeline.datasets.layout import DatasetConfig, GeneratedDataset

    root = tmp_path / "ds"
    for sub in ("images", "parts", "meta"):
        (root / sub).mkdir(parents=True)
    GeneratedDataset(
        root, DatasetConfig(n=3), "g" * 64, "i" * 64, "car_20", ("background",), KEYPOINTS,
        (16, 16), 3,
    ).save()  # fmt: skip
    lines = []
    for seed in range(3):
        name = f"{seed:08d}"
        Image.fromarray(np.full((16, 16, 3), seed * 40, np.uint8)).save(root / f"images/{name}.png")
        Image.fromarray(np.full((16, 16), seed + 1, np.uint8)).save(root / f"parts/{name}.png")
        xyv = [[float(seed), 2.0, 2]] * 12
        (root / f"meta/{name}.json").write_text(json.dumps({"keypoints": {"xyv": xyv}}))
        files = {"image": f"images/{name}.png", "parts": f"parts/{name}.png"}
        record = {"id": name, "seed": seed, "score": 0.1 * seed, "kept": seed != 1, **files}
        lines.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    data = load_labeled(root)
    assert data.kind == "generated_dataset" and data.names == ("00000000", "00000002")
    assert data.part_ids[1, 0, 0] == 3 and data.keypoints_xyv[1, 0].tolist() == [2.0, 2.0, 2.0]


# ---- the simulated annotator ----------------------------------------------------------------------


def test_predictor_is_found_from_the_checkpoint_kind(trained, labeled):
    from assetgan.pipeline.annotate.simulate import load_predictor

    predictor = load_predictor(trained, "cpu")
    parts, keypoints = predictor(labeled.images[:3])
    model, _ = load_segmenter(trained)
    expected = predict(model, labeled.images[:3])
    assert (parts == expected[0]).all() and np.array_equal(keypoints, expected[1])
    assert parts.dtype == np.uint8 and keypoints.shape == (3, 12, 3)


def test_annotate_simulate_end_to_end_with_the_real_segmenter(tmp_path, trained):
    from assetgan.pipeline.annotations import AnnotationSet
    from assetgan.pipeline.stylegan.checkpoint import save_generator
    from assetgan.pipeline.stylegan.config import GeneratorConfig
    from assetgan.pipeline.stylegan.networks import Generator

    torch.manual_seed(0)
    config = GeneratorConfig(resolution=16, z_dim=16, w_dim=24, mapping_layers=2,
                             channels=(32, 16, 8))  # fmt: skip
    generator = save_generator(Generator(config).eval(), tmp_path / "G.safetensors")
    # The tiny model labels a random generator's images all background (nothing to draw), so
    # its head is biased: car_body everywhere, left_front_wheel visible somewhere.
    model, info = load_segmenter(trained)
    with torch.no_grad():
        model.net.head.bias[PART_ID["car_body"]] += 50.0
        model.net.head.bias[model.config.num_classes + KEYPOINT_ID["left_front_wheel"]] += 5.0
    segmenter = save_segmenter(model, tmp_path / "seg.safetensors", info=info)
    out = tmp_path / "set"
    result = runner.invoke(
        app,
        ["annotate", "simulate", "-g", str(generator), "--segmenter", str(segmenter), "--n", "2",
         "--out", str(out), "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    samples = AnnotationSet.load(out).samples
    assert len(samples) == 2 and (samples[0].part_ids == PART_ID["car_body"]).mean() > 0.9
    assert samples[0].keypoints_xyv[KEYPOINT_ID["left_front_wheel"], 2] == 2
    report = json.loads((out / "simulate.json").read_text())
    assert report["mean_pixel_accuracy"] > 0.9 and len(report["samples"]) == 2


# ---- the verbs from Python ------------------------------------------------------------------------


def test_train_run_reads_trains_and_reports(train_events, split_dir):
    result, events = train_events
    out = result.checkpoint.parent
    assert (result.images, result.steps, result.epochs) == (24, 3, 1.0)
    assert result.val_metrics == out / "val_metrics.json"
    metrics = json.loads(result.val_metrics.read_text())
    assert result.val_scores.miou_car_20 == metrics["segmentation"]["car_20"]["miou"]
    assert result.val_scores.pck_0_1 == metrics["keypoints"]["pck@0.1"]
    _, info = load_segmenter(result.checkpoint)
    assert info["data"] == str(split_dir) and info["visible_threshold"] == result.visible_threshold
    assert set(info["train"]) == set(json.loads((out / "config.json").read_text()))
    assert "data" not in info["train"] and info["train"]["model"]["architecture"] == "unet"
    tasks = [e.task for e in events]
    assert tasks.count("reading tiny") == 2  # train and val sets
    steps = [e for e in events if e.task == "training (steps)"]
    assert [e.done for e in steps] == [1, 2, 3] and steps[-1].total == 3
    assert set(steps[-1].metrics) == {"cross_entropy", "heatmap_mse"}


def test_architecture_is_a_str_enum_in_the_json():
    config = SegmenterConfig(architecture="lraspp")
    assert config.architecture is Architecture.lraspp
    assert json.dumps(config.to_dict()["architecture"]) == '"lraspp"'
    assert SegmenterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(AssetganError, match="not one of"):
        SegmenterConfig(architecture="resnet")


def test_eval_run_writes_metrics_and_sheet(trained, split_dir, labeled, tmp_path):
    from assetgan.pipeline.downstream.evaluate import run

    config = SegmentEvalConfig(
        trained, split_dir, tmp_path / "m.json", tmp_path / "s.png", 2, Device.cpu
    )
    result = run(config)
    metrics = json.loads(result.metrics.read_text())
    model, _ = load_segmenter(trained)
    expected = evaluate_predictions(
        labeled.part_ids, labeled.keypoints_xyv, *predict(model, labeled.images)
    )
    assert metrics["segmentation"] == json.loads(json.dumps(expected["segmentation"]))
    assert metrics["model"] == str(trained) and result.images == 24
    assert result.scores.miou_car_5 == metrics["segmentation"]["car_5"]["miou"]
    assert Image.open(result.sheet).size == (2 + 6 * (64 * 4 + 2), 2 + 1 * (64 * 4 + 2))
    with pytest.raises(AssetganError, match="--sheet-count"):
        run(dataclasses.replace(config, sheet_count=0))


def test_predict_run_labels_a_folder(trained, labeled, tmp_path):
    from assetgan.pipeline.downstream.predict import run

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(labeled.images[0]).save(folder / "b.png")
    Image.fromarray(labeled.images[1, :40, :52]).save(folder / "a.PNG")  # any size
    (folder / "notes.txt").write_text("not an image")
    events = []
    result = run(SegmentPredictConfig(trained, folder, tmp_path / "out", Device.cpu), events.append)
    assert result.names == ("a", "b") and [e.done for e in events] == [1, 2]
    model, _ = load_segmenter(trained)
    parts, keypoints = predict(model, labeled.images[:1])
    assert (np.asarray(Image.open(tmp_path / "out" / "b.png")) == parts[0]).all()
    labels = json.loads((tmp_path / "out" / "b.json").read_text())["keypoints"]
    assert [labels[name] for name in KEYPOINTS] == keypoints[0].tolist()
    assert np.asarray(Image.open(tmp_path / "out" / "a.png")).shape == (40, 52)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AssetganError, match="no .png/.jpg"):
        run(SegmentPredictConfig(trained, tmp_path / "empty", tmp_path / "out2"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AssetganError, match="not a readable image"):
        run(SegmentPredictConfig(trained, tmp_path / "broken.png", tmp_path / "out2"))


# ---- CLI -----------------------------------------------------------------------------------------


def test_cli_train_eval_predict(tmp_path, split_dir):
    out = tmp_path / "run"
    args = ["segment", "train", "--data", str(split_dir), "--val", str(split_dir), "--epochs", "1"]
    result = runner.invoke(
        app, [*args, "--batch", "8", "--channels", "8,16", "--out", str(out), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "mIoU car_20" in result.output and (out / "segmenter.safetensors").is_file()
    metrics_path, sheet = tmp_path / "m.json", tmp_path / "sheet.png"
    result = runner.invoke(
        app,
        ["segment", "eval", "--model", str(out), "--data", str(split_dir), "--out",
         str(metrics_path), "--sheet", str(sheet), "--sheet-count", "4", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(metrics_path.read_text())
    assert metrics["images"] == 24 and 0 <= metrics["segmentation"]["car_5"]["miou"] <= 1
    assert Image.open(sheet).size == (2 + 6 * (64 * 4 + 2), 2 + 2 * (64 * 4 + 2))
    result = runner.invoke(
        app,
        ["segment", "predict", "--model", str(out), str(split_dir / "images" / "000001.png"),
         "--out", str(tmp_path / "pred"), "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "pred" / "000001.png")).shape == (64, 64)
    assert set(json.loads((tmp_path / "pred" / "000001.json").read_text())["keypoints"]) == set(
        KEYPOINTS
    )


def test_cli_errors_are_one_line(tmp_path, split_dir, trained):
    train_args = ["segment", "train", "--epochs", "1", "--out", str(tmp_path / "o")]
    _expect_error(runner.invoke(app, [*train_args, "--data", str(tmp_path / "nowhere")]), "nowhere")
    (tmp_path / "foreign").mkdir()
    _expect_error(runner.invoke(app, [*train_args, "--data", str(tmp_path / "foreign")]), "neither")
    _expect_error(
        runner.invoke(app, ["segment", "train", "--data", str(split_dir), "--out", "x"]),
        "--epochs or --minutes",
    )
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"junk")
    eval_args = ["--data", str(split_dir), "--out", str(tmp_path / "m.json")]
    _expect_error(
        runner.invoke(app, ["segment", "eval", "--model", str(bad), *eval_args]), "bad.safetensors"
    )
    predict_args = ["segment", "predict", "--model", str(trained), "--out", str(tmp_path / "p")]
    _expect_error(runner.invoke(app, [*predict_args, str(tmp_path / "none")]), "no such file")
    assert math.isfinite(json.loads((trained.parent / "val_metrics.json").read_text())["images"])
