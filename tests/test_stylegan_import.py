"""`gan import`: fixture files in each foreign layout, independent reference forwards, safety.

Every fixture is written here with the exact structure of the real files (class paths, state
layout, variable names, shapes; docs/stylegan_import.md) from random weights of a tiny generator.
Each format has its own reference forward written in that format's conventions and reading its
raw tensors (TF: [k, k, I, O] weights, mod_bias without the +1, the fused up-conv with flipped
kernels; ada: per-sample weights, up-sampling then a true convolution; rosinality: its
[1, O, I, k, k] weights, transposed conv + blur), so the importer's re-layout is checked against
arithmetic it does not share.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import pickle
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from assetgan.cli_app import App
from assetgan.commands.gan_import import import_command
from assetgan.errors import AssetganError
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.importers import (
    ImportFormat,
    ImportOptions,
    build_generator,
    import_generator,
    read_foreign_generator,
)

SQRT2 = math.sqrt(2.0)
LRMUL = 0.01
FIR = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)


def _rng(seed: int) -> np.random.RandomState:
    return np.random.RandomState(seed)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


def _fir(x: torch.Tensor, pad: tuple[int, int], up: int = 1, gain: float = 1.0) -> torch.Tensor:
    """Zero-insertion by `up`, pad (before, after) on both axes, separable [1,3,3,1] filter."""
    batch, channels, height, width = x.shape
    if up > 1:
        full = x.new_zeros(batch, channels, height * up, width * up)
        full[:, :, ::up, ::up] = x
        x = full
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    kernel = torch.outer(FIR, FIR).to(x.dtype)
    kernel = kernel / kernel.sum() * gain
    planes = x.reshape(batch * channels, 1, *x.shape[2:])  # every channel filtered alike
    out = F.conv2d(planes, kernel[None, None])
    return out.reshape(batch, channels, *out.shape[2:])


def _t(value) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value), dtype=torch.float64)


def _close(ours: torch.Tensor, reference: torch.Tensor) -> None:
    ours, reference = ours.double(), reference.double()
    assert ours.shape == reference.shape
    scale = reference.abs().max().item()
    err = (ours - reference).abs().max().item()
    assert scale > 0.1, "reference image is degenerate"
    assert err <= 1e-4 * max(scale, 1.0), f"max abs error {err:.3g} (image scale {scale:.3g})"


# --- NVIDIA TF pickles --------------------------------------------------------------------------


class Network:
    """Stand-in for dnnlib.tflib.network.Network: pickles its state like the real class."""

    def __init__(self, name, variables, components=None, static_kwargs=None, version=4, src=""):
        self._state = dict(
            version=version,
            name=name,
            static_kwargs=dict(static_kwargs or {}),
            components=dict(components or {}),
            build_module_src=src,
            build_func_name="G_main" if name == "G" else name,
            variables=list(variables),
        )

    def __getstate__(self):
        return self._state


Network.__module__ = "dnnlib.tflib.network"


def _install_fake_modules(monkeypatch) -> None:
    """dnnlib.tflib.network, torch_utils.persistence and dnnlib.util, only while pickling."""
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.util", "torch_utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    network = types.ModuleType("dnnlib.tflib.network")
    network.Network = Network
    monkeypatch.setitem(sys.modules, "dnnlib.tflib.network", network)
    persistence = types.ModuleType("torch_utils.persistence")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)
    sys.modules["dnnlib.util"].EasyDict = EasyDict


TF = dict(res=16, z=12, hidden=20, w=16, channels={4: 16, 8: 12, 16: 8}, mapping=3)


def tf_variables(seed: int = 0, spec: dict = TF) -> tuple[list, list, list]:
    """(G-level, mapping, synthesis) variable lists in TF's names, shapes and value scales."""
    rng = _rng(seed)
    f32 = np.float32
    top = [("lod", f32(0.0)), ("dlatent_avg", (rng.randn(spec["w"]) * 0.5).astype(f32))]
    widths = [spec["z"]] + [spec["hidden"]] * (spec["mapping"] - 1) + [spec["w"]]
    mapping = []
    for idx in range(spec["mapping"]):
        weight = rng.randn(widths[idx], widths[idx + 1]) / LRMUL  # [in, out], stored / lrmul
        mapping += [
            (f"Dense{idx}/weight", weight.astype(f32)),
            (f"Dense{idx}/bias", (rng.randn(widths[idx + 1]) * 10).astype(f32)),
        ]
    ch = spec["channels"]
    log2 = int(math.log2(spec["res"]))
    synthesis = []
    for layer in range(2 * log2 - 3):  # noise0 .. noise{num_layers - 2}
        side = 2 ** ((layer + 5) // 2)
        synthesis.append((f"noise{layer}", rng.randn(1, 1, side, side).astype(f32)))

    def modulated(scope, cin, cout, k, noise=True):
        out = [
            (f"{scope}/weight", rng.randn(k, k, cin, cout).astype(f32)),
            (f"{scope}/mod_weight", rng.randn(spec["w"], cin).astype(f32)),
            (f"{scope}/mod_bias", (rng.randn(cin) * 0.3).astype(f32)),
        ]
        if noise:
            out.append((f"{scope}/noise_strength", f32(rng.randn() * 0.5)))
        return out + [(f"{scope}/bias", (rng.randn(cout) * 0.3).astype(f32))]

    synthesis.append(("4x4/Const/const", rng.randn(1, ch[4], 4, 4).astype(f32)))
    synthesis += modulated("4x4/Conv", ch[4], ch[4], 3)
    synthesis += modulated("4x4/ToRGB", ch[4], 3, 1, noise=False)
    for res in sorted(ch)[1:]:
        synthesis += modulated(f"{res}x{res}/Conv0_up", ch[res // 2], ch[res], 3)
        synthesis += modulated(f"{res}x{res}/Conv1", ch[res], ch[res], 3)
        synthesis += modulated(f"{res}x{res}/ToRGB", ch[res], 3, 1, noise=False)
    return top, mapping, synthesis


def tf_generator_network(seed=0, src="", version=4, synthesis_extra=()) -> Network:
    top, mapping, synthesis = tf_variables(seed)
    kwargs = dict(num_channels=3, resolution=TF["res"], label_size=0, latent_size=TF["z"])
    kwargs.update(dlatent_size=TF["w"], mapping_layers=TF["mapping"], mapping_fmaps=TF["hidden"])
    components = {
        "synthesis": Network("G_synthesis", list(synthesis) + list(synthesis_extra), src=src),
        "mapping": Network("G_mapping", mapping, src=src),
    }
    return Network("G", top, components, kwargs, version=version, src=src)


def write_tf_pickle(path: Path, monkeypatch, protocol=3, numpy_core=False, **kwargs) -> dict:
    """Write (G, D, Gs) like NVIDIA's pickles; returns Gs's variables by full name."""
    _install_fake_modules(monkeypatch)
    discriminator = Network("D", [("4x4/Conv/weight", np.zeros((3, 3, 4, 4), np.float32))])
    generator = tf_generator_network(seed=1, **kwargs)  # the training G differs from Gs
    gs = tf_generator_network(seed=0, **kwargs)
    payload = pickle.dumps((generator, discriminator, gs), protocol=protocol)
    if numpy_core:  # numpy 1.x spelled the module numpy.core (NVIDIA's files)
        payload = payload.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(payload)
    top, mapping, synthesis = tf_variables(0)
    variables = dict(top)
    variables.update({f"mapping/{n}": v for n, v in mapping})
    variables.update({f"synthesis/{n}": v for n, v in synthesis})
    return variables


def _tf_upsample_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """TF upsample_conv_2d: flipped kernel, transposed conv (VALID), FIR with pad (1, 1)."""
    transposed = weight.flip(0, 1).permute(2, 3, 0, 1)  # [k, k, I, O] -> [I, O, k, k]
    x = F.conv_transpose2d(x, transposed, stride=2)
    return _fir(x, pad=(1, 1), gain=4.0)


def _tf_conv_same(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """tf.nn.conv2d(padding='SAME') with a [k, k, I, O] filter: correlation."""
    return F.conv2d(x, weight.permute(3, 2, 0, 1), padding=weight.shape[0] // 2)


def tf_reference(v: dict, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    """G_main(randomize_noise=False) in TF conventions, float64, per-sample weights."""
    x = z.double()
    x = x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)
    num_mapping = len([name for name in v if re.fullmatch(r"mapping/Dense\d+/weight", name)])
    for idx in range(num_mapping):
        weight = _t(v[f"mapping/Dense{idx}/weight"])  # [in, out]
        gain = LRMUL / math.sqrt(weight.shape[0])
        x = _lrelu(x @ (weight * gain) + _t(v[f"mapping/Dense{idx}/bias"]) * LRMUL)
    if psi != 1:
        avg = _t(v["dlatent_avg"])
        x = avg + psi * (x - avg)
    dlatent = x  # the same w for every layer

    def modconv(h, scope, up=False, demodulate=True):
        weight = _t(v[f"{scope}/weight"])  # [k, k, I, O]
        k, cin = weight.shape[0], weight.shape[2]
        weight = weight / math.sqrt(k * k * cin)
        mod_weight = _t(v[f"{scope}/mod_weight"])
        styles = dlatent @ (mod_weight / math.sqrt(mod_weight.shape[0]))
        styles = styles + _t(v[f"{scope}/mod_bias"]) + 1  # [B, I]
        outs = []
        for b in range(h.shape[0]):
            ww = weight * styles[b][None, None, :, None]
            if demodulate:
                ww = ww * torch.rsqrt(ww.square().sum((0, 1, 2)) + 1e-8)
            conv = _tf_upsample_conv if up else _tf_conv_same
            outs.append(conv(h[b : b + 1], ww))
        return torch.cat(outs)

    def layer(h, scope, noise_idx, up=False):
        h = modconv(h, scope, up=up)
        h = h + _t(v[f"synthesis/noise{noise_idx}"]) * float(v[f"{scope}/noise_strength"])
        return _lrelu(h + _t(v[f"{scope}/bias"]).reshape(1, -1, 1, 1))

    def torgb(h, scope):
        return modconv(h, scope, demodulate=False) + _t(v[f"{scope}/bias"]).reshape(1, -1, 1, 1)

    h = _t(v["synthesis/4x4/Const/const"]).repeat(z.shape[0], 1, 1, 1)
    h = layer(h, "synthesis/4x4/Conv", 0)
    img = torgb(h, "synthesis/4x4/ToRGB")
    top = max(int(m.group(1)) for n in v if (m := re.match(r"synthesis/(\d+)x", n)))
    for res in [2**i for i in range(3, int(math.log2(top)) + 1)]:
        log2 = int(math.log2(res))
        h = layer(h, f"synthesis/{res}x{res}/Conv0_up", 2 * log2 - 5, up=True)
        h = layer(h, f"synthesis/{res}x{res}/Conv1", 2 * log2 - 4)
        img = _fir(img, pad=(2, 1), up=2, gain=4.0) + torgb(h, f"synthesis/{res}x{res}/ToRGB")
    return img


def _ours(path: Path, z: torch.Tensor, psi: float = 1.0, **kwargs) -> torch.Tensor:
    foreign = read_foreign_generator(path, **kwargs)
    generator = build_generator(foreign, str(path))
    with torch.no_grad():
        return generator(z.float(), truncation_psi=psi, noise_mode="const")


def test_tf_reference_fused_upconv_equals_upsample_then_conv_inside():
    # TF documents upsample_conv_2d as upsample_2d followed by conv2d, padding only once at the
    # start: equal away from the border (2 pixels), different at the border, as documented.
    rng = _rng(3)
    x, weight = _t(rng.randn(2, 3, 6, 6)), _t(rng.randn(3, 3, 3, 4))
    fused = _tf_upsample_conv(x, weight)
    unfused = _tf_conv_same(_fir(x, pad=(2, 1), up=2, gain=4.0), weight)
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
    z = torch.from_numpy(_rng(7).randn(3, TF["z"]))
    for psi in (1.0, 0.6):
        _close(_ours(path, z, psi), tf_reference(variables, z, psi))
    foreign = read_foreign_generator(path)
    assert foreign.format is ImportFormat.tf
    assert foreign.config_fields["channels"] == (16, 12, 8)
    assert foreign.config_fields["mapping_features"] == TF["hidden"]
    assert "used Gs" in foreign.notes[0]
    assert not marker.exists()  # build_module_src was never executed


def test_tf_stylegan1_is_refused_with_a_reason(tmp_path, monkeypatch):
    _install_fake_modules(monkeypatch)
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
    _install_fake_modules(monkeypatch)
    net = tf_generator_network()
    synthesis = net._state["components"]["synthesis"]._state
    synthesis["variables"] = [e for e in synthesis["variables"] if e[0] != bad[0][0]] + bad
    path.write_bytes(pickle.dumps((net, net, net), protocol=3))
    monkeypatch.undo()
    with pytest.raises(AssetganError, match=r"synthesis\.b8\.conv1\.weight has shape"):
        import_generator(path, tmp_path / "G.safetensors")
    assert not (tmp_path / "G.safetensors").exists()


# --- stylegan2-ada-pytorch pickles ---------------------------------------------------------------


def _reconstruct_persistent_obj(meta):  # pickled by reference only; never called here
    raise RuntimeError("fixtures are never unpickled with the real persistence module")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"


class EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict."""


EasyDict.__module__ = "dnnlib.util"


class Persistent:
    """Pickles like a torch_utils.persistence object: _reconstruct_persistent_obj(meta)."""

    def __init__(self, class_name, params=(), buffers=(), modules=(), init_kwargs=None, src=""):
        self.class_name, self.src = class_name, src
        self.state = {
            "training": False,
            "_parameters": collections.OrderedDict(
                (k, torch.nn.Parameter(v, requires_grad=False)) for k, v in params
            ),
            "_buffers": collections.OrderedDict(buffers),
            "_non_persistent_buffers_set": set(),
            "_backward_hooks": collections.OrderedDict(),
            "_forward_hooks": collections.OrderedDict(),
            "_forward_pre_hooks": collections.OrderedDict(),
            "_state_dict_hooks": collections.OrderedDict(),
            "_load_state_dict_pre_hooks": collections.OrderedDict(),
            "_modules": collections.OrderedDict(modules),
            "_init_args": (),
            "_init_kwargs": EasyDict(init_kwargs or {}),
            "activation": "lrelu",
            "act_gain": np.float64(SQRT2),  # a numpy scalar attribute, as stylegan3 has
        }

    def __reduce__(self):
        meta = dict(
            type="class",
            version=6,
            module_src=self.src,
            class_name=self.class_name,
            state=self.state,
        )
        return _reconstruct_persistent_obj, (meta,)


ADA = dict(res=16, z=10, w=14, channel_base=256, channel_max=32, mapping=2, conv_clamp=1.5)


def ada_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """ada's generator tensors by name (its naming table), random at realistic scales."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, offset=0.0):
        return torch.randn(shape, generator=gen) * scale + offset

    fir = torch.outer(FIR, FIR).float() / 64
    ch = {r: min(ADA["channel_base"] // r, ADA["channel_max"]) for r in (4, 8, 16)}
    t = {"synthesis.b4.const": randn(ch[4], 4, 4)}
    for res in (4, 8, 16):
        b = f"synthesis.b{res}"
        t[f"{b}.resample_filter"] = fir
        convs = [("conv1", ch[4])] if res == 4 else [("conv0", ch[res // 2]), ("conv1", ch[res])]
        for conv, cin in convs:
            t[f"{b}.{conv}.weight"] = randn(ch[res], cin, 3, 3)
            t[f"{b}.{conv}.noise_strength"] = randn(scale=0.5)
            t[f"{b}.{conv}.bias"] = randn(ch[res], scale=0.3)
            t[f"{b}.{conv}.resample_filter"] = fir
            t[f"{b}.{conv}.noise_const"] = randn(res, res)
            t[f"{b}.{conv}.affine.weight"] = randn(cin, ADA["w"])
            t[f"{b}.{conv}.affine.bias"] = randn(cin, scale=0.3, offset=1.0)
        t[f"{b}.torgb.weight"] = randn(3, ch[res], 1, 1)
        t[f"{b}.torgb.bias"] = randn(3, scale=0.3)
        t[f"{b}.torgb.affine.weight"] = randn(ch[res], ADA["w"])
        t[f"{b}.torgb.affine.bias"] = randn(ch[res], scale=0.3, offset=1.0)
    t["mapping.w_avg"] = randn(ADA["w"], scale=0.5)
    widths = [ADA["z"]] + [ADA["w"]] * ADA["mapping"]
    for idx in range(ADA["mapping"]):
        t[f"mapping.fc{idx}.weight"] = randn(widths[idx + 1], widths[idx], scale=1 / LRMUL)
        t[f"mapping.fc{idx}.bias"] = randn(widths[idx + 1], scale=10.0)
    return t


def ada_generator(t: dict[str, torch.Tensor], src: str = "", extra_modules=()) -> Persistent:
    """The persistent-object tree of ada's Generator (module nesting as in its state dict)."""

    def fc(prefix):
        return Persistent(
            "FullyConnectedLayer", [(n, t[f"{prefix}.{n}"]) for n in ("weight", "bias")]
        )

    def layer(prefix):
        params = [(n, t[f"{prefix}.{n}"]) for n in ("weight", "noise_strength", "bias")]
        buffers = [(n, t[f"{prefix}.{n}"]) for n in ("resample_filter", "noise_const")]
        return Persistent("SynthesisLayer", params, buffers, [("affine", fc(f"{prefix}.affine"))])

    blocks = []
    for res in (4, 8, 16):
        b = f"synthesis.b{res}"
        convs = ["conv1"] if res == 4 else ["conv0", "conv1"]
        torgb = Persistent(
            "ToRGBLayer",
            [(n, t[f"{b}.torgb.{n}"]) for n in ("weight", "bias")],
            modules=[("affine", fc(f"{b}.torgb.affine"))],
        )
        modules = [(c, layer(f"{b}.{c}")) for c in convs] + [("torgb", torgb)]
        params = [("const", t[f"{b}.const"])] if res == 4 else []
        buffers = [("resample_filter", t[f"{b}.resample_filter"])]
        blocks.append((f"b{res}", Persistent("SynthesisBlock", params, buffers, modules, src=src)))
    synthesis = Persistent("SynthesisNetwork", modules=blocks + list(extra_modules), src=src)
    mapping = Persistent(
        "MappingNetwork",
        buffers=[("w_avg", t["mapping.w_avg"])],
        modules=[(f"fc{i}", fc(f"mapping.fc{i}")) for i in range(ADA["mapping"])],
    )
    init_kwargs = dict(
        z_dim=ADA["z"],
        c_dim=0,
        w_dim=ADA["w"],
        img_resolution=ADA["res"],
        img_channels=3,
        mapping_kwargs=EasyDict(num_layers=ADA["mapping"]),
        synthesis_kwargs=EasyDict(
            channel_base=ADA["channel_base"],
            channel_max=ADA["channel_max"],
            num_fp16_res=4,
            conv_clamp=ADA["conv_clamp"],
        ),
    )
    return Persistent(
        "Generator",
        modules=[("synthesis", synthesis), ("mapping", mapping)],
        init_kwargs=init_kwargs,
        src=src,
    )


def write_ada_pickle(path: Path, monkeypatch, src="", extra=None, torch_save=False, **kw):
    _install_fake_modules(monkeypatch)
    tensors = ada_tensors(0)
    snapshot = dict(
        training_set_kwargs=EasyDict(path="cars.zip", resolution=ADA["res"]),
        G=ada_generator(ada_tensors(1), src),
        D=Persistent("Discriminator", [("b16.fromrgb.weight", torch.zeros(4, 3, 1, 1))], src=src),
        G_ema=ada_generator(tensors, src, **kw),
        augment_pipe=None,
        **(extra or {}),
    )
    if torch_save:
        torch.save(snapshot, path)
    else:
        path.write_bytes(pickle.dumps(snapshot))
    monkeypatch.undo()
    return tensors


def ada_reference(t: dict[str, torch.Tensor], z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    """ada's Generator in its own conventions (per-sample weights, up = upsample then convolve)."""
    clamp = ADA["conv_clamp"]
    x = z.double()
    x = x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)
    for idx in range(ADA["mapping"]):
        weight = t[f"mapping.fc{idx}.weight"].double()  # [out, in]
        gain = LRMUL / math.sqrt(weight.shape[1])
        x = _lrelu(x @ (weight * gain).t() + t[f"mapping.fc{idx}.bias"].double() * LRMUL)
    if psi != 1:
        avg = t["mapping.w_avg"].double()
        x = avg + psi * (x - avg)

    def affine(prefix):
        weight = t[f"{prefix}.affine.weight"].double()
        return x @ (weight / math.sqrt(weight.shape[1])).t() + t[f"{prefix}.affine.bias"].double()

    def layer(h, prefix, up=False):
        weight, styles = t[f"{prefix}.weight"].double(), affine(prefix)
        outs = []
        for b in range(h.shape[0]):
            ww = weight * styles[b][None, :, None, None]
            ww = ww * torch.rsqrt(ww.square().sum((1, 2, 3)) + 1e-8)[:, None, None, None]
            if up:  # conv2d_resample(up=2, padding=1, flip_weight=False): a true convolution
                hb = _fir(h[b : b + 1], pad=(3, 2), up=2, gain=4.0)
                outs.append(F.conv2d(hb, ww.flip(2, 3)))
            else:
                outs.append(F.conv2d(h[b : b + 1], ww, padding=1))
        h = torch.cat(outs)
        h = h + t[f"{prefix}.noise_const"].double() * t[f"{prefix}.noise_strength"].double()
        return _lrelu(h + t[f"{prefix}.bias"].double().reshape(1, -1, 1, 1)).clamp(-clamp, clamp)

    def torgb(h, prefix):
        weight = t[f"{prefix}.weight"].double()
        styles = affine(prefix) / math.sqrt(weight.shape[1])
        out = torch.einsum("bihw,oi,bi->bohw", h, weight[:, :, 0, 0], styles)
        return (out + t[f"{prefix}.bias"].double().reshape(1, -1, 1, 1)).clamp(-clamp, clamp)

    h = t["synthesis.b4.const"].double().repeat(z.shape[0], 1, 1, 1)
    h = layer(h, "synthesis.b4.conv1")
    img = torgb(h, "synthesis.b4.torgb")
    for res in (8, 16):
        h = layer(h, f"synthesis.b{res}.conv0", up=True)
        h = layer(h, f"synthesis.b{res}.conv1")
        img = _fir(img, pad=(2, 1), up=2, gain=4.0) + torgb(h, f"synthesis.b{res}.torgb")
    return img


@pytest.mark.parametrize("torch_save", [False, True])
def test_ada_pickle_matches_ada_reference_forward(tmp_path, monkeypatch, torch_save):
    marker = tmp_path / "module_src_ran"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    path = tmp_path / "network-snapshot-000100.pkl"
    tensors = write_ada_pickle(path, monkeypatch, src=src, torch_save=torch_save)
    z = torch.from_numpy(_rng(5).randn(3, ADA["z"]))
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


# --- rosinality .pt ------------------------------------------------------------------------------

ROS = dict(res=16, w=16, mapping=3, channels={4: 16, 8: 16, 16: 8})


def rosinality_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """rosinality Generator.state_dict() names and shapes (as convert_weight.py writes them)."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, offset=0.0):
        return torch.randn(shape, generator=gen) * scale + offset

    w, ch = ROS["w"], ROS["channels"]
    blur = torch.outer(FIR, FIR).float() / 64 * 4  # make_kernel(...) * factor**2
    sd = {}
    for idx in range(1, ROS["mapping"] + 1):  # style.0 is PixelNorm
        sd[f"style.{idx}.weight"] = randn(w, w, scale=1 / LRMUL)
        sd[f"style.{idx}.bias"] = randn(w, scale=10.0)
    sd["input.input"] = randn(1, ch[4], 4, 4)

    def styled(prefix, cin, cout, up=False):
        sd[f"{prefix}.conv.weight"] = randn(1, cout, cin, 3, 3)
        sd[f"{prefix}.conv.modulation.weight"] = randn(cin, w)
        sd[f"{prefix}.conv.modulation.bias"] = randn(cin, scale=0.3, offset=1.0)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = blur
        sd[f"{prefix}.noise.weight"] = randn(1, scale=0.5)
        sd[f"{prefix}.activate.bias"] = randn(cout, scale=0.3)

    def to_rgb(prefix, cin, up=True):
        if up:
            sd[f"{prefix}.upsample.kernel"] = blur
        sd[f"{prefix}.conv.weight"] = randn(1, 3, cin, 1, 1)
        sd[f"{prefix}.conv.modulation.weight"] = randn(cin, w)
        sd[f"{prefix}.conv.modulation.bias"] = randn(cin, scale=0.3, offset=1.0)
        sd[f"{prefix}.bias"] = randn(1, 3, 1, 1, scale=0.3)

    styled("conv1", ch[4], ch[4])
    to_rgb("to_rgb1", ch[4], up=False)
    for idx, res in enumerate((8, 16)):
        styled(f"convs.{2 * idx}", ch[res // 2], ch[res], up=True)
        styled(f"convs.{2 * idx + 1}", ch[res], ch[res])
        to_rgb(f"to_rgbs.{idx}", ch[res])
    for idx in range(2 * int(math.log2(ROS["res"])) - 3):
        side = 2 ** ((idx + 5) // 2)
        sd[f"noises.noise_{idx}"] = randn(1, 1, side, side)
    return sd


def rosinality_reference(sd, z, psi=1.0, latent_avg=None, mapped_only=False):
    """rosinality Generator(randomize_noise=False) in its conventions (grouped fused conv)."""
    g = {k: v.double() for k, v in sd.items()}
    x = z.double()
    x = x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)  # PixelNorm
    for idx in range(1, ROS["mapping"] + 1):  # EqualLinear(lr_mul=0.01, fused_lrelu)
        weight = g[f"style.{idx}.weight"]
        x = _lrelu(
            x @ (weight * LRMUL / math.sqrt(weight.shape[1])).t() + g[f"style.{idx}.bias"] * LRMUL
        )
    if mapped_only:
        return x
    if psi < 1:
        x = latent_avg.double() + psi * (x - latent_avg.double())
    batch = z.shape[0]

    def modulated(h, prefix, demodulate=True, upsample=False):
        weight = g[f"{prefix}.conv.weight"]  # [1, O, I, k, k]
        _, cout, cin, k, _ = weight.shape
        mod_w = g[f"{prefix}.conv.modulation.weight"]
        style = x @ (mod_w / math.sqrt(mod_w.shape[1])).t() + g[f"{prefix}.conv.modulation.bias"]
        ww = weight / math.sqrt(cin * k * k) * style.view(batch, 1, cin, 1, 1)
        if demodulate:
            ww = ww * torch.rsqrt(ww.pow(2).sum([2, 3, 4]) + 1e-8).view(batch, cout, 1, 1, 1)
        if upsample:
            ww = ww.transpose(1, 2).reshape(batch * cin, cout, k, k)
            out = F.conv_transpose2d(
                h.reshape(1, batch * cin, *h.shape[2:]), ww, stride=2, groups=batch
            )
            out = out.view(batch, cout, *out.shape[2:])
            return _fir(out, pad=(1, 1), gain=4.0)  # Blur(pad=(1, 1), upsample_factor=2)
        ww = ww.view(batch * cout, cin, k, k)
        out = F.conv2d(h.reshape(1, batch * cin, *h.shape[2:]), ww, padding=k // 2, groups=batch)
        return out.view(batch, cout, *out.shape[2:])

    def styled(h, prefix, noise, upsample=False):
        h = modulated(h, prefix, upsample=upsample)
        h = h + g[f"{prefix}.noise.weight"] * g[f"noises.noise_{noise}"]
        return _lrelu(h + g[f"{prefix}.activate.bias"].view(1, -1, 1, 1))

    def to_rgb(h, prefix, skip=None):
        out = modulated(h, prefix, demodulate=False) + g[f"{prefix}.bias"]
        return out if skip is None else out + _fir(skip, pad=(2, 1), up=2, gain=4.0)

    h = g["input.input"].repeat(batch, 1, 1, 1)
    h = styled(h, "conv1", 0)
    skip = to_rgb(h, "to_rgb1")
    for idx in range(2):
        h = styled(h, f"convs.{2 * idx}", 2 * idx + 1, upsample=True)
        h = styled(h, f"convs.{2 * idx + 1}", 2 * idx + 2)
        skip = to_rgb(h, f"to_rgbs.{idx}", skip)
    return skip


@pytest.mark.parametrize("zip_format", [True, False])
def test_rosinality_pt_matches_rosinality_reference_forward(tmp_path, zip_format):
    sd = rosinality_state(0)
    latent_avg = torch.randn(ROS["w"], generator=torch.Generator().manual_seed(9)) * 0.5
    path = tmp_path / "stylegan2-tiny.pt"
    checkpoint = {"g_ema": sd, "latent_avg": latent_avg}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)
    z = torch.from_numpy(_rng(11).randn(3, ROS["w"]))
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
    z = torch.from_numpy(_rng(4).randn(2, ROS["w"]))
    _close(_ours(path, z), rosinality_reference(sd, z))
    # w_avg is the mapping's mean over 4096 z drawn with torch seed 0 (documented)
    draws = torch.randn(4096, ROS["w"], generator=torch.Generator().manual_seed(0))
    expected = rosinality_reference(sd, draws, mapped_only=True).mean(0)
    assert torch.allclose(foreign.state["mapping.w_avg"].double(), expected, atol=1e-3)


# --- safety --------------------------------------------------------------------------------------


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
        import_generator(path, tmp_path / "G.safetensors")
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


# --- checkpoint writing and the CLI -------------------------------------------------------------


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
    result = import_generator(source, tmp_path / "G.safetensors", ImportOptions(crop_rows=(4, 12)))
    generator = load_generator(result.out)
    assert generator.config.crop_rows == (4, 12) and result.num_ws == 6
    z = torch.from_numpy(_rng(2).randn(2, TF["z"]))
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
