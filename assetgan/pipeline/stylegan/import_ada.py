"""stylegan2-ada-pytorch / stylegan3 pickles of StyleGAN2 architecture -> our generator.

The pickle is `dict(G, D, G_ema, augment_pipe, training_set_kwargs)`; each network is a
`PersistentObject` (safe_unpickle.py) whose state holds `_parameters`, `_buffers` and
`_modules`. Our parameter names equal ada's, so tensors map one to one; the config comes from
the shapes and from `G._init_kwargs` (lr multiplier, conv_clamp, resample filter).
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
    check_kwarg,
    count_indexed,
    filter_taps,
    shape_fields,
)
from assetgan.pipeline.stylegan.safe_unpickle import PersistentObject

HINT = "expected a stylegan2-ada-pytorch generator with the skip architecture"
UNSUPPORTED = "our generator implements StyleGAN2 with the skip architecture only"


def is_ada(obj: Any) -> bool:
    """Does the unpickled object look like a stylegan2-ada / stylegan3 network pickle?"""
    if isinstance(obj, PersistentObject):
        return True
    return isinstance(obj, dict) and any(isinstance(v, PersistentObject) for v in obj.values())


def pick_generator(obj: Any, where: str) -> tuple[PersistentObject, str]:
    """G_ema (the EMA generator) if present, else G, else the object itself."""
    if isinstance(obj, dict):
        for key in ("G_ema", "G"):
            if isinstance(obj.get(key), PersistentObject):
                return obj[key], f"used the {key!r} network"
        raise AssetganError(
            f"{where}: no 'G_ema' or 'G' network in the pickle (keys: {sorted(map(str, obj))})"
        )
    return obj, f"used the pickled {obj.class_name!r} network"


def convert(obj: Any, where: str) -> ForeignGenerator:
    """Convert an unpickled ada/stylegan3 pickle to our config fields and state dict."""
    net, note = pick_generator(obj, where)
    if "SynthesisInput" in net.class_names():
        raise AssetganError(
            f"{where}: a StyleGAN3 (alias-free, config t/r) generator is not supported; only "
            "StyleGAN2-architecture pickles from stylegan3 (--cfg=stylegan2) are"
        )
    if net.class_name != "Generator":
        raise AssetganError(
            f"{where}: the network is a {net.class_name!r}, expected a 'Generator' ({HINT})"
        )
    tensors = net.named_tensors()
    if any(name.startswith("mapping.embed.") for name in tensors):
        raise AssetganError(f"{where}: conditional (c_dim > 0) generators are not supported")

    kwargs = net.init_kwargs
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    known = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs"}
    synthesis_kwargs = dict(kwargs.get("synthesis_kwargs") or {})
    synthesis_kwargs.update(
        {k: v for k, v in kwargs.items() if k not in known | {"synthesis_kwargs"}}
    )
    check_kwarg(kwargs.get("c_dim", 0), (0, None), where, "c_dim", UNSUPPORTED)
    arch = synthesis_kwargs.get("architecture", "skip")
    check_kwarg(arch, ("skip",), where, "synthesis architecture", UNSUPPORTED)
    for what, value in (
        ("mapping activation", mapping_kwargs.get("activation", "lrelu")),
        ("synthesis activation", synthesis_kwargs.get("activation", "lrelu")),
    ):
        check_kwarg(value, ("lrelu",), where, what, UNSUPPORTED)

    found = {int(m.group(1)) for n in tensors if (m := re.match(r"synthesis\.b(\d+)\.", n))}
    resolutions = block_resolutions(found, where, "the synthesis tensors")
    num_mapping = count_indexed(tensors, "mapping.fc{}.weight")
    if num_mapping == 0:
        raise AssetganError(f"{where}: mapping.fc0.weight is missing ({HINT})")

    state = {name: as_tensor(value, where, name) for name, value in tensors.items()}
    shaped = shape_fields(state, resolutions, num_mapping, where, HINT)
    if "synthesis.b4.resample_filter" in state:
        taps = filter_taps(state["synthesis.b4.resample_filter"], where, "resample_filter")
    else:
        taps = tuple(float(t) for t in synthesis_kwargs.get("resample_filter", (1, 3, 3, 1)))
    w_avg_beta = mapping_kwargs.get("w_avg_beta", 0.995)
    conv_clamp = synthesis_kwargs.get("conv_clamp")
    fields: dict[str, Any] = {
        **shaped,
        "mapping_lr_multiplier": float(mapping_kwargs.get("lr_multiplier", 0.01)),
        "w_avg_beta": 0.995 if w_avg_beta is None else float(w_avg_beta),
        "use_noise": "synthesis.b4.conv1.noise_strength" in state,
        "conv_clamp": None if conv_clamp is None else float(conv_clamp),
        "resample_filter": taps,
    }
    notes = [note]
    if synthesis_kwargs.get("num_fp16_res"):
        notes.append(
            f"the {synthesis_kwargs['num_fp16_res']} fp16 resolutions run in float32 here "
            f"(conv_clamp {conv_clamp} kept)"
        )
    return ForeignGenerator(ImportFormat.ada, fields, _float32(state), tuple(notes))


def _float32(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: t.to(torch.float32) for name, t in state.items()}
