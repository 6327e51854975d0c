"""Pieces shared by the foreign-checkpoint converters (import_tf, import_ada, import_rosinality).

A converter turns one foreign generator into a `ForeignGenerator`: our GeneratorConfig (inferred
from the tensor shapes, plus the few settings only the file's kwargs know) and a state dict under
our names (docs/stylegan.md, "Parameter naming table"). Conventions per format are in
docs/stylegan_import.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import torch

from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan import ops


class ImportFormat(StrEnum):
    auto = "auto"  # detect from the file's contents
    tf = "tf"  # NVIDIA TensorFlow StyleGAN2 pickle (dnnlib.tflib.network.Network)
    ada = "ada"  # stylegan2-ada-pytorch / stylegan3 pickle (torch_utils.persistence objects)
    rosinality = "rosinality"  # rosinality/stylegan2-pytorch .pt ({"g_ema": state_dict, ...})


@dataclass(frozen=True)
class ForeignGenerator:
    """A converted foreign generator, ready to load into `Generator(config)`."""

    format: ImportFormat  # the source format
    config_fields: dict[str, Any]  # GeneratorConfig fields inferred from the file
    state: dict[str, torch.Tensor]  # our state-dict name -> float32 tensor (every entry)
    notes: tuple[str, ...]  # decisions worth telling the user ("used Gs of (G, D, Gs)", ...)


def as_tensor(value: Any, where: str, name: str) -> torch.Tensor:
    """A float32 CPU tensor from a numpy array or tensor; AssetganError for anything else."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to("cpu")
    elif isinstance(value, np.ndarray | np.generic | float | int):
        array = np.asarray(value)
        if array.dtype.kind not in "fiub":
            raise AssetganError(f"{where}: {name} holds {array.dtype} values, expected numbers")
        tensor = torch.from_numpy(np.array(array, order="C"))  # keeps 0-d arrays 0-d
    else:
        raise AssetganError(f"{where}: {name} is a {type(value).__name__}, expected an array")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float32)
    return tensor.to(torch.float32).contiguous()


def require(
    tensors: dict[str, Any],
    name: str,
    ndim: int,
    where: str,
    hint: str,
) -> torch.Tensor:
    """tensors[name] as float32 with `ndim` dims; a one-line error naming it otherwise."""
    if name not in tensors:
        raise AssetganError(f"{where}: {name} is missing ({hint})")
    tensor = as_tensor(tensors[name], where, name)
    if tensor.ndim != ndim:
        raise AssetganError(
            f"{where}: {name} has shape {list(tensor.shape)}, expected {ndim} dimensions"
        )
    return tensor


def block_resolutions(found: set[int], where: str, what: str) -> list[int]:
    """[4, 8, ..., R] from the resolutions seen in tensor names; error if there are gaps."""
    if not found or 4 not in found:
        raise AssetganError(f"{where}: no 4x4 synthesis block found in {what}")
    top = max(found)
    expected = [2**i for i in range(2, top.bit_length())]
    if top & (top - 1) or sorted(found) != expected:
        raise AssetganError(
            f"{where}: synthesis block resolutions {sorted(found)} are not 4, 8, ..., {top}"
        )
    return expected


def count_indexed(names: Any, template: str, start: int = 0) -> int:
    """How many of template.format(start), template.format(start + 1), ... are in `names`,
    counting until the first one that is missing (e.g. "mapping.fc{}.weight")."""
    count = 0
    while template.format(start + count) in names:
        count += 1
    return count


def shape_fields(
    state: dict[str, Any],  # converted state dict under our names
    resolutions: list[int],  # [4, 8, ..., R]
    num_mapping: int,  # mapping layers in `state`
    where: str,  # the file, for messages
    hint: str,  # what to do when a tensor is missing or malformed
) -> dict[str, Any]:
    """The GeneratorConfig fields the tensor shapes determine: resolution, z/w dims, image
    channels, mapping width and the channel schedule."""
    first = require(state, "mapping.fc0.weight", 2, where, hint)  # [H, Z]
    last = require(state, f"mapping.fc{num_mapping - 1}.weight", 2, where, hint)  # [W, H]
    const = require(state, "synthesis.b4.const", 3, where, hint)  # [C, 4, 4]
    channels = [const.shape[0]] + [
        require(state, f"synthesis.b{res}.conv1.weight", 4, where, hint).shape[0]
        for res in resolutions[1:]
    ]
    torgb = require(state, "synthesis.b4.torgb.weight", 4, where, hint)  # [C_img, C, 1, 1]
    return {
        "resolution": resolutions[-1],
        "z_dim": int(first.shape[1]),
        "w_dim": int(last.shape[0]),
        "img_channels": int(torgb.shape[0]),
        "mapping_layers": num_mapping,
        "mapping_features": None if first.shape[0] == last.shape[0] else int(first.shape[0]),
        **channel_fields(channels),
    }


def channel_fields(channels: list[int]) -> dict[str, Any]:
    """GeneratorConfig channel fields: base/max when they reproduce `channels`, else explicit.

    `channels` lists C at 4, 8, ..., R. Config-f gives channel_base 32768, channel_max 512.
    """
    resolutions = [4 * 2**i for i in range(len(channels))]
    channel_max = max(channels)
    candidates = [c * r for c, r in zip(channels, resolutions, strict=True) if c < channel_max]
    base = max(candidates) if candidates else channel_max * resolutions[-1]
    if all(min(base // r, channel_max) == c for c, r in zip(channels, resolutions, strict=True)):
        return {"channel_base": int(base), "channel_max": int(channel_max), "channels": None}
    return {"channels": tuple(int(c) for c in channels)}


def filter_taps(kernel_2d: torch.Tensor, where: str, name: str) -> tuple[float, ...]:
    """1-D taps of a separable FIR filter buffer (normalized outer product, any gain)."""
    taps = kernel_2d.sum(dim=1)
    taps = taps / taps.sum()
    rebuilt = ops.setup_filter(tuple(taps.tolist()))
    if not torch.allclose(rebuilt * kernel_2d.sum(), kernel_2d, atol=1e-6):
        raise AssetganError(f"{where}: {name} is not a separable FIR filter")
    standard = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    if taps.shape == standard.shape and torch.allclose(taps, standard, atol=1e-6):
        return (1.0, 3.0, 3.0, 1.0)
    return tuple(float(t) for t in taps)


def check_kwarg(value: Any, allowed: tuple[Any, ...], where: str, what: str, why: str) -> None:
    """AssetganError when a foreign setting takes a value our network does not implement."""
    if value not in allowed:
        raise AssetganError(f"{where}: {what} = {value!r} is not supported ({why})")
