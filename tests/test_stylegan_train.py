"""StyleGAN2 training: data loading, optimizer details, checkpoints, exact resume, KID."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from stylegan_fixtures import shape_images, tiny_train_config, write_shape_folder

from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan import run_dir as runs
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.dataset import load_images
from assetgan.pipeline.stylegan.export import ExportGeneratorConfig, ExportGeneratorResult
from assetgan.pipeline.stylegan.export import run as export
from assetgan.pipeline.stylegan.kid import RandomFeatureNet, compute_features, kid, uint8_to_float
from assetgan.pipeline.stylegan.train import make_optimizer, run, tick_message
from assetgan.pipeline.stylegan.train_config import GanTrainConfig, Preset, preset_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shapes_dir(tmp_path_factory):
    return write_shape_folder(tmp_path_factory.mktemp("shapes"), count=24, size=16)


# --- data --------------------------------------------------------------------------------------


def test_load_images_prefers_images_subdir_and_resizes(tmp_path, shapes_dir):
    images = load_images(shapes_dir, 16)
    assert images.shape == (24, 3, 16, 16) and images.dtype == torch.uint8
    first = np.asarray(Image.open(shapes_dir / "images" / "00000.png"))
    assert np.array_equal(images[0].permute(1, 2, 0).numpy(), first)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(shape_images(1, 32)[0]).save(flat / "a.JPG")
    assert load_images(flat, 8).shape == (1, 3, 8, 8)


def test_load_images_errors(tmp_path):
    with pytest.raises(AssetganError, match="no such directory"):
        load_images(tmp_path / "missing", 16)
    with pytest.raises(AssetganError, match="no .png/.jpg/.jpeg images"):
        load_images(tmp_path, 16)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AssetganError, match="broken.png: unreadable image"):
        load_images(tmp_path, 16)
    (tmp_path / "broken.png").unlink()
    Image.new("RGB", (20, 16)).save(tmp_path / "wide.png")
    with pytest.raises(AssetganError, match="wide.png: image is 20x16"):
        load_images(tmp_path, 16)


# --- configuration and optimizer details ---------------------------------------------------


def test_cpu64_preset_is_the_measured_compact_model():
    config = preset_config("cpu64", "data", "out", 64)
    assert config.generator.channels_per_resolution() == {4: 128, 8: 128, 16: 64, 32: 32, 64: 16}
    assert config.discriminator.channels_per_resolution()[64] == 16
    assert config.discriminator.channels_per_resolution()[4] == 128
    assert (config.generator.z_dim, config.generator.w_dim) == (128, 128)
    assert config.generator.mapping_layers == 4 and config.generator.num_ws == 10
    assert (config.batch, config.g_lr, config.r1_gamma, config.d_reg_interval) == (
        16,
        0.0025,
        0.05,
        16,
    )
    assert GanTrainConfig.from_dict(config.to_dict()) == config
    assert config.preset is Preset.cpu64 and config.to_dict()["preset"] == "cpu64"
    resumed = dataclasses.replace(config, resume=True, device="cpu")
    assert "resume" not in resumed.to_dict() and resumed.to_dict()["device"] == "cpu"
    assert json.dumps(resumed.to_dict()) == json.dumps({**config.to_dict(), "device": "cpu"})
    with pytest.raises(AssetganError, match="device 'cuda:0' is not one of"):
        GanTrainConfig.from_dict({**config.to_dict(), "device": "cuda:0"})
    auto = preset_config("auto", "data", "out", 64)
    assert (auto.batch, auto.ema_kimg) == (32, 10.0)
    assert auto.r1_gamma == pytest.approx(0.0256)
    with pytest.raises(AssetganError, match="multiple of the minibatch-stddev"):
        dataclasses.replace(config, batch=6)


def test_lazy_regularisation_corrects_lr_and_betas():
    module = torch.nn.Linear(2, 2)
    group = make_optimizer(module, 0.0025, (0.0, 0.99), 16).param_groups[0]
    assert group["lr"] == pytest.approx(0.0025 * 16 / 17)
    assert group["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    plain = make_optimizer(module, 0.0025, (0.0, 0.99), None).param_groups[0]
    assert plain["lr"] == 0.0025 and plain["betas"] == (0.0, 0.99)


# --- training, checkpoints, resume ---------------------------------------------------------


def _timeless(lines):
    drop = {"sec_per_kimg", "sec_per_iter", "total_sec", "maintenance_sec", "cpu_maxrss_gb"}
    return [{k: v for k, v in line.items() if k not in drop} for line in lines]


def test_train_then_resume_continues_exactly(tmp_path, shapes_dir):
    events = []
    straight = tiny_train_config(shapes_dir, tmp_path / "straight")
    result = run(straight, progress=events.append)
    assert result.kimg == pytest.approx(0.016)
    lines = runs.read_metrics(result.run_dir)
    assert [line["kimg"] for line in lines] == [0.004, 0.008, 0.012, 0.016]
    assert "kid" in lines[1] and "kid" not in lines[0] and np.isfinite(lines[3]["kid"])
    assert {"loss_g", "loss_d", "r1_penalty", "pl_penalty", "score_real"} <= set(lines[0])
    assert (events[0].task, events[0].done, events[0].total) == ("loading", 24, 24)
    training = [e for e in events if e.task == "training"]
    assert len(training) == 1 + 4 + 4  # start, one per iteration, one per tick
    assert [e.done for e in training if e.message] == [0.004, 0.008, 0.012, 0.016]
    assert [e.message for e in training if e.message] == [tick_message(line) for line in lines]
    assert training[-1].message.startswith("kimg 0.0  G ") and "KID" in training[-1].message
    assert set(training[-1].metrics) == {"loss_g", "loss_d"}
    assert all(e.total == pytest.approx(0.016) for e in training)
    ckpt = runs.latest_checkpoint(result.run_dir)
    assert ckpt == result.checkpoint and ckpt.name == "kimg00000.016"
    assert len(list((ckpt.parent).glob("kimg*"))) == 2  # 0.008 and 0.016 (keep 3)
    fakes = sorted((result.run_dir / "samples").glob("fakes-*.png"))
    assert [p.name for p in fakes][-1] == "fakes-kimg00000.016.png"
    init = np.asarray(Image.open(result.run_dir / "samples" / "fakes-init.png"), dtype=float)
    final = np.asarray(Image.open(fakes[-1]), dtype=float)
    assert np.abs(init - final).mean() > 1.0  # the samples moved

    # Train half-way, then resume to the end: identical weights, optimizer state and logs.
    halves = tmp_path / "halves"
    run(dataclasses.replace(straight, out=str(halves), total_kimg=0.008))
    with pytest.raises(AssetganError, match="already holds a training run"):
        run(dataclasses.replace(straight, out=str(halves)))
    saved = (halves / runs.CONFIG_NAME).read_bytes()
    resumed_config = dataclasses.replace(runs.load_config(halves), total_kimg=0.016, resume=True)
    resumed = run(resumed_config)
    record = json.loads((resumed.checkpoint / "progress.json").read_text())
    assert (record["batch_idx"], record["cur_nimg"], record["cur_tick"]) == (4, 16, 4)
    for name in ("G", "G_ema", "D", "optim"):
        a = runs.load_tensors(ckpt / f"{name}.safetensors")[0]
        b = runs.load_tensors(resumed.checkpoint / f"{name}.safetensors")[0]
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{name}:{key}")
    assert _timeless(runs.read_metrics(halves)) == _timeless(lines)
    # train_config.json: only the total changed, the rest byte for byte; no `resume` in it.
    assert (halves / runs.CONFIG_NAME).read_bytes() == saved.replace(
        b'"total_kimg": 0.008', b'"total_kimg": 0.016'
    )


def test_resume_without_checkpoint_and_export(tmp_path, shapes_dir):
    with pytest.raises(AssetganError, match="no checkpoint to resume from"):
        run(tiny_train_config(shapes_dir, tmp_path / "empty", resume=True))
    with pytest.raises(AssetganError, match="no such directory"):
        run(tiny_train_config(tmp_path / "no-data", tmp_path / "never"))
    assert not (tmp_path / "never").exists()  # bad data fails before the run dir is made
    config = tiny_train_config(shapes_dir, tmp_path / "run", total_kimg=0.004, kid_images=0)
    result = run(config)
    export_config = ExportGeneratorConfig(result.run_dir, tmp_path / "G.safetensors", fp16=True)
    exported = export(export_config)
    assert exported == ExportGeneratorResult(
        tmp_path / "G.safetensors", tmp_path / "G.json", None, ()
    )
    generator = load_generator(exported.generator)
    assert generator.config == config.generator
    info = json.loads(exported.config_json.read_text())["info"]
    assert info["exported_from"] == str(result.checkpoint / "G_ema.safetensors")

    # --resume: the saved config, continued in place; only kimg, data and device may change.
    resumed = runs.resume_config(result.run_dir, "cpu", total_kimg=0.008)
    assert resumed == dataclasses.replace(config, total_kimg=0.008, resume=True)
    assert runs.resume_config(result.run_dir).total_kimg == config.total_kimg
    with pytest.raises(AssetganError, match="holds no checkpoint"):
        runs.resolve_generator_file(tmp_path)


def test_metrics_reader_drops_a_torn_last_line_only(tmp_path):
    runs.append_metrics(tmp_path, {"kimg": 0.004, "loss_g": 1.0})
    runs.append_metrics(tmp_path, {"kimg": 0.008, "loss_g": 0.5})
    metrics = tmp_path / runs.METRICS_NAME
    with open(metrics, "a", encoding="utf-8") as handle:
        handle.write('{"kimg": 0.0')  # killed during the third append
    assert [m["kimg"] for m in runs.read_metrics(tmp_path)] == [0.004, 0.008]
    runs.truncate_metrics(tmp_path, 8)  # what a resume does: the torn line goes away
    assert metrics.read_text(encoding="utf-8").count("\n") == 2
    metrics.write_text('{"kimg": 0.004}\nnot json\n{"kimg": 0.008}\n', encoding="utf-8")
    with pytest.raises(AssetganError, match=r"metrics.jsonl:2: not a JSON line"):
        runs.read_metrics(tmp_path)


# --- KID -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kid_sets():
    net = RandomFeatureNet(input_size=32)  # the default 64 is 4x slower; the test needs no more
    real_a = uint8_to_float(shape_images(200, 32, seed=1))
    real_b = uint8_to_float(shape_images(200, 32, seed=2))
    return net, compute_features(net, real_a), real_b


def test_kid_real_vs_real_is_near_zero_and_noise_is_far(kid_sets):
    net, feats_a, real_b = kid_sets
    same, same_std = kid(
        feats_a, compute_features(net, real_b), num_subsets=20, max_subset_size=150
    )
    noise = torch.rand(200, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    far, _ = kid(feats_a, compute_features(net, noise), num_subsets=20, max_subset_size=150)
    assert abs(same) < 5e-3 * far and abs(same) < 4 * same_std + 1e-4
    assert far > 0.05


def test_kid_grows_with_degradation(kid_sets):
    net, feats_a, real_b = kid_sets
    noise = torch.randn(real_b.shape, generator=torch.Generator().manual_seed(1))
    values = []
    for sigma in (0.0, 0.1, 0.3):
        degraded = (real_b[:120] + sigma * noise[:120]).clamp(-1, 1)
        values.append(kid(feats_a, compute_features(net, degraded), 20, 100)[0])
    assert values[0] < values[1] < values[2]


def test_feature_net_is_a_pure_function_of_its_seed():
    images = uint8_to_float(shape_images(4, 64, seed=3))
    torch.testing.assert_close(RandomFeatureNet()(images), RandomFeatureNet()(images))
    assert not torch.allclose(RandomFeatureNet(seed=1)(images), RandomFeatureNet()(images))
    assert RandomFeatureNet()(images).shape == (4, RandomFeatureNet().feature_dim)


def test_kid_matches_per_subset_formula():
    rng = np.random.default_rng(1)
    a, b = rng.random((60, 8)), rng.random((50, 8)) + 0.05
    fast, _ = kid(a, b, num_subsets=5, max_subset_size=40, seed=3)
    draws = np.random.default_rng(3)
    subsets = [
        (draws.choice(60, 40, replace=False), draws.choice(50, 40, replace=False)) for _ in range(5)
    ]
    values = []
    for ia, ib in subsets:
        x, y = a[ia], b[ib]
        kxx, kyy, kxy = ((x @ x.T / 8 + 1) ** 3, (y @ y.T / 8 + 1) ** 3, (x @ y.T / 8 + 1) ** 3)
        same = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (40 * 39)
        values.append(same - 2 * kxy.sum() / 1600)
    assert fast == pytest.approx(np.mean(values), rel=1e-9)
