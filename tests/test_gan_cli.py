"""`assetgan gan train|sample|info|export-generator`: their run() from Python and via CliRunner,
including bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from stylegan_fixtures import tiny_train_config, write_shape_folder
from typer.testing import CliRunner

from assetgan.cli import app
from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan import run_dir as runs
from assetgan.pipeline.stylegan.checkpoint import load_generator, save_generator
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.export import ExportGeneratorConfig, export_command
from assetgan.pipeline.stylegan.export import run as export
from assetgan.pipeline.stylegan.model_card import describe_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sample import GanSampleConfig
from assetgan.pipeline.stylegan.sample import run as sample

runner = CliRunner()
TINY = GeneratorConfig(resolution=16, z_dim=8, w_dim=8, mapping_layers=2, channels=(16, 8, 8))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("g") / "G.safetensors"
    return save_generator(Generator(TINY), path, info={"source": "test"})


def test_gan_train_and_resume(tmp_path):
    data = write_shape_folder(tmp_path / "shapes", count=12, size=16)
    out = tmp_path / "run"
    args = ["gan", "train", "--data", str(data), "--out", str(out), "--res", "16"]
    args += ["--kimg", "0.016", "--batch", "8", "--snap-kimg", "0.008", "--kid-images", "12"]
    args += ["--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trained to 0.016 kimg" in result.output
    config = runs.load_config(out)
    assert config.preset == "cpu64" and config.generator.channels_per_resolution()[16] == 64
    lines = runs.read_metrics(out)
    assert lines[-1]["kimg"] == 0.016 and "kid" in lines[-1]
    result = runner.invoke(app, ["gan", "train", "--resume", str(out), "--kimg", "0.024"])
    assert result.exit_code == 0, result.output
    assert runs.read_metrics(out)[-1]["batch_idx"] == 3

    # Model card: rebuilt from the run, refused for a standalone file.
    exported = tmp_path / "asset" / "G.safetensors"
    result = runner.invoke(
        app, ["gan", "export-generator", str(out), "--out", str(exported), "--fp16", "--card"]
    )
    assert result.exit_code == 0, result.output
    card = (tmp_path / "asset" / "model_card.md").read_text()
    command = next(line for line in card.splitlines() if "gan train --data" in line).split()
    for option, value in [("--kimg", "0.024"), ("--batch", "8"), ("--kid-images", "12")]:
        assert command[command.index(option) + 1] == value
    assert "--gamma" not in command  # the preset's value is not repeated
    kid_kimgs = [m["kimg"] for m in runs.read_metrics(out) if "kid" in m]
    assert len(kid_kimgs) == 3 and all(f"| {k:g} |" in card for k in kid_kimgs)
    assert Image.open(tmp_path / "asset" / "samples.png").size == (8 * 16, 4 * 16)
    # The same export from Python writes the same card (its own --out in the command line).
    config = ExportGeneratorConfig(out, tmp_path / "py" / "G.safetensors", fp16=True, card=True)
    exported_py = export(config)
    assert exported_py.card.read_text() == card.replace(str(exported), str(config.out))
    assert export_command(config) in card.replace(str(exported), str(config.out))
    assert [p.name for p in exported_py.samples] == ["samples.png", "samples_psi0.7.png"]
    result = runner.invoke(
        app, ["gan", "export-generator", str(exported), "--out", str(tmp_path / "x.st"), "--card"]
    )
    assert result.exit_code == 1 and "needs a training checkpoint directory" in result.output
    assert not (tmp_path / "x.st").exists()


def test_gan_train_bad_input(tmp_path):
    result = runner.invoke(
        app, ["gan", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    assert result.output.strip().startswith("error:") and "no such directory" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["gan", "train", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "needs --data" in result.output
    result = runner.invoke(app, ["gan", "train", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "not a training run directory" in result.output


def test_gan_sample_grid_and_mixing(tmp_path, generator_file):
    out = tmp_path / "grid.png"
    args = ["gan", "sample", "--ckpt", str(generator_file), "--seeds", "0-5", "--psi", "0.7"]
    result = runner.invoke(app, [*args, "--cutoff", "2", "--columns", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(out))
    assert grid.shape == (32, 48, 3)
    again = tmp_path / "again.png"
    runner.invoke(app, [*args, "--cutoff", "2", "--columns", "3", "--out", str(again)])
    assert np.array_equal(grid, np.asarray(Image.open(again)))  # deterministic per seed
    mix = tmp_path / "mix.png"
    mix_args = ["gan", "sample", "--ckpt", str(generator_file), "--mix", "--seeds", "0-1"]
    result = runner.invoke(
        app, [*mix_args, "--mix-seeds", "5-7", "--mix-layers", "0-1", "--out", str(mix)]
    )
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(mix)).shape == (3 * 16, 4 * 16, 3)


def test_sample_run_from_python(tmp_path, generator_file):
    events = []
    config = GanSampleConfig(generator_file, tmp_path / "grid.png", seeds=(0, 1, 2), columns=3)
    result = sample(config, events.append)
    assert (result.out, result.generator, result.seeds, result.mix_seeds) == (
        tmp_path / "grid.png",
        generator_file,
        3,
        0,
    )
    assert np.asarray(Image.open(result.out)).shape == (16, 48, 3) and events[-1].done == 1
    mixing = dataclasses.replace(config, out=tmp_path / "mix.png", mix_seeds=(5,), mix_layers=(0,))
    result = sample(mixing)
    assert result.mix_seeds == 1 and Image.open(result.out).size == (2 * 16, 4 * 16)
    with pytest.raises(AssetganError, match="at least one seed"):
        sample(dataclasses.replace(config, seeds=()))
    with pytest.raises(AssetganError, match="outside 0..5"):
        sample(dataclasses.replace(mixing, mix_layers=(6,)))


def test_gan_sample_bad_input(tmp_path, generator_file):
    result = runner.invoke(app, ["gan", "sample", "--ckpt", str(tmp_path / "missing.safetensors")])
    assert result.exit_code == 1 and "no such checkpoint" in result.output
    result = runner.invoke(app, ["gan", "sample", "--ckpt", str(generator_file), "--seeds", "x"])
    assert result.exit_code == 1 and "--seeds: cannot parse" in result.output
    result = runner.invoke(
        app, ["gan", "sample", "--ckpt", str(generator_file), "--mix", "--mix-layers", "9"]
    )
    assert result.exit_code == 1 and "outside 0..5" in result.output


def test_gan_info(generator_file, tmp_path):
    result = runner.invoke(app, ["gan", "info", "--ckpt", str(generator_file)])
    assert result.exit_code == 0, result.output
    assert "6 ws" in result.output and "b16.conv1" in result.output
    assert "feature taps (64 channels)" in result.output  # 16 + 16 + 8 + 8 + 8 + 8
    result = runner.invoke(app, ["gan", "info", "--ckpt", str(generator_file), "--json"])
    summary = json.loads(result.output)
    expected = sum(p.numel() for p in Generator(TINY).parameters())
    assert summary["parameters"]["total"] == expected
    assert summary["info"] == {"source": "test"} and summary["num_ws"] == 6
    assert describe_generator(generator_file).to_dict() == summary  # the same, from Python
    with pytest.raises(AssetganError, match="holds no checkpoint"):
        describe_generator(generator_file.parent)  # a folder without G_ema or a run
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"xx")
    result = runner.invoke(app, ["gan", "info", "--ckpt", str(bad)])
    assert result.exit_code == 1 and "not a readable safetensors" in result.output


def test_gan_export_generator(tmp_path):
    data = write_shape_folder(tmp_path / "shapes", count=8, size=16)
    config = tiny_train_config(data, tmp_path / "run", total_kimg=0.004, kid_images=0)
    from assetgan.pipeline.stylegan.train import run

    run(config)
    # From Python: a card needs a run a `gan train` command line can express; refused before
    # anything is written.
    refused = ExportGeneratorConfig(
        tmp_path / "run", tmp_path / "card" / "G.safetensors", card=True
    )
    with pytest.raises(AssetganError, match="options cannot express"):
        export(refused)
    assert not (tmp_path / "card").exists()
    out = tmp_path / "demo.safetensors"
    result = runner.invoke(
        app, ["gan", "export-generator", str(tmp_path / "run"), "--out", str(out), "--fp16"]
    )
    assert result.exit_code == 0, result.output
    exported = load_generator(out)
    ema = load_generator(runs.latest_checkpoint(tmp_path / "run") / "G_ema.safetensors")
    for (name, a), b in zip(exported.state_dict().items(), ema.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b.half().float(), msg=name)
    assert json.loads(out.with_suffix(".json").read_text())["fp16"] is True
    result = runner.invoke(app, ["gan", "export-generator", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and "no such checkpoint file or run directory" in result.output
