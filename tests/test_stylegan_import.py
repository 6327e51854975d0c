"""`gan import`: fixture files in each foreign layout, independent reference forwards, safety.

Fixtures and the per-format reference forwards live in tests/stylegan_import_fixtures.py; every
image comparison checks the importer's re-layout against arithmetic it does not share.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from stylegan_import_fixtures import (
    ADA,
    ROS,
    TF,
    Network,
    Persistent,
    ada_reference,
    f64,
    fir_filter,
    install_fake_modules,
    np_rng,
    rosinality_reference,
    rosinality_state,
    tf_conv_same,
    tf_generator_network,
    tf_reference,
    tf_upsample_conv,
    write_ada_pickle,
    write_tf_pickle,
)
from typer.testing import CliRunner

from assetgan.commands.app import App
from assetgan.commands.gan_import import import_command
from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.importers import (
    GanImportConfig,
    ImportFormat,
    build_generator,
    read_foreign_generator,
    run,
)


def _close(ours: torch.Tensor, reference: torch.Tensor) -> None:
    ours, reference = ours.double(), reference.double()
    assert ours.shape == reference.shape
    scale = reference.abs().max().item()
    err = (ours - reference).abs().max().item()
    assert scale > 0.1, "reference image is degenerate"
    assert err <= 1e-4 * max(scale, 1.0), f"max abs error {err:.3g} (image scale {scale:.3g})"


def _ours(path: Path, z: torch.Tensor, psi: float = 1.0, **kwargs) -> torch.Tensor:
    foreign = read_foreign_generator(path, **kwargs)
    generator = build_generator(foreign, str(path))
    with torch.no_grad():
        return generator(z.float(), truncation_psi=psi, noise_mode="const")


def test_tf_reference_fused_upconv_equals_upsample_then_conv_inside():
    # TF documents upsample_conv_2d as upsample_2d followed by conv2d, padding only once at the
    # start: equal away from the border (2 pixels), different at the border, as documented.
    rng = np_rng(3)
    x, weight = f64(rng.randn(2, 3, 6, 6)), f64(rng.randn(3, 3, 3, 4))
    fused = tf_upsample_conv(x, weight)
    unfused = tf_conv_same(fir_filter(x, pad=(2, 1), up=2, gain=4.0), weight)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert torch.allclose(fused[inner], unfused[inner], atol=1e-10)
    assert not torch.allclose(fused, unfused, atol=1e-3)


@pytest.mark.parametrize("protocol, numpy_core", [(3, True), (2, False), (4, False)])
def test_tf_pickle_matches_tf_reference_forward(tmp_path, monkeypatch, protocol, numpy_core):
    marker = tmp_path / "build_module_src_ran"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    path = tmp_path / "stylegan2-tiny-config-f.pkl"
    variables = write_tf_pickle(path, monkeypatch, protocol, numpy_core, src=src)
    monkeypatch.undo()  # nothing of the fake modules is visible while importing
    assert "dnnlib.tflib.network" not in sys.modules
    z = torch.from_numpy(np_rng(7).randn(3, TF["z"]))
    for psi in (1.0, 0.6):
        _close(_ours(path, z, psi), tf_reference(variables, z, psi))
    foreign = read_foreign_generator(path)
    assert foreign.format is ImportFormat.tf
    assert foreign.config_fields["channels"] == (16, 12, 8)
    assert foreign.config_fields["mapping_features"] == TF["hidden"]
    assert "used Gs" in foreign.notes[0]
    assert not marker.exists()  # build_module_src was never executed


def test_tf_stylegan1_is_refused_with_a_reason(tmp_path, monkeypatch):
    install_fake_modules(monkeypatch)
    stylegan1 = Network(
        "G",
        [("dlatent_avg", np.zeros(8, np.float32))],
        {"synthesis": Network("G_synthesis", [("4x4/Const/StyleMod/weight", np.zeros((8, 16)))])},
        version=3,
    )
    path = tmp_path / "karras2019stylegan-cars-512x384.pkl"
    path.write_bytes(pickle.dumps((stylegan1, stylegan1, stylegan1), protocol=3))
    monkeypatch.undo()
    with pytest.raises(AssetganError, match="StyleGAN1.*not supported"):
        read_foreign_generator(path)


def test_tf_shape_mismatch_names_the_tensor(tmp_path, monkeypatch):
    bad = [("8x8/Conv1/weight", np.zeros((3, 3, 5, 12), np.float32))]  # Cin 5, not 12
    path = tmp_path / "bad.pkl"
    install_fake_modules(monkeypatch)
    net = tf_generator_network()
    synthesis = net._state["components"]["synthesis"]._state
    synthesis["variables"] = [e for e in synthesis["variables"] if e[0] != bad[0][0]] + bad
    path.write_bytes(pickle.dumps((net, net, net), protocol=3))
    monkeypatch.undo()
    with pytest.raises(AssetganError, match=r"synthesis\.b8\.conv1\.weight has shape"):
        run(GanImportConfig(path, tmp_path / "G.safetensors"))
    assert not (tmp_path / "G.safetensors").exists()


@pytest.mark.parametrize("torch_save", [False, True])
def test_ada_pickle_matches_ada_reference_forward(tmp_path, monkeypatch, torch_save):
    marker = tmp_path / "module_src_ran"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    path = tmp_path / "network-snapshot-000100.pkl"
    tensors = write_ada_pickle(path, monkeypatch, src=src, torch_save=torch_save)
    z = torch.from_numpy(np_rng(5).randn(3, ADA["z"]))
    for psi in (1.0, 0.5):
        _close(_ours(path, z, psi), ada_reference(tensors, z, psi))
    foreign = read_foreign_generator(path, format="ada")
    assert foreign.config_fields["channel_base"] == ADA["channel_base"]
    assert foreign.config_fields["conv_clamp"] == ADA["conv_clamp"]
    assert foreign.config_fields["resample_filter"] == (1.0, 3.0, 3.0, 1.0)
    assert not marker.exists()  # module_src was never executed


def test_ada_stylegan3_generator_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "stylegan3-t.pkl"
    extra = [("input", Persistent("SynthesisInput", [("freqs", torch.zeros(4, 2))]))]
    write_ada_pickle(path, monkeypatch, extra_modules=extra)
    with pytest.raises(AssetganError, match="StyleGAN3"):
        read_foreign_generator(path)


@pytest.mark.parametrize("zip_format", [True, False])
def test_rosinality_pt_matches_rosinality_reference_forward(tmp_path, zip_format):
    sd = rosinality_state(0)
    latent_avg = torch.randn(ROS["w"], generator=torch.Generator().manual_seed(9)) * 0.5
    path = tmp_path / "stylegan2-tiny.pt"
    checkpoint = {"g_ema": sd, "latent_avg": latent_avg}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    z = torch.from_numpy(np_rng(11).randn(3, ROS["w"]))
    for psi in (1.0, 0.7):
        _close(_ours(path, z, psi), rosinality_reference(sd, z, psi, latent_avg))
    foreign = read_foreign_generator(path)
    assert foreign.format is ImportFormat.rosinality
    config = GeneratorConfig(**foreign.config_fields)
    assert config.channels_per_resolution() == ROS["channels"]


def test_rosinality_training_checkpoint_without_latent_avg(tmp_path):
    sd = rosinality_state(1)
    path = tmp_path / "050000.pt"
    args = argparse.Namespace(size=ROS["res"], n_mlp=ROS["mapping"], latent=ROS["w"], lr=0.002)
    torch.save(
        {
            "g": rosinality_state(2),
            "d": {"convs.0.0.weight": torch.zeros(2)},
            "g_ema": sd,
            "args": args,
            "ada_aug_p": 0.1,
        },
        path,
    )
    foreign = read_foreign_generator(path)
    assert foreign.notes[0] == "used the 'g_ema' state dict"
    z = torch.from_numpy(np_rng(4).randn(2, ROS["w"]))
    _close(_ours(path, z), rosinality_reference(sd, z))
    # w_avg is the mapping's mean over 4096 z drawn with torch seed 0 (documented)
    draws = torch.randn(4096, ROS["w"], generator=torch.Generator().manual_seed(0))
    expected = rosinality_reference(sd, draws, mapped_only=True).mean(0)
    assert torch.allclose(foreign.state["mapping.w_avg"].double(), expected, atol=1e-3)


class _Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _attacks(marker: Path):
    return {
        "os.system": _Payload(os.system, (f"touch {marker}",)),
        "builtins.eval": _Payload(eval, (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.call": _Payload(subprocess.call, (["touch", str(marker)],)),
        "builtins.exec": _Payload(exec, (f"open({str(marker)!r}, 'w').close()",)),
    }


@pytest.mark.parametrize(
    "attack", ["os.system", "builtins.eval", "subprocess.call", "builtins.exec"]
)
@pytest.mark.parametrize("protocol", [2, 4])
def test_code_running_pickles_are_refused_and_nothing_runs(tmp_path, attack, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _attacks(marker)[attack]}, protocol=protocol))
    with pytest.raises(AssetganError) as caught:
        run(GanImportConfig(path, tmp_path / "G.safetensors"))
    message = str(caught.value)
    assert message.startswith(f"{path}: refusing to load global ")
    assert "(the file tries to run code)" in message and "\n" not in message
    assert attack.split(".")[1] in message  # posix.system / builtins.eval / subprocess.call
    assert not marker.exists()
    assert not (tmp_path / "G.safetensors").exists()


def test_attack_hidden_in_an_ada_snapshot_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    path = tmp_path / "network-snapshot.pkl"
    write_ada_pickle(path, monkeypatch, extra={"progress": _attacks(marker)["os.system"]})
    with pytest.raises(AssetganError, match=r"refusing to load global posix\.system"):
        read_foreign_generator(path)
    assert not marker.exists()


def test_attack_inside_a_torch_archive_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": rosinality_state(0), "x": _attacks(marker)["os.system"]}, path)
    with pytest.raises(AssetganError, match=r"refusing to load global posix\.system"):
        read_foreign_generator(path)
    assert not marker.exists()


def test_truncated_unknown_and_mismatched_files_give_one_line_errors(tmp_path, monkeypatch):
    path = tmp_path / "stylegan2-tiny.pkl"
    write_tf_pickle(path, monkeypatch)
    monkeypatch.undo()
    payload = path.read_bytes()
    cases = {
        "cut.pkl": (payload[: len(payload) // 2], "truncated or corrupt pickle"),
        "empty.pkl": (b"", "the file is empty"),
        "notes.txt": (b"hello, world", "unknown file format"),
        "list.pkl": (pickle.dumps([1, 2, 3]), "not a StyleGAN checkpoint we know"),
    }
    sd_path = tmp_path / "ros.pt"
    torch.save({"g_ema": rosinality_state(0)}, sd_path)
    cases["cut.pt"] = (sd_path.read_bytes()[:3000], "truncated or corrupt torch file")
    for name, (content, expected) in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(AssetganError, match=expected) as caught:
            read_foreign_generator(bad)
        assert "\n" not in str(caught.value)
    with pytest.raises(AssetganError, match="--format rosinality given but the file is tf"):
        read_foreign_generator(path, format="rosinality")


def _cli() -> App:
    app = App()
    app.command("import")(import_command)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # a second command keeps `import` a sub-command
        pass

    return app


def test_import_writes_a_loadable_checkpoint_with_car_crop(tmp_path, monkeypatch):
    source = tmp_path / "stylegan2-car-tiny.pkl"
    variables = write_tf_pickle(source, monkeypatch)
    monkeypatch.undo()
    events = []
    config = GanImportConfig(source, tmp_path / "G.safetensors", crop_rows=(4, 12))
    result = run(config, events.append)
    assert [(e.done, e.total, e.task) for e in events] == [(k, 3, "import") for k in (1, 2, 3)]
    assert result.out == config.out and result.format is ImportFormat.tf
    assert result.notes[-1] == "output images are canvas rows 4:12"
    generator = load_generator(result.out)
    assert generator.config.crop_rows == (4, 12) and result.num_ws == 6
    z = torch.from_numpy(np_rng(2).randn(2, TF["z"]))
    with torch.no_grad():
        images = generator(z.float(), noise_mode="const")
    assert images.shape == (2, 3, 8, 16)
    _close(images, tf_reference(variables, z)[:, :, 4:12])
    sidecar = (tmp_path / "G.json").read_text()
    assert '"source_format": "tf"' in sidecar and "source_sha256" in sidecar


def test_cli_import_prints_summary_and_rejects_bad_input(tmp_path, monkeypatch):
    source = tmp_path / "stylegan2-tiny.pkl"
    write_tf_pickle(source, monkeypatch)
    monkeypatch.undo()
    runner = CliRunner()
    out = tmp_path / "G.safetensors"
    result = runner.invoke(_cli(), ["import", str(source), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "(tf)" in result.output and "6 ws" in result.output and "params" in result.output
    assert load_generator(out).config.resolution == TF["res"]

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(_attacks(tmp_path / "pwned")["os.system"]))
    for args, expected in [
        ([str(evil)], "refusing to load global posix.system"),
        ([str(tmp_path / "missing.pkl")], "no such file"),
        ([str(source), "--crop-rows", "64-448"], "--crop-rows must look like TOP:BOTTOM"),
        ([str(source), "--format", "ada"], "--format ada given but the file is tf"),
    ]:
        result = runner.invoke(_cli(), ["import", *args, "--out", str(tmp_path / "x.safetensors")])
        assert result.exit_code == 1, result.output
        assert expected in result.output
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x.safetensors").exists()


def test_persistent_object_tree_flattens_like_state_dict_and_survives_cycles():
    from assetgan.pipeline.stylegan.safe_unpickle import PersistentObject

    leaf = PersistentObject("FullyConnectedLayer", "", {"_parameters": {"weight": torch.ones(1)}})
    root = PersistentObject(
        "Generator",
        "",
        {
            "_parameters": {"const": torch.zeros(1), "unused": None},
            "_buffers": {"f": torch.zeros(2), "tmp": torch.zeros(3)},
            "_non_persistent_buffers_set": {"tmp"},
            "_modules": {"fc": leaf, "act": None},
        },
    )
    leaf.state["_modules"] = {"back": root}  # a crafted cycle must not recurse forever
    assert list(root.named_tensors()) == ["const", "f", "fc.weight"]
    assert root.class_names() == {"Generator", "FullyConnectedLayer"}
