"""StyleGAN2 networks: ada naming, op references, truncation, feature taps, checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import signal

from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan import ops
from assetgan.pipeline.stylegan.checkpoint import (
    load_generator,
    read_generator_header,
    save_generator,
)
from assetgan.pipeline.stylegan.config import DiscriminatorConfig, GeneratorConfig
from assetgan.pipeline.stylegan.discriminator import Discriminator, MinibatchStdLayer
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import (
    crossover,
    mix_styles,
    parse_index_list,
    ws_from_seeds,
    z_from_seeds,
)

TINY = GeneratorConfig(
    resolution=16, z_dim=16, w_dim=24, mapping_layers=2, channels=(32, 16, 8)
)  # 6 ws


def _tiny_generator(seed: int = 0, config: GeneratorConfig = TINY) -> Generator:
    torch.manual_seed(seed)
    generator = Generator(config).eval()
    with torch.no_grad():  # make noise, biases and w_avg non-trivial
        for name, tensor in generator.state_dict().items():
            if name.endswith(("noise_strength", ".bias")) or name == "mapping.w_avg":
                tensor.copy_(torch.randn_like(tensor) * 0.3 + (1.0 if "affine" in name else 0))
    return generator


# --- names and shapes -------------------------------------------------------------------------


def _expected_generator_keys(channels: dict[int, int], mapping_layers: int) -> list[str]:
    """ada's state-dict order, spelled out from its naming scheme."""
    keys = []
    for res in sorted(channels):
        block = f"synthesis.b{res}"
        keys += [f"{block}.const"] if res == 4 else []
        keys += [f"{block}.resample_filter"]
        for conv in ["conv1"] if res == 4 else ["conv0", "conv1"]:
            keys += [
                f"{block}.{conv}.{n}"
                for n in (
                    "weight",
                    "noise_strength",
                    "bias",
                    "resample_filter",
                    "noise_const",
                    "affine.weight",
                    "affine.bias",
                )
            ]
        keys += [f"{block}.torgb.{n}" for n in ("weight", "bias", "affine.weight", "affine.bias")]
    keys += ["mapping.w_avg"]  # a module's own buffers come before its children's tensors
    for idx in range(mapping_layers):
        keys += [f"mapping.fc{idx}.weight", f"mapping.fc{idx}.bias"]
    return keys


def test_generator_state_dict_follows_ada_names_and_shapes():
    generator = Generator(TINY)
    state = generator.state_dict()
    assert list(state) == _expected_generator_keys({4: 32, 8: 16, 16: 8}, 2)
    shapes = {
        "mapping.fc0.weight": (24, 16),  # [out, in]
        "mapping.fc1.bias": (24,),
        "mapping.w_avg": (24,),
        "synthesis.b4.const": (32, 4, 4),
        "synthesis.b4.conv1.weight": (32, 32, 3, 3),
        "synthesis.b4.conv1.affine.weight": (32, 24),
        "synthesis.b4.conv1.noise_strength": (),
        "synthesis.b4.conv1.noise_const": (4, 4),
        "synthesis.b8.conv0.weight": (16, 32, 3, 3),
        "synthesis.b8.conv0.affine.weight": (32, 24),
        "synthesis.b8.conv0.noise_const": (8, 8),
        "synthesis.b16.torgb.weight": (3, 8, 1, 1),
        "synthesis.b16.torgb.affine.bias": (8,),
        "synthesis.b16.resample_filter": (4, 4),
    }
    for name, shape in shapes.items():
        assert tuple(state[name].shape) == shape, name
    assert torch.allclose(state["synthesis.b8.resample_filter"].sum(), torch.tensor(1.0))
    assert torch.all(state["synthesis.b8.conv0.affine.bias"] == 1)  # styles start at 1


def test_discriminator_state_dict_follows_ada_names():
    config = DiscriminatorConfig(resolution=16, channels=(32, 16, 8))
    state = Discriminator(config).state_dict()
    expected = []
    for res in (16, 8):
        expected.append(f"b{res}.resample_filter")
        if res == 16:
            expected += ["b16.fromrgb.weight", "b16.fromrgb.bias", "b16.fromrgb.resample_filter"]
        for conv in ("conv0", "conv1"):
            expected += [f"b{res}.{conv}.{n}" for n in ("weight", "bias", "resample_filter")]
        expected += [f"b{res}.skip.weight", f"b{res}.skip.resample_filter"]
    expected += ["b4.conv.weight", "b4.conv.bias", "b4.conv.resample_filter"]
    expected += ["b4.fc.weight", "b4.fc.bias", "b4.out.weight", "b4.out.bias"]
    assert list(state) == expected
    assert tuple(state["b16.fromrgb.weight"].shape) == (8, 3, 1, 1)
    assert tuple(state["b16.conv1.weight"].shape) == (16, 8, 3, 3)  # tmp 8 -> out 16
    assert tuple(state["b4.conv.weight"].shape) == (32, 33, 3, 3)  # + 1 stddev channel
    assert tuple(state["b4.fc.weight"].shape) == (32, 32 * 16)
    assert tuple(state["b4.out.weight"].shape) == (1, 32)


def test_num_ws_and_channel_schedule():
    assert GeneratorConfig(resolution=64).num_ws == 10
    assert GeneratorConfig(resolution=512).num_ws == 16  # the config-f car: 16 ws
    assert Generator(TINY).num_ws == TINY.num_ws == 6
    sched = GeneratorConfig(resolution=512).channels_per_resolution()
    assert sched[4] == sched[64] == 512 and sched[128] == 256 and sched[512] == 64
    with pytest.raises(AssetganError, match="one positive count per resolution"):
        GeneratorConfig(resolution=16, channels=(8, 8))
    with pytest.raises(AssetganError, match="power of two"):
        GeneratorConfig(resolution=48)


def test_config_json_round_trip_and_unknown_field():
    config = GeneratorConfig(resolution=32, channels=(8, 8, 8, 8), crop_rows=(4, 28))
    assert GeneratorConfig.from_dict(config.to_dict()) == config
    with pytest.raises(AssetganError, match="unknown fields"):
        GeneratorConfig.from_dict({**config.to_dict(), "fmaps": 2})


# --- ops against independent references ---------------------------------------------------------


def _zero_insert(x: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, 2H-1, 2W-1] with zeros between samples."""
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, 2 * h - 1, 2 * w - 1)
    out[:, :, ::2, ::2] = x
    return out


def _fir(x: torch.Tensor, pad: int, gain: float) -> torch.Tensor:
    """Depthwise [1,3,3,1] filter, symmetric padding."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps) / 64 * gain
    c = x.shape[1]
    return F.conv2d(F.pad(x, (pad,) * 4), kernel.expand(c, 1, 4, 4), groups=c)


def _modconv_reference(x, weight, styles, up2=False, demodulate=True):
    """One sample at a time, with the weight explicitly modulated (and demodulated)."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / w.square().sum(dim=(1, 2, 3), keepdim=True).sqrt()
        xb = x[b : b + 1]
        k = weight.shape[-1]
        if up2:  # transposed conv == zero insertion + full true convolution
            full = F.conv2d(F.pad(_zero_insert(xb), (k - 1,) * 4), w.flip((2, 3)))
            outs.append(_fir(full, pad=1, gain=4.0))
        else:
            outs.append(F.conv2d(xb, w, padding=k // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("up2", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
def test_modulated_conv_matches_per_sample_reference(up2, demodulate):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 6, 6, generator=gen)
    weight = torch.randn(7, 5, 3, 3, generator=gen)
    styles = torch.randn(3, 5, generator=gen) + 1
    f = ops.setup_filter([1, 3, 3, 1])
    ours = ops.modulated_conv2d(x, weight, styles, None, up2, f, demodulate)
    ref = _modconv_reference(x, weight, styles, up2, demodulate)
    assert ours.shape == ref.shape == (3, 7, 12 if up2 else 6, 12 if up2 else 6)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_fir_resampling_matches_scipy_upfirdn():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((5, 7))
    taps = np.array([1.0, 3.0, 3.0, 1.0]) / 8
    f = ops.setup_filter([1, 3, 3, 1])
    x = torch.from_numpy(image).float()[None, None]
    # up: separable scipy upfirdn (gain 2 per axis), full output trimmed by one sample in front
    up_rows = signal.upfirdn(taps * 2, image, up=2, axis=0)[1 : 1 + 10]
    up_ref = signal.upfirdn(taps * 2, up_rows, up=2, axis=1)[:, 1 : 1 + 14]
    np.testing.assert_allclose(ops.upsample2d(x, f)[0, 0].numpy(), up_ref, atol=1e-5)
    # down: pad one sample on each side, full convolution, keep samples 3, 5, 7, ...
    square = rng.standard_normal((6, 6))

    def down_1d(v: np.ndarray) -> np.ndarray:
        return np.convolve(np.pad(v, 1), taps)[3 : 3 + 6 : 2]

    down_ref = np.apply_along_axis(down_1d, 1, np.apply_along_axis(down_1d, 0, square))
    got = ops.downsample2d(torch.from_numpy(square).float()[None, None], f)[0, 0].numpy()
    np.testing.assert_allclose(got, down_ref, atol=1e-5)
    # the DC level survives both
    ones = torch.ones(1, 1, 8, 8)
    assert torch.allclose(ops.upsample2d(ones, f)[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12))


def test_down_conv_equals_filter_then_strided_conv():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 8, 8, generator=gen)
    weight = torch.randn(6, 4, 3, 3, generator=gen)
    f = ops.setup_filter([1, 3, 3, 1])
    ref = F.conv2d(_fir(x, pad=2, gain=1.0), weight, stride=2)
    torch.testing.assert_close(ops.conv2d_down2(x, weight, f), ref)
    one = torch.randn(6, 4, 1, 1, generator=gen)
    ref_1x1 = F.conv2d(_fir(x, pad=1, gain=1.0)[..., ::2, ::2], one)
    torch.testing.assert_close(ops.conv2d_down2(x, one, f), ref_1x1)


def test_demodulation_gives_unit_variance_outputs():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(16, 64, 16, 16, generator=gen)
    weight = torch.randn(48, 64, 3, 3, generator=gen)
    styles = torch.exp(torch.randn(16, 64, generator=gen))  # wildly different per sample
    out = ops.modulated_conv2d(x, weight, styles)
    per_sample_var = out.var(dim=(1, 2, 3))
    assert torch.all((per_sample_var > 0.8) & (per_sample_var < 1.2)), per_sample_var
    raw = ops.modulated_conv2d(x, weight, styles, demodulate=False)
    assert raw.var(dim=(1, 2, 3)).max() / raw.var(dim=(1, 2, 3)).min() > 5


def test_minibatch_std_matches_group_loop():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(8, 6, 4, 4, generator=gen)
    out = MinibatchStdLayer(group_size=4)(x)
    assert out.shape == (8, 7, 4, 4)
    n = 8 // 4
    for sub in range(n):  # group `sub` holds samples sub, sub + n, sub + 2n, ...
        members = x[sub::n]
        expected = members.std(dim=0, unbiased=False).mean()
        for b in range(sub, 8, n):
            torch.testing.assert_close(out[b, 6], expected.expand(4, 4), rtol=1e-4, atol=1e-5)


# --- mapping, truncation, features -------------------------------------------------------------


def test_truncation_psi_zero_gives_w_avg_and_cutoff_limits_it():
    generator = _tiny_generator()
    z = torch.randn(4, 16)
    w_avg = generator.mapping.w_avg
    ws0 = generator.mapping(z, truncation_psi=0.0)
    torch.testing.assert_close(ws0, w_avg.expand_as(ws0))
    full = generator.mapping(z)
    cut = generator.mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(cut[:, :2], w_avg.expand(4, 2, -1))
    torch.testing.assert_close(cut[:, 2:], full[:, 2:])
    half = generator.mapping(z, truncation_psi=0.5)
    torch.testing.assert_close(half, w_avg + 0.5 * (full - w_avg))


def test_w_avg_tracks_in_training_mode_only():
    generator = _tiny_generator()
    z = torch.randn(8, 16)
    before = generator.mapping.w_avg.clone()
    generator.mapping(z)  # eval: untouched
    torch.testing.assert_close(generator.mapping.w_avg, before)
    generator.train()
    w = generator.mapping(z)[:, 0]
    expected = before * 0.995 + w.detach().mean(0) * 0.005
    torch.testing.assert_close(generator.mapping.w_avg, expected)


def test_feature_taps_have_documented_names_channels_and_shapes():
    generator = _tiny_generator()
    taps = generator.synthesis.feature_taps()
    assert [t.name for t in taps] == [
        "b4.const",
        "b4.conv1",
        "b8.conv0",
        "b8.conv1",
        "b16.conv0",
        "b16.conv1",
    ]
    assert [t.channels for t in taps] == [32, 32, 16, 16, 8, 8]
    ws = generator.mapping(torch.randn(2, 16))
    img, features = generator.synthesis(ws, noise_mode="const", return_features=True)
    assert list(features) == [t.name for t in taps]
    for tap in taps:
        assert features[tap.name].shape == (2, tap.channels, tap.resolution, tap.resolution)
    torch.testing.assert_close(img, generator.synthesis(ws, noise_mode="const"))
    const = generator.synthesis.b4.const
    torch.testing.assert_close(features["b4.const"], const.expand(2, -1, -1, -1))
    # a tap is the layer output the next layer consumes: feed it on and get the next tap
    next_tap = generator.synthesis.b8.conv1(features["b8.conv0"], ws[:, 2], noise_mode="const")
    torch.testing.assert_close(features["b8.conv1"], next_tap)


def test_noise_modes_and_seeded_random_noise():
    generator = _tiny_generator()
    ws = generator.mapping(torch.randn(2, 16))
    const_a = generator.synthesis(ws, noise_mode="const")
    torch.testing.assert_close(const_a, generator.synthesis(ws, noise_mode="const"))
    rand_a = generator.synthesis(ws, noise_generator=torch.Generator().manual_seed(5))
    rand_b = generator.synthesis(ws, noise_generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(rand_a, rand_b)
    assert not torch.allclose(rand_a, const_a)
    assert not torch.allclose(generator.synthesis(ws, noise_mode="none"), const_a)
    with pytest.raises(ValueError, match="noise_mode"):
        generator.synthesis(ws, noise_mode="bogus")
    with pytest.raises(ValueError, match="expected shape"):
        generator.synthesis(ws[:, :3])


def test_crop_rows_crops_images_not_features():
    config = dataclasses.replace(TINY, crop_rows=(2, 14))
    generator = _tiny_generator(config=config)
    full = _tiny_generator()
    ws = full.mapping(torch.randn(2, 16))
    img, features = generator.synthesis(ws, noise_mode="const", return_features=True)
    assert img.shape == (2, 3, 12, 16) and config.image_shape == (3, 12, 16)
    torch.testing.assert_close(img, full.synthesis(ws, noise_mode="const")[:, :, 2:14])
    assert features["b16.conv1"].shape[-2:] == (16, 16)


# --- sampling and checkpoints -----------------------------------------------------------------


def test_seeds_give_nvidia_latents_and_deterministic_ws():
    z = z_from_seeds([0, 7], 16)
    np.testing.assert_allclose(z[1].numpy(), np.random.RandomState(7).randn(16), rtol=1e-6)
    generator = _tiny_generator()
    torch.testing.assert_close(ws_from_seeds(generator, [3, 4]), ws_from_seeds(generator, [3, 4]))
    assert parse_index_list("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(AssetganError):
        parse_index_list("3-1")


def test_style_mixing_takes_listed_layers_from_donor():
    generator = _tiny_generator()
    a = ws_from_seeds(generator, [1])
    b = ws_from_seeds(generator, [2])
    mixed = crossover(a, b, 2)
    torch.testing.assert_close(mixed[:, :2], a[:, :2])
    torch.testing.assert_close(mixed[:, 2:], b[:, 2:])
    torch.testing.assert_close(mix_styles(a, b, [5])[:, 5], b[:, 5])
    with pytest.raises(AssetganError, match="outside"):
        mix_styles(a, b, [6])


def test_checkpoint_round_trip_gives_identical_images(tmp_path):
    generator = _tiny_generator(seed=7)
    path = save_generator(generator, tmp_path / "G.safetensors", info={"kimg": 1.5})
    assert (tmp_path / "G.json").is_file()
    loaded = load_generator(path)
    assert loaded.config == generator.config
    ws = ws_from_seeds(generator, [0, 1, 2])
    torch.testing.assert_close(
        loaded.synthesis(ws, noise_mode="const"),
        generator.synthesis(ws, noise_mode="const"),
        rtol=0,
        atol=0,
    )
    config, info = read_generator_header(path)
    assert config == generator.config and info == {"kimg": 1.5}
    half = load_generator(save_generator(generator, tmp_path / "G16.safetensors", fp16=True))
    assert (tmp_path / "G16.safetensors").stat().st_size < path.stat().st_size * 0.6
    torch.testing.assert_close(
        half.synthesis(ws, noise_mode="const"),
        generator.synthesis(ws, noise_mode="const"),
        rtol=0,
        atol=0.05,
    )


def test_checkpoint_errors_are_one_line_assetgan_errors(tmp_path):
    with pytest.raises(AssetganError, match="no such checkpoint"):
        load_generator(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(AssetganError, match="not a readable safetensors"):
        load_generator(bad)
    from assetgan.core.checkpoint import save_tensors

    foreign = save_tensors(tmp_path / "foreign.safetensors", {"x": torch.zeros(2)})
    with pytest.raises(AssetganError, match="gan import"):
        load_generator(foreign)


def test_safetensors_bytes_do_not_depend_on_the_metadata_order(tmp_path):
    """The library writes the header's metadata in hash-map order (it changed between
    processes); core.checkpoint writes it sorted, so equal models are equal bytes."""
    import json

    from safetensors.torch import save as safetensors_bytes

    from assetgan.core.checkpoint import canonical_header, load_tensors, save_tensors

    tensors = {"b": torch.arange(3.0), "a": torch.ones(2, 2, dtype=torch.float16)}
    metadata = {"zeta": "1", "alpha": json.dumps({"x": "é"}), "mid": "2"}
    first = canonical_header(safetensors_bytes(tensors, metadata=metadata))
    shuffled = dict(reversed(list(metadata.items())))
    assert canonical_header(safetensors_bytes(tensors, metadata=shuffled)) == first
    length = int.from_bytes(first[:8], "little")
    assert length % 8 == 0 and list(json.loads(first[8 : 8 + length])["__metadata__"]) == [
        "alpha", "mid", "zeta"
    ]  # fmt: skip
    path = save_tensors(tmp_path / "t.safetensors", tensors, metadata)
    assert path.read_bytes() == first
    loaded, read = load_tensors(path)
    assert torch.equal(loaded["b"], tensors["b"]) and torch.equal(loaded["a"], tensors["a"])
    assert read == metadata
