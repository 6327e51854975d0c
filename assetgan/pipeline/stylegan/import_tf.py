"""NVIDIA TensorFlow StyleGAN2 pickles (e.g. stylegan2-car-config-f.pkl) -> our generator.

The pickle holds `(G, D, Gs)` (or one Network, or a dict with G_ema/Gs) as TFNetworkStub states.
Variables are collected from the network and its components with '/'-joined prefixes
(`mapping/Dense0/weight`, `synthesis/8x8/Conv0_up/weight`, `dlatent_avg`, ...). TF stores raw
weights and scales them at run time by he_std * lrmul, exactly our equalized-lr convention, so
values are only re-laid out (docs/stylegan_import.md has the table):
FC weights [in, out] -> [out, in]; conv weights [k, k, I, O] -> [O, I, k, k]; Conv0_up weights
are also flipped spatially (TF's up-conv correlates, ours convolves); mod_bias + 1 (TF adds the
1 at run time, ours stores it); const [1, C, 4, 4] -> [C, 4, 4]; noise{i} [1, 1, r, r] -> [r, r].
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.import_common import (
    ForeignGenerator,
    ImportFormat,
    as_tensor,
    block_resolutions,
    check_kwarg,
    count_indexed,
    require,
    shape_fields,
)
from assetgan.pipeline.stylegan.safe_unpickle import TFNetworkStub

HINT = "expected an NVIDIA StyleGAN2 config-e/f generator"
IGNORED = {"lod", "synthesis/lod"}  # progressive-growing level, unused by skip generators


def is_tf(obj: Any) -> bool:
    """Does the unpickled object look like a TF network pickle?"""
    if isinstance(obj, TFNetworkStub):
        return True
    if isinstance(obj, tuple | list):
        return any(isinstance(item, TFNetworkStub) for item in obj)
    if isinstance(obj, dict):
        return any(isinstance(item, TFNetworkStub) for item in obj.values())
    return False


def pick_generator(obj: Any, where: str) -> tuple[TFNetworkStub, str]:
    """The EMA generator: Gs of (G, D, Gs), dict['G_ema'|'Gs'], or a lone generator network."""
    if isinstance(obj, tuple | list) and len(obj) == 3:
        if all(isinstance(net, TFNetworkStub) for net in obj):
            return obj[2], "used Gs (the EMA generator) of the (G, D, Gs) tuple"
    if isinstance(obj, dict):
        for key in ("G_ema", "Gs", "G"):
            if isinstance(obj.get(key), TFNetworkStub):
                return obj[key], f"used the {key!r} network"
    if isinstance(obj, TFNetworkStub) and "synthesis" in obj.components:
        return obj, f"used the pickled network {obj.name!r}"
    raise AssetganError(
        f"{where}: a TensorFlow pickle without a generator (expected (G, D, Gs) or a network "
        "with mapping and synthesis components)"
    )


def collect_variables(net: TFNetworkStub, where: str, prefix: str = "") -> dict[str, Any]:
    """{'mapping/Dense0/weight': array, ...}: own variables, then components' with prefixes."""
    params: dict[str, Any] = {}
    for entry in net.variables:
        if not (isinstance(entry, tuple | list) and len(entry) == 2):
            raise AssetganError(f"{where}: network {net.name!r} has a malformed variables list")
        params[prefix + str(entry[0])] = entry[1]
    for name, component in net.components.items():
        if isinstance(component, TFNetworkStub):
            params.update(collect_variables(component, where, f"{prefix}{name}/"))
    return params


def _all_kwargs(net: TFNetworkStub) -> dict[str, Any]:
    kwargs = dict(net.static_kwargs)
    for component in net.components.values():
        if isinstance(component, TFNetworkStub):
            kwargs.update(component.static_kwargs)
    return kwargs


def _check_architecture(net: TFNetworkStub, params: dict[str, Any], where: str) -> None:
    if net.version < 4 or any("/StyleMod/" in name for name in params):
        raise AssetganError(
            f"{where}: this is a StyleGAN1 network (TF pickle version {net.version}, AdaIN "
            "'StyleMod' layers), e.g. karras2019stylegan-cars-512x384.pkl; assetgan's generator is "
            "StyleGAN2 only (modulated convolution with demodulation, skip ToRGB), which cannot "
            "express StyleGAN1's instance normalisation, so StyleGAN1 is not supported "
            "(docs/stylegan_import.md)"
        )
    if any(re.fullmatch(r"synthesis/ToRGB_lod\d+/.*", name) for name in params):
        raise AssetganError(
            f"{where}: a StyleGAN2 'orig' (progressive ToRGB_lod) generator is not supported; "
            "only the skip architecture (configs e and f) is"
        )
    if any(re.fullmatch(r"synthesis/\d+x\d+/Skip/.*", name) for name in params):
        raise AssetganError(
            f"{where}: a StyleGAN2 'resnet' generator is not supported; only the skip "
            "architecture (configs e and f) is"
        )
    if any(name.startswith(("mapping/LabelConcat", "mapping/LabelEmbed")) for name in params):
        raise AssetganError(f"{where}: conditional (label) generators are not supported")
    kwargs = _all_kwargs(net)
    unsupported = "our generator implements StyleGAN2 config-e/f only"
    check_kwarg(kwargs.get("label_size", 0), (0, None), where, "label_size", unsupported)
    check_kwarg(kwargs.get("architecture", "skip"), ("skip",), where, "architecture", unsupported)
    for key in ("nonlinearity", "mapping_nonlinearity"):
        check_kwarg(kwargs.get(key, "lrelu"), ("lrelu",), where, key, unsupported)
    check_kwarg(kwargs.get("normalize_latents", True), (True,), where, "normalize_latents", "")
    synthesis_func = kwargs.get("synthesis_func", "G_synthesis_stylegan2")
    check_kwarg(synthesis_func, ("G_synthesis_stylegan2",), where, "synthesis_func", unsupported)


def _modulated(
    params: dict[str, Any],
    scope: str,  # e.g. 'synthesis/8x8/Conv1'
    target: str,  # e.g. 'synthesis.b8.conv1'
    where: str,
    flip: bool = False,  # Conv0_up: TF correlates on the upsampled input, we convolve
    noise: str | None = None,  # TF noise variable name, None for ToRGB
) -> tuple[dict[str, torch.Tensor], list[str]]:
    weight = require(params, f"{scope}/weight", 4, where, HINT)  # [k, k, I, O]
    if flip:
        weight = weight.flip(0, 1)
    out = {
        f"{target}.weight": weight.permute(3, 2, 0, 1).contiguous(),  # [O, I, k, k]
        f"{target}.bias": require(params, f"{scope}/bias", 1, where, HINT),
        f"{target}.affine.weight": require(params, f"{scope}/mod_weight", 2, where, HINT).t(),
        f"{target}.affine.bias": require(params, f"{scope}/mod_bias", 1, where, HINT) + 1,
    }
    used = [f"{scope}/{n}" for n in ("weight", "bias", "mod_weight", "mod_bias")]
    if noise is not None and f"{scope}/noise_strength" in params:
        out[f"{target}.noise_strength"] = require(params, f"{scope}/noise_strength", 0, where, HINT)
        out[f"{target}.noise_const"] = require(params, noise, 4, where, HINT)[0, 0]
        used += [f"{scope}/noise_strength", noise]
    return out, used


def convert(obj: Any, where: str) -> ForeignGenerator:
    """Convert an unpickled TF StyleGAN2 pickle to our config fields and state dict."""
    net, note = pick_generator(obj, where)
    params = collect_variables(net, where)
    _check_architecture(net, params, where)
    kwargs = _all_kwargs(net)

    found = {int(m.group(1)) for n in params if (m := re.match(r"synthesis/(\d+)x\1/", n))}
    resolutions = block_resolutions(found, where, "the synthesis variables")
    num_mapping = count_indexed(params, "mapping/Dense{}/weight")
    if num_mapping == 0:
        raise AssetganError(f"{where}: mapping/Dense0/weight is missing ({HINT})")

    state: dict[str, torch.Tensor] = {}
    used: list[str] = []
    # Mapping network: Dense{i} weight [in, out] -> fc{i}.weight [out, in].
    for idx in range(num_mapping):
        scope = f"mapping/Dense{idx}"
        state[f"mapping.fc{idx}.weight"] = require(params, f"{scope}/weight", 2, where, HINT).t()
        state[f"mapping.fc{idx}.bias"] = require(params, f"{scope}/bias", 1, where, HINT)
        used += [f"{scope}/weight", f"{scope}/bias"]
    state["mapping.w_avg"] = require(params, "dlatent_avg", 1, where, HINT)
    used.append("dlatent_avg")

    # Synthesis: noise{i} is layer i's noise; layer 0 = 4x4 Conv, then Conv0_up, Conv1 per block.
    const = require(params, "synthesis/4x4/Const/const", 4, where, HINT)  # [1, C, 4, 4]
    state["synthesis.b4.const"] = const[0]
    used.append("synthesis/4x4/Const/const")
    for res in resolutions:
        log2 = int(np.log2(res))
        pieces = []
        if res == 4:
            pieces.append(("Conv", "conv1", False, "synthesis/noise0"))
        else:
            pieces.append(("Conv0_up", "conv0", True, f"synthesis/noise{2 * log2 - 5}"))
            pieces.append(("Conv1", "conv1", False, f"synthesis/noise{2 * log2 - 4}"))
        pieces.append(("ToRGB", "torgb", False, None))
        for tf_name, our_name, flip, noise in pieces:
            converted, names = _modulated(
                params,
                f"synthesis/{res}x{res}/{tf_name}",
                f"synthesis.b{res}.{our_name}",
                where,
                flip=flip,
                noise=noise,
            )
            state.update(converted)
            used += names

    leftovers = sorted(set(params) - set(used) - IGNORED)
    if leftovers:
        raise AssetganError(
            f"{where}: unexpected variables {leftovers[:4]}{'...' if len(leftovers) > 4 else ''} "
            f"({HINT})"
        )

    resample = kwargs.get("resample_kernel") or (1, 3, 3, 1)
    w_avg_beta = kwargs.get("dlatent_avg_beta", kwargs.get("w_avg_beta", 0.995))
    fields: dict[str, Any] = {
        **shape_fields(state, resolutions, num_mapping, where, HINT),
        "mapping_lr_multiplier": float(kwargs.get("mapping_lrmul", 0.01)),
        "w_avg_beta": 0.995 if w_avg_beta is None else float(w_avg_beta),
        "use_noise": "synthesis.b4.conv1.noise_strength" in state,
        "conv_clamp": None if kwargs.get("conv_clamp") is None else float(kwargs["conv_clamp"]),
        "resample_filter": tuple(float(t) for t in resample),
    }
    notes = [note, f"TF network {net.name!r}, pickle version {net.version}"]
    if "num_fp16_res" in kwargs and kwargs["num_fp16_res"]:
        notes.append("fp16 layers of the TF network run in float32 here")
    return ForeignGenerator(ImportFormat.tf, fields, _float32(state, where), tuple(notes))


def _float32(state: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
    return {name: as_tensor(t, where, name) for name, t in state.items()}
