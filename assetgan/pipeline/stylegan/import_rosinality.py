"""rosinality/stylegan2-pytorch checkpoints (.pt) -> our generator.

The file (read by `torch.load(weights_only=True)`) is `{"g_ema": state_dict, "latent_avg": [W],
...}` (converted NVIDIA models) or a training checkpoint `{"g", "d", "g_ema", "args", ...}`.
rosinality's layers use our equalized-lr convention (weights stored raw, scaled at run time:
EqualLinear by lr_mul / sqrt(fan_in) with biases times lr_mul; modulated convs by
1 / sqrt(fan_in)), its modulation bias is stored with the +1 included, and its up-sampling conv
(transposed conv + blur, pad 1/1) is ours, so tensors only change names and shapes
(docs/stylegan_import.md). latent_avg -> mapping.w_avg; when the file has none, w_avg is the
mean of the mapping over 4096 seeded z (noted in the checkpoint info).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.import_common import (
    ForeignGenerator,
    ImportFormat,
    as_tensor,
    block_resolutions,
    count_indexed,
    filter_taps,
    require,
    shape_fields,
)
from assetgan.pipeline.stylegan.networks import MappingNetwork

HINT = "expected a rosinality/stylegan2-pytorch Generator state dict"
W_AVG_SAMPLES = 4096  # z draws averaged when the file carries no latent_avg
W_AVG_SEED = 0


def is_rosinality(obj: Any) -> bool:
    """Does the loaded object look like a rosinality checkpoint?"""
    if not isinstance(obj, dict):
        return False
    for key in ("g_ema", "g"):
        if isinstance(obj.get(key), dict) and "input.input" in obj[key]:
            return True
    return False


def _modulated(
    sd: dict[str, Any], source: str, target: str, where: str, torgb: bool = False
) -> dict[str, torch.Tensor]:
    out = {
        f"{target}.weight": require(sd, f"{source}.conv.weight", 5, where, HINT)[0],
        f"{target}.affine.weight": require(sd, f"{source}.conv.modulation.weight", 2, where, HINT),
        f"{target}.affine.bias": require(sd, f"{source}.conv.modulation.bias", 1, where, HINT),
    }
    if torgb:
        out[f"{target}.bias"] = require(sd, f"{source}.bias", 4, where, HINT).reshape(-1)
    else:
        out[f"{target}.bias"] = require(sd, f"{source}.activate.bias", 1, where, HINT)
        out[f"{target}.noise_strength"] = require(
            sd, f"{source}.noise.weight", 1, where, HINT
        ).reshape([])
    return out


def convert(obj: Any, where: str) -> ForeignGenerator:
    """Convert a loaded rosinality checkpoint to our config fields and state dict."""
    key = "g_ema" if isinstance(obj.get("g_ema"), dict) else "g"
    sd = obj[key]
    notes = [f"used the {key!r} state dict"]
    if any(name.startswith(("dwt", "iwt")) or ".iwt." in name for name in sd):
        raise AssetganError(f"{where}: SWAGAN (wavelet) generators are not supported")

    num_mapping = count_indexed(sd, "style.{}.weight", start=1)
    if num_mapping == 0:
        raise AssetganError(f"{where}: style.1.weight is missing ({HINT})")
    num_blocks = count_indexed(sd, "to_rgbs.{}.conv.weight")
    resolutions = block_resolutions(
        {4 * 2**i for i in range(num_blocks + 1)}, where, "the state dict"
    )

    state: dict[str, torch.Tensor] = {}
    for idx in range(num_mapping):  # style.0 is PixelNorm; EqualLinear weights are [out, in]
        state[f"mapping.fc{idx}.weight"] = require(sd, f"style.{idx + 1}.weight", 2, where, HINT)
        state[f"mapping.fc{idx}.bias"] = require(sd, f"style.{idx + 1}.bias", 1, where, HINT)
    const = require(sd, "input.input", 4, where, HINT)  # [1, C, 4, 4]
    state["synthesis.b4.const"] = const[0]
    state.update(_modulated(sd, "conv1", "synthesis.b4.conv1", where))
    state.update(_modulated(sd, "to_rgb1", "synthesis.b4.torgb", where, torgb=True))
    noise_names = ["synthesis.b4.conv1.noise_const"]
    for idx, res in enumerate(resolutions[1:]):
        block = f"synthesis.b{res}"
        state.update(_modulated(sd, f"convs.{2 * idx}", f"{block}.conv0", where))
        state.update(_modulated(sd, f"convs.{2 * idx + 1}", f"{block}.conv1", where))
        state.update(_modulated(sd, f"to_rgbs.{idx}", f"{block}.torgb", where, torgb=True))
        noise_names += [f"{block}.conv0.noise_const", f"{block}.conv1.noise_const"]
    for idx, name in enumerate(noise_names):  # noises.noise_{i}: [1, 1, r, r], layer order
        state[name] = require(sd, f"noises.noise_{idx}", 4, where, HINT)[0, 0]

    known = re.compile(
        r"style\.\d+\.(weight|bias)|input\.input|noises\.noise_\d+|"
        r"(conv1|to_rgb1|convs\.\d+|to_rgbs\.\d+)\.(conv\.(weight|modulation\.(weight|bias)|"
        r"blur\.kernel)|noise\.weight|activate\.bias|bias|upsample\.kernel)"
    )
    leftovers = sorted(name for name in sd if not known.fullmatch(name))
    if leftovers or f"convs.{2 * (len(resolutions) - 1)}.conv.weight" in sd:
        raise AssetganError(
            f"{where}: unexpected tensors {leftovers[:4] or ['convs beyond the last to_rgbs']} "
            f"({HINT})"
        )

    taps: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)
    if "convs.0.conv.blur.kernel" in sd:
        blur = as_tensor(sd["convs.0.conv.blur.kernel"], where, "convs.0.conv.blur.kernel")
        taps = filter_taps(blur, where, "convs.0.conv.blur.kernel")

    args = obj.get("args")
    lr_mlp = float(getattr(args, "lr_mlp", 0.01) if args is not None else 0.01)
    fields: dict[str, Any] = {
        **shape_fields(state, resolutions, num_mapping, where, HINT),
        "mapping_lr_multiplier": lr_mlp,
        "use_noise": True,
        "resample_filter": taps,
    }
    if obj.get("latent_avg") is not None:
        state["mapping.w_avg"] = as_tensor(obj["latent_avg"], where, "latent_avg").reshape(-1)
        notes.append("w_avg from latent_avg")
    else:
        state["mapping.w_avg"] = _estimate_w_avg(state, fields)
        notes.append(f"no latent_avg in the file: w_avg = mean of {W_AVG_SAMPLES} mapped z")
    return ForeignGenerator(ImportFormat.rosinality, fields, state, tuple(notes))


def _estimate_w_avg(state: dict[str, torch.Tensor], fields: dict[str, Any]) -> torch.Tensor:
    """Mean of the mapping network over W_AVG_SAMPLES seeded z (what truncation needs)."""
    mapping = MappingNetwork(
        z_dim=fields["z_dim"],
        w_dim=fields["w_dim"],
        num_ws=1,
        num_layers=fields["mapping_layers"],
        layer_features=fields["mapping_features"],
        lr_multiplier=fields["mapping_lr_multiplier"],
    ).eval()
    own = {k[len("mapping.") :]: v for k, v in state.items() if k.startswith("mapping.fc")}
    mapping.load_state_dict({**own, "w_avg": torch.zeros(fields["w_dim"])})
    z = torch.randn(
        W_AVG_SAMPLES, fields["z_dim"], generator=torch.Generator().manual_seed(W_AVG_SEED)
    )
    with torch.no_grad():
        return mapping(z)[:, 0].mean(dim=0)
