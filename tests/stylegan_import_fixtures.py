"""Foreign StyleGAN checkpoint fixtures and reference forwards for tests/test_stylegan_import.py.

Writers build files with the exact structure of the real ones (docs/stylegan_import.md) from
random weights of a tiny generator; each format has a reference forward written in that format's
own conventions, reading its raw tensors in float64:
- TF: [k, k, I, O] weights, mod_bias + 1 at run time, the fused up-conv as TF implements it;
- ada: per-sample modulated weights, up-sampling then a true convolution, conv_clamp;
- rosinality: [1, O, I, k, k] weights, grouped fused conv, transposed conv + blur.
"""

from __future__ import annotations

import collections
import math
import pickle
import re
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


LRMUL = 0.01


FIR = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)


def np_rng(seed: int) -> np.random.RandomState:
    return np.random.RandomState(seed)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


def fir_filter(
    x: torch.Tensor, pad: tuple[int, int], up: int = 1, gain: float = 1.0
) -> torch.Tensor:
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


def f64(value) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value), dtype=torch.float64)


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


def install_fake_modules(monkeypatch) -> None:
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
    rng = np_rng(seed)
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
    install_fake_modules(monkeypatch)
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


def tf_upsample_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """TF upsample_conv_2d: flipped kernel, transposed conv (VALID), FIR with pad (1, 1)."""
    transposed = weight.flip(0, 1).permute(2, 3, 0, 1)  # [k, k, I, O] -> [I, O, k, k]
    x = F.conv_transpose2d(x, transposed, stride=2)
    return fir_filter(x, pad=(1, 1), gain=4.0)


def tf_conv_same(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """tf.nn.conv2d(padding='SAME') with a [k, k, I, O] filter: correlation."""
    return F.conv2d(x, weight.permute(3, 2, 0, 1), padding=weight.shape[0] // 2)


def tf_reference(v: dict, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
    """G_main(randomize_noise=False) in TF conventions, float64, per-sample weights."""
    x = z.double()
    x = x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)
    num_mapping = len([name for name in v if re.fullmatch(r"mapping/Dense\d+/weight", name)])
    for idx in range(num_mapping):
        weight = f64(v[f"mapping/Dense{idx}/weight"])  # [in, out]
        gain = LRMUL / math.sqrt(weight.shape[0])
        x = lrelu(x @ (weight * gain) + f64(v[f"mapping/Dense{idx}/bias"]) * LRMUL)
    if psi != 1:
        avg = f64(v["dlatent_avg"])
        x = avg + psi * (x - avg)
    dlatent = x  # the same w for every layer

    def modconv(h, scope, up=False, demodulate=True):
        weight = f64(v[f"{scope}/weight"])  # [k, k, I, O]
        k, cin = weight.shape[0], weight.shape[2]
        weight = weight / math.sqrt(k * k * cin)
        mod_weight = f64(v[f"{scope}/mod_weight"])
        styles = dlatent @ (mod_weight / math.sqrt(mod_weight.shape[0]))
        styles = styles + f64(v[f"{scope}/mod_bias"]) + 1  # [B, I]
        outs = []
        for b in range(h.shape[0]):
            ww = weight * styles[b][None, None, :, None]
            if demodulate:
                ww = ww * torch.rsqrt(ww.square().sum((0, 1, 2)) + 1e-8)
            conv = tf_upsample_conv if up else tf_conv_same
            outs.append(conv(h[b : b + 1], ww))
        return torch.cat(outs)

    def layer(h, scope, noise_idx, up=False):
        h = modconv(h, scope, up=up)
        h = h + f64(v[f"synthesis/noise{noise_idx}"]) * float(v[f"{scope}/noise_strength"])
        return lrelu(h + f64(v[f"{scope}/bias"]).reshape(1, -1, 1, 1))

    def torgb(h, scope):
        return modconv(h, scope, demodulate=False) + f64(v[f"{scope}/bias"]).reshape(1, -1, 1, 1)

    h = f64(v["synthesis/4x4/Const/const"]).repeat(z.shape[0], 1, 1, 1)
    h = layer(h, "synthesis/4x4/Conv", 0)
    img = torgb(h, "synthesis/4x4/ToRGB")
    top = max(int(m.group(1)) for n in v if (m := re.match(r"synthesis/(\d+)x", n)))
    for res in [2**i for i in range(3, int(math.log2(top)) + 1)]:
        log2 = int(math.log2(res))
        h = layer(h, f"synthesis/{res}x{res}/Conv0_up", 2 * log2 - 5, up=True)
        h = layer(h, f"synthesis/{res}x{res}/Conv1", 2 * log2 - 4)
        img = fir_filter(img, pad=(2, 1), up=2, gain=4.0) + torgb(h, f"synthesis/{res}x{res}/ToRGB")
    return img


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
    install_fake_modules(monkeypatch)
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
        x = lrelu(x @ (weight * gain).t() + t[f"mapping.fc{idx}.bias"].double() * LRMUL)
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
                hb = fir_filter(h[b : b + 1], pad=(3, 2), up=2, gain=4.0)
                outs.append(F.conv2d(hb, ww.flip(2, 3)))
            else:
                outs.append(F.conv2d(h[b : b + 1], ww, padding=1))
        h = torch.cat(outs)
        h = h + t[f"{prefix}.noise_const"].double() * t[f"{prefix}.noise_strength"].double()
        return lrelu(h + t[f"{prefix}.bias"].double().reshape(1, -1, 1, 1)).clamp(-clamp, clamp)

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
        img = fir_filter(img, pad=(2, 1), up=2, gain=4.0) + torgb(h, f"synthesis.b{res}.torgb")
    return img


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
        x = lrelu(
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
            return fir_filter(out, pad=(1, 1), gain=4.0)  # Blur(pad=(1, 1), upsample_factor=2)
        ww = ww.view(batch * cout, cin, k, k)
        out = F.conv2d(h.reshape(1, batch * cin, *h.shape[2:]), ww, padding=k // 2, groups=batch)
        return out.view(batch, cout, *out.shape[2:])

    def styled(h, prefix, noise, upsample=False):
        h = modulated(h, prefix, upsample=upsample)
        h = h + g[f"{prefix}.noise.weight"] * g[f"noises.noise_{noise}"]
        return lrelu(h + g[f"{prefix}.activate.bias"].view(1, -1, 1, 1))

    def to_rgb(h, prefix, skip=None):
        out = modulated(h, prefix, demodulate=False) + g[f"{prefix}.bias"]
        return out if skip is None else out + fir_filter(skip, pad=(2, 1), up=2, gain=4.0)

    h = g["input.input"].repeat(batch, 1, 1, 1)
    h = styled(h, "conv1", 0)
    skip = to_rgb(h, "to_rgb1")
    for idx in range(2):
        h = styled(h, f"convs.{2 * idx}", 2 * idx + 1, upsample=True)
        h = styled(h, f"convs.{2 * idx + 1}", 2 * idx + 2)
        skip = to_rgb(h, f"to_rgbs.{idx}", skip)
    return skip
