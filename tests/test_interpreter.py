"""Style Interpreter: factorised == materialised, label math, early stopping, training, checkpoint,
and the `interpreter` commands."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from interpreter_fixtures import (
    TINY,
    TINY_CROP,
    save_tiny_generator,
    tiny_generator,
    toy_annotations,
)
from typer.testing import CliRunner

from assetgan.cli import app
from assetgan.core.errors import AssetganError
from assetgan.pipeline.annotations import AnnotationSet
from assetgan.pipeline.interpreter.checkpoint import load_interpreter, save_interpreter
from assetgan.pipeline.interpreter.checks import check_generator_match
from assetgan.pipeline.interpreter.config import (
    FeatureDtype,
    InterpreterTrainConfig,
    InterpreterTrainSettings,
)
from assetgan.pipeline.interpreter.features import (
    MaterialisedFeatureStore,
    NativeFeatureStore,
    bilinear_source,
    materialise,
    upsample_rows,
)
from assetgan.pipeline.interpreter.model import (
    PixelEnsemble,
    forward_maps,
    forward_maps_materialised,
)
from assetgan.pipeline.interpreter.predict import (
    decode_keypoints,
    image_score,
    js_uncertainty,
    majority_vote,
    predict,
)
from assetgan.pipeline.interpreter.train import (
    generator_geometry,
    reset_small_classes,
    train,
    train_head,
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops are dominated by thread hand-offs on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _features(config, batch=2, seed=0):
    generator = tiny_generator(config, seed)
    ws = generator.mapping(
        torch.randn(batch, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    )
    _images, features = generator.synthesis(ws, noise_mode="const", return_features=True)
    return generator, features


def _randomise_eval(ensemble: PixelEnsemble, seed: int) -> PixelEnsemble:
    """Non-trivial weights and BatchNorm statistics, eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        ensemble.w1.mul_(50)
        for bn in (ensemble.bn1, ensemble.bn2):
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=gen))
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=gen) + 0.5)
            bn.weight.copy_(torch.randn(bn.weight.shape, generator=gen))
            bn.bias.copy_(torch.randn(bn.bias.shape, generator=gen))
    return ensemble.eval()


def test_bilinear_source_is_pytorch_interpolate():
    line = torch.randn(1, 1, 1, 8)
    for out_size in (8, 16, 32):
        i0, i1, lam = bilinear_source(torch.arange(out_size), out_size, 8)
        ours = line[0, 0, 0, i0] * (1 - lam) + line[0, 0, 0, i1] * lam
        theirs = F.interpolate(line, size=(1, out_size), mode="bilinear", align_corners=False)
        torch.testing.assert_close(ours, theirs[0, 0, 0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("res", [1, 2, 4, 8])
def test_upsample_rows_is_pytorch_interpolate(res):
    maps = torch.randn(2, 3, res, res)
    expected = F.interpolate(maps, size=(16, 16), mode="bilinear", align_corners=False)
    rows = torch.tensor([0, 5, 6, 15])
    torch.testing.assert_close(
        upsample_rows(maps, 16, rows), expected[:, :, rows], rtol=0, atol=1e-6
    )


def test_folded_channels_first_head_equals_training_head_in_eval_mode():
    ensemble = _randomise_eval(
        PixelEnsemble(3, 7, 5, generator=torch.Generator().manual_seed(0)), 1
    )
    with torch.no_grad():
        ensemble.w2.mul_(20)
        ensemble.w3.mul_(20)
    h1 = torch.randn(3, 11, ensemble.hidden[0])  # [N, P, h1]
    expected = ensemble.head(h1)  # [N, P, K]
    fast = ensemble.head_channels_first(h1.transpose(1, 2).clone())  # [N, K, P]
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(fast.transpose(1, 2), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("config", [TINY, TINY_CROP], ids=["square", "crop_rows"])
def test_gather_equals_materialised_features(config):
    generator, features = _features(config)
    geometry = generator_geometry(generator)
    dense = materialise(geometry, features)  # [B, C, H, W]
    height, width = geometry.image_size
    assert dense.shape == (2, geometry.channels, height, width)
    store = NativeFeatureStore(geometry, 2, dtype=torch.float32)
    store.add(features)
    gen = torch.Generator().manual_seed(1)
    image = torch.randint(0, 2, (400,), generator=gen)
    row = torch.randint(0, height, (400,), generator=gen)
    col = torch.randint(0, width, (400,), generator=gen)
    torch.testing.assert_close(
        store.gather(image, row, col), dense[image, :, row, col], rtol=0, atol=1e-5
    )
    reference = MaterialisedFeatureStore(geometry, dtype=torch.float32)
    reference.add(features)
    assert store.nbytes() < reference.nbytes()


@pytest.mark.parametrize("config", [TINY, TINY_CROP], ids=["square", "crop_rows"])
def test_factorised_forward_equals_materialised(config):
    generator, features = _features(config)
    geometry = generator_geometry(generator)
    gen = torch.Generator().manual_seed(3)
    parts = _randomise_eval(PixelEnsemble(3, geometry.channels, 6, generator=gen), 4)
    heat = _randomise_eval(PixelEnsemble(2, geometry.channels, 12, generator=gen), 5)
    reference = forward_maps_materialised([parts, heat], geometry, features)
    for gemm_max_res, members_per_tile in ((0, 1), (8, 2), (32, 3)):  # elementwise/GEMM mixes
        bands = [[], []]
        for _row0, _row1, outputs in forward_maps(
            [parts, heat], geometry, features, 5, members_per_tile, gemm_max_res
        ):
            for idx, out in enumerate(outputs):
                bands[idx].append(out)
        for ref, fast in zip(reference, bands, strict=True):
            fast = torch.cat(fast, dim=3)
            assert fast.shape == ref.shape and ref.abs().max() > 0.1
            torch.testing.assert_close(fast, ref, rtol=0, atol=1e-5)


def test_majority_vote_and_ties():
    labels = torch.tensor([[0, 1, 2, 3], [1, 1, 2, 0], [1, 2, 0, 3], [4, 2, 0, 0]])  # [N=4, 4 px]
    assert majority_vote(labels, 5).tolist() == [1, 1, 0, 0]  # px2: 2 vs 2 -> 0; px3: 0,3 tie -> 0


def test_js_uncertainty_hand_made():
    agree = torch.tensor([[0.7, 0.2, 0.1]] * 4).reshape(4, 3, 1)  # [N, K, pixels]
    assert js_uncertainty(agree).item() == pytest.approx(0.0, abs=1e-7)
    split = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 2, 1)
    assert js_uncertainty(split).item() == pytest.approx(math.log(2), abs=1e-6)
    mixed = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).reshape(2, 2, 1)

    def entropy(p):
        return -sum(x * math.log(x) for x in p)

    expected = entropy([0.7, 0.3]) - 0.5 * (entropy([0.5, 0.5]) + entropy([0.9, 0.1]))
    assert js_uncertainty(mixed).item() == pytest.approx(expected, abs=1e-6)


def test_image_score_is_mean_of_top_tenth():
    js = np.arange(100, dtype=np.float32).reshape(10, 10)
    assert image_score(js) == pytest.approx(np.mean(np.arange(90, 100)))
    assert image_score(np.array([[3.0, 1.0]])) == pytest.approx(3.0)  # at least one pixel


def test_decode_keypoints_sub_pixel_and_visibility():
    ys, xs = np.mgrid[0:24, 0:32] + 0.5
    heat = np.zeros((3, 24, 32), np.float32)
    heat[0] = np.exp(-((xs - 10.3) ** 2 + (ys - 7.8) ** 2) / (2 * 2.0**2))
    heat[1] = 0.5 * np.exp(-((xs - 20.6) ** 2 + (ys - 15.2) ** 2) / (2 * 2.0**2))
    heat[2] = 0.05
    found = decode_keypoints(heat, visible_min=0.75, present_min=0.25)
    assert found[0, 2] == 2 and abs(found[0, 0] - 10.3) < 0.1 and abs(found[0, 1] - 7.8) < 0.1
    assert found[1, 2] == 1 and abs(found[1, 0] - 20.6) < 0.1 and abs(found[1, 1] - 15.2) < 0.1
    assert found[2].tolist()[:3] == [0, 0, 0]


def test_reset_small_classes():
    mask = np.zeros((10, 10), np.uint8)
    mask[:5] = 3  # 50 px kept
    mask[9, :4] = 7  # 4 px -> background
    mask[8, :2] = 255  # ignore kept
    out = reset_small_classes(mask, 30)
    assert (out[:5] == 3).all() and (out[9, :4] == 0).all() and (out[8, :2] == 255).all()


class _ScriptedLoss:
    """Member 0's loss falls every call (never stops); member 1's is constant (stops)."""

    def __init__(self):
        self.calls = 0

    def __call__(self, out, ids):
        self.calls += 1
        values = torch.tensor([1.0 / self.calls, 1.0])
        mean = out.mean(dim=(1, 2))
        return values + mean - mean.detach()  # scripted values, real gradients


def _scripted_run(max_iterations=None):
    generator, features = _features(TINY, batch=1)
    geometry = generator_geometry(generator)
    store = NativeFeatureStore(geometry, 1, dtype=torch.float32)
    store.add(features)
    ensemble = PixelEnsemble(2, geometry.channels, 3, generator=torch.Generator().manual_seed(0))
    config = InterpreterTrainSettings(
        members=2, batch_pixels=10, max_epochs=8, patience=5, max_iterations=max_iterations
    )
    summary = train_head(ensemble, store, torch.arange(20), _ScriptedLoss(), config, 0, "parts")
    return ensemble, summary


def test_early_stopping_follows_the_paper_and_freezes_stopped_members():
    ensemble, summary = _scripted_run()
    # 2 steps per epoch; counting starts in epoch 4 (iteration 9 sets the minimum), and a member
    # stops once its loss has set no new minimum for more than `patience` = 5 iterations.
    assert summary["steps_per_epoch"] == 2
    assert summary["members"][1]["iteration"] == 9 + 5 + 1
    assert summary["iterations"] == 16  # member 0 never stops: all 8 epochs
    frozen, _ = _scripted_run(max_iterations=15)
    for name, value in ensemble.state_dict().items():
        torch.testing.assert_close(value[1], frozen.state_dict()[name][1], rtol=0, atol=0)
    assert not torch.equal(ensemble.w1[0], frozen.w1[0])  # member 0 kept training


def test_native_and_materialised_training_batches_give_the_same_gradients():
    generator, features = _features(TINY_CROP, batch=3)
    geometry = generator_geometry(generator)
    stores = [
        NativeFeatureStore(geometry, 3, torch.float32),
        MaterialisedFeatureStore(geometry, torch.float32),
    ]
    gen = torch.Generator().manual_seed(2)
    height, width = geometry.image_size
    ids = torch.randint(0, 3 * height * width, (2, 64), generator=gen)
    target = torch.randint(0, 5, (2, 64), generator=gen)
    grads = []
    for store in stores:
        store.add(features)
        ensemble = PixelEnsemble(
            2, geometry.channels, 5, generator=torch.Generator().manual_seed(0)
        )
        flat = ids.reshape(-1)
        x = store.gather(flat // (height * width), (flat // width) % height, flat % width)
        loss = F.cross_entropy(ensemble(x.view(2, 64, -1)).permute(0, 2, 1), target)
        loss.backward()
        grads.append([p.grad for p in ensemble.parameters()])
    for native, reference in zip(*grads, strict=True):
        torch.testing.assert_close(native, reference, rtol=1e-4, atol=1e-6)


def test_training_learns_toy_labels():
    generator = tiny_generator(TINY)
    annotations = toy_annotations(generator, list(range(4)))
    config = InterpreterTrainSettings(members=2, batch_pixels=32, max_iterations=150)
    events = []
    interpreter = train(annotations, generator, "0" * 64, config, progress=events.append)
    parts_losses = [e.metrics["loss"] for e in events if e.task == "parts" and e.metrics]
    assert parts_losses[-1] < 0.6 * parts_losses[0]
    logged = [e.message for e in events if e.message and e.task == "parts"]
    assert len(logged) == 3  # iterations 50, 100, 150: the command's log lines
    assert re.fullmatch(r"  parts     it      50  epoch +\d+  loss \d+\.\d{4}  active 2", logged[0])
    for task in ("features", "parts", "keypoints"):
        last = [e for e in events if e.task == task][-1]
        assert last.done == last.total, task
    assert interpreter.keypoints is not None and interpreter.summary["parts"]["iterations"] == 150
    ws = torch.from_numpy(np.stack([s.ws for s in annotations.samples]))
    fast = predict(interpreter, generator, ws, keep_members=True)
    slow = predict(interpreter, generator, ws, materialised=True, keep_members=True)
    assert (fast.member_labels == slow.member_labels).mean() > 0.999
    assert (fast.part_ids == slow.part_ids).mean() > 0.999
    np.testing.assert_allclose(fast.heatmaps, slow.heatmaps, atol=1e-5)
    truth = np.stack([s.part_ids for s in annotations.samples])
    assert (fast.part_ids == truth).mean() > 0.6  # the toy labels are learnable


def test_checkpoint_round_trip(tmp_path):
    generator = tiny_generator(TINY_CROP)
    annotations = toy_annotations(generator, [0, 1])
    config = InterpreterTrainSettings(members=2, batch_pixels=16, max_iterations=5)
    interpreter = train(annotations, generator, "0" * 64, config)
    path = save_interpreter(interpreter, tmp_path / "I.safetensors")
    loaded = load_interpreter(path)
    assert loaded.config == interpreter.config
    ws = torch.from_numpy(annotations.samples[0].ws[None])
    a, b = predict(interpreter, generator, ws), predict(loaded, generator, ws)
    np.testing.assert_array_equal(a.part_ids, b.part_ids)
    np.testing.assert_array_equal(a.heatmaps, b.heatmaps)
    assert json.loads((tmp_path / "I.json").read_text())["config"]["canvas"] == 32
    generator_path = tmp_path / "G.safetensors"
    save_tiny_generator(generator_path)
    with pytest.raises(AssetganError, match="not an interpreter"):
        load_interpreter(generator_path)


def test_train_settings_serialise_as_before():
    """The checkpoint's `train` record: feature_dtype is a StrEnum now, the JSON is unchanged."""
    settings = InterpreterTrainSettings(members=3, feature_dtype=FeatureDtype.float32)
    expected = (
        '{"batch_pixels": 64, "early_stop_epoch": 3, "feature_dtype": "float32", '
        '"heatmap_sigma": 0.025, "keypoint_focus": 0.5, "keypoints": true, "lr": 0.001, '
        '"max_epochs": 100, "max_iterations": null, "members": 3, "min_class_pixels": 30, '
        '"occluded_amplitude": 0.5, "patience": 50, "seed": 0, "visible_amplitude": 1.0}'
    )
    assert json.dumps(settings.to_dict(), sort_keys=True) == expected
    assert InterpreterTrainSettings.from_dict(settings.to_dict()) == settings
    assert (
        InterpreterTrainSettings.from_dict(settings.to_dict()).feature_dtype is FeatureDtype.float32
    )
    with pytest.raises(AssetganError, match="feature_dtype"):
        InterpreterTrainSettings(feature_dtype="bfloat16").validate()


def _saved_sets(tmp_path):
    """(generator path, train set, test set, other generator path), all on disk."""
    generator_path = tmp_path / "G.safetensors"
    generator, sha = save_tiny_generator(generator_path)
    toy_annotations(generator, [0, 1, 2], str(generator_path), sha).save(tmp_path / "train_set")
    toy_annotations(generator, [50, 51], str(generator_path), sha).save(tmp_path / "test_set")
    other_path = tmp_path / "other.safetensors"
    save_tiny_generator(other_path, seed=1)
    return generator_path, tmp_path / "train_set", tmp_path / "test_set", other_path


def test_train_and_eval_run_without_the_cli(tmp_path):
    from assetgan.pipeline.interpreter import evaluate
    from assetgan.pipeline.interpreter import train as train_stage

    generator_path, train_set, test_set, other_path = _saved_sets(tmp_path)
    settings = InterpreterTrainSettings(members=2, batch_pixels=16, max_iterations=12)
    out = tmp_path / "I.safetensors"
    config = InterpreterTrainConfig(train_set, generator_path, out, settings, device="cpu")
    events = []
    result = train_stage.run(config, events.append)
    for task in ("features", "parts", "keypoints"):
        last = [e for e in events if e.task == task][-1]
        assert last.total is not None and last.done == last.total, task
    assert result.out == out and result.images == 3 and result.feature_bytes > 0
    assert result.iterations == {"parts": 12, "keypoints": 12}
    assert result.stopped_at["parts"] == (12, 12)
    loaded = load_interpreter(out)
    assert loaded.config.train == settings.to_dict()
    assert loaded.summary["train_seconds"] == result.train_seconds
    # the stage trains exactly what the library function trains
    generator = tiny_generator(TINY)
    direct = train(
        AnnotationSet.load(train_set), generator, loaded.config.generator_sha256, settings
    )
    for name, tensor in direct.parts.state_dict().items():
        torch.testing.assert_close(loaded.parts.state_dict()[name], tensor, rtol=0, atol=0)

    metrics_path = tmp_path / "metrics.json"
    eval_config = evaluate.InterpreterEvalConfig(out, generator_path, test_set, metrics_path)
    events = []
    scored = evaluate.run(eval_config, events.append)
    assert _done(events, "evaluating") and scored.out == metrics_path
    assert json.loads(metrics_path.read_text()) == json.loads(json.dumps(scored.metrics))
    assert scored.metrics["images"] == 2 and 0 <= scored.metrics["miou"] <= 1
    assert evaluate.run(dataclasses.replace(eval_config, out=None)).out is None
    with pytest.raises(AssetganError, match="trained on generator sha256"):
        evaluate.run(dataclasses.replace(eval_config, generator=other_path, out=tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def _done(events, task):
    return any(e.task == task and e.done == e.total for e in events)


def test_check_generator_match(tmp_path):
    generator_path, train_set, _test_set, other_path = _saved_sets(tmp_path)
    annotations = AnnotationSet.load(train_set)
    sha = annotations.samples[0].generator_sha256
    check_generator_match(annotations, sha, train_set, generator_path)  # no error
    with pytest.raises(AssetganError) as error:
        check_generator_match(annotations, "f" * 64, train_set, other_path)
    message = str(error.value)
    assert str(train_set) in message and str(other_path) in message and sha[:12] in message
    assert "ffffffffffff..." in message and str(generator_path) in message  # the recorded path
    settings = InterpreterTrainSettings(members=2, batch_pixels=16, max_iterations=2)
    interpreter = train(annotations, tiny_generator(TINY), sha, settings)
    check_generator_match(interpreter, sha, "I.safetensors", generator_path)
    with pytest.raises(AssetganError, match=r"I.safetensors: this interpreter was trained on gen"):
        check_generator_match(interpreter, "f" * 64, "I.safetensors", other_path)


def test_cli_train_and_eval(tmp_path):
    generator_path, _train_set, _test_set, other_path = _saved_sets(tmp_path)
    out = tmp_path / "I.safetensors"
    result = runner.invoke(
        app,
        [
            "interpreter",
            "train",
            "--annotations",
            str(tmp_path / "train_set"),
            "--generator",
            str(generator_path),
            "--out",
            str(out),
            "--members",
            "2",
            "--max-iterations",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and "parts" in result.output
    metrics_path = tmp_path / "metrics.json"
    result = runner.invoke(
        app,
        [
            "interpreter",
            "eval",
            "--interpreter",
            str(out),
            "--generator",
            str(generator_path),
            "--annotations",
            str(tmp_path / "test_set"),
            "--out",
            str(metrics_path),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(metrics_path.read_text())
    assert 0 <= metrics["miou"] <= 1 and "pck" in metrics and "mIoU" in result.output
    # car_20 interpreters are also scored on the merges, with the merged class names
    from assetgan.assets.taxonomy import CAR_5, CAR_12

    assert set(metrics["merged"]["car_12"]["per_class_iou"]) == set(CAR_12)
    assert set(metrics["merged"]["car_5"]["per_class_iou"]) == set(CAR_5)
    assert all(0 <= metrics["merged"][t]["miou"] <= 1 for t in ("car_12", "car_5"))
    args = ["interpreter", "eval", "--interpreter", str(out), "--generator", str(other_path)]
    result = runner.invoke(
        app, [*args, "--annotations", str(tmp_path / "test_set"), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 1 and "trained on generator sha256" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_cli_bad_inputs(tmp_path):
    generator_path = tmp_path / "G.safetensors"
    generator, sha = save_tiny_generator(generator_path)
    toy_annotations(generator, [0, 1], str(generator_path), sha).save(tmp_path / "set")
    other_path = tmp_path / "other.safetensors"
    save_tiny_generator(other_path, seed=1)
    cases = [
        (
            ["--annotations", str(tmp_path / "missing"), "--generator", str(generator_path)],
            "annotations.json",
        ),
        (
            [
                "--annotations",
                str(tmp_path / "set"),
                "--generator",
                str(tmp_path / "nope.safetensors"),
            ],
            "no such",
        ),
        (["--annotations", str(tmp_path / "set"), "--generator", str(other_path)], "sha256"),
    ]
    for args, message in cases:
        result = runner.invoke(
            app, ["interpreter", "train", *args, "--out", str(tmp_path / "I.safetensors")]
        )
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    args = ["--annotations", str(tmp_path / "set"), "--generator", str(generator_path)]
    result = runner.invoke(
        app, ["interpreter", "train", *args, "--feature-dtype", "float8", "--out", "I.safetensors"]
    )
    assert result.exit_code == 2 and "float8" in result.output  # typer lists float16, float32
    result = runner.invoke(app, ["interpreter", "train", *args, "--out", str(tmp_path / "I.pt")])
    assert result.exit_code == 1 and "end in .safetensors" in result.output, result.output
    assert not (tmp_path / "I.safetensors").exists() and not (tmp_path / "I.pt").exists()


def test_merged_scores_forgive_confusions_inside_a_merged_class():
    from assetgan.assets.taxonomy import CAR_12, IGNORE_ID, PART_ID
    from assetgan.core.metrics import confusion, merge_keep_ignore
    from assetgan.pipeline.interpreter.evaluate import _miou

    fender, hood, door = PART_ID["fender"], PART_ID["hoods"], PART_ID["door"]
    truth = np.array([[fender, fender, door, IGNORE_ID]], np.uint8)
    predicted = np.array([[hood, hood, door, 0]], np.uint8)
    merged = merge_keep_ignore(truth, "car_12")
    assert merged[0, 3] == IGNORE_ID and merged[0, 0] == CAR_12.index("car")
    scores20 = _miou(confusion(truth, predicted, 20), tuple(range(20)))
    assert scores20["per_class_iou"][fender] == 0.0 and scores20["per_class_iou"][door] == 1.0
    scores12 = _miou(confusion(merged, merge_keep_ignore(predicted, "car_12"), len(CAR_12)), CAR_12)
    # fender and hood are both "car" in car_12: the confusion disappears, ignore stays out
    assert scores12["per_class_iou"]["car"] == 1.0 and scores12["miou"] == 1.0
