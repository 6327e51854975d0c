"""The model contracts: frozen dataclasses that rebuild the exact networks from JSON.

A GeneratorConfig is saved inside every generator checkpoint (docs/stylegan.md), so loading a
file needs nothing but the file. Channel schedules follow stylegan2-ada-pytorch: a block at
resolution r has min(channel_base // r, channel_max) channels unless `channels` lists them
explicitly (one entry per resolution 4, 8, ..., resolution).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from assetgan.core.errors import AssetganError

SCHEMA_VERSION = 1


def _check_resolution(resolution: int, what: str) -> int:
    if resolution < 4 or resolution & (resolution - 1):
        raise AssetganError(f"{what}: resolution must be a power of two >= 4, got {resolution}")
    return int(math.log2(resolution))


def _channel_schedule(
    resolution: int,
    channel_base: int,
    channel_max: int,
    channels: tuple[int, ...] | None,
    what: str,
) -> dict[int, int]:
    log2 = _check_resolution(resolution, what)
    resolutions = [2**i for i in range(2, log2 + 1)]
    if channels is None:
        return {res: min(channel_base // res, channel_max) for res in resolutions}
    if len(channels) != len(resolutions) or any(int(c) < 1 for c in channels):
        raise AssetganError(
            f"{what}: channels must list one positive count per resolution {resolutions}, "
            f"got {list(channels)}"
        )
    return {res: int(c) for res, c in zip(resolutions, channels, strict=True)}


def _to_dict(config: Any, kind: str) -> dict[str, Any]:
    """A config dataclass as JSON-ready fields (tuples as lists) with kind and schema_version."""
    data = dataclasses.asdict(config)
    for key, value in data.items():
        if isinstance(value, tuple):
            data[key] = list(value)
    return {"kind": kind, "schema_version": SCHEMA_VERSION, **data}


def _from_dict(cls: type, data: dict[str, Any], what: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known - {"schema_version", "kind"})
    if unknown:
        raise AssetganError(f"{what}: unknown fields {unknown}; known fields: {sorted(known)}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise AssetganError(f"{what}: schema_version {version} is not supported")
    values = {}
    for key, value in data.items():
        if key in known:
            values[key] = tuple(value) if isinstance(value, list) else value
    try:
        return cls(**values)
    except TypeError as error:
        raise AssetganError(f"{what}: {error}") from None


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines a StyleGAN2 generator's parameters and forward pass."""

    resolution: int = 64  # output canvas side (square, power of two)
    z_dim: int = 512  # input latent Z dimensionality
    w_dim: int = 512  # intermediate latent W dimensionality
    img_channels: int = 3  # output colour channels
    mapping_layers: int = 8  # fully connected layers in the mapping network
    mapping_features: int | None = None  # hidden width of the mapping MLP, None = w_dim
    mapping_lr_multiplier: float = 0.01  # learning-rate multiplier of the mapping layers
    w_avg_beta: float = 0.995  # decay of the tracked W average (used by truncation)
    channel_base: int = 32768  # channels at resolution r = min(channel_base // r, channel_max)
    channel_max: int = 512  # cap on channels of any block
    channels: tuple[int, ...] | None = None  # explicit channels for 4, 8, ..., resolution
    use_noise: bool = True  # per-layer noise inputs with learned strength
    conv_clamp: float | None = None  # clamp conv outputs to +-X (ada fp16 models use 256)
    resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)  # 1-D FIR taps for up-sampling
    crop_rows: tuple[int, int] | None = None  # (top, bottom) canvas rows kept in output images

    def __post_init__(self) -> None:
        for name in ("z_dim", "w_dim", "img_channels", "mapping_layers"):
            if int(getattr(self, name)) < 1:
                raise AssetganError(f"GeneratorConfig.{name} must be >= 1")
        if self.crop_rows is not None:
            top, bottom = self.crop_rows
            if not 0 <= top < bottom <= self.resolution:
                raise AssetganError(
                    f"GeneratorConfig.crop_rows must satisfy 0 <= top < bottom <= "
                    f"{self.resolution}, got {self.crop_rows}"
                )
        self.channels_per_resolution()  # validates resolution and channels

    def channels_per_resolution(self) -> dict[int, int]:
        """{4: C4, 8: C8, ..., resolution: C} for the synthesis blocks."""
        return _channel_schedule(
            self.resolution, self.channel_base, self.channel_max, self.channels, "GeneratorConfig"
        )

    @property
    def num_ws(self) -> int:
        """Number of w vectors the synthesis consumes: one per conv layer plus the last ToRGB."""
        return 2 * _check_resolution(self.resolution, "GeneratorConfig") - 2

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of output images after the row crop."""
        if self.crop_rows is None:
            return (self.img_channels, self.resolution, self.resolution)
        return (self.img_channels, self.crop_rows[1] - self.crop_rows[0], self.resolution)

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self, "stylegan2_generator")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        return _from_dict(cls, data, "GeneratorConfig")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """A residual StyleGAN2 discriminator with minibatch standard deviation."""

    resolution: int = 64  # input image side (square, power of two)
    img_channels: int = 3  # input colour channels
    channel_base: int = 32768  # channels at resolution r = min(channel_base // r, channel_max)
    channel_max: int = 512  # cap on channels of any block
    channels: tuple[int, ...] | None = None  # explicit channels for 4, 8, ..., resolution
    mbstd_group_size: int = 4  # minibatch-stddev group size (the batch must divide by it)
    mbstd_num_channels: int = 1  # stddev feature channels appended at 4x4, 0 = off
    conv_clamp: float | None = None  # clamp conv outputs to +-X
    resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)  # 1-D FIR taps for down-sampling

    def __post_init__(self) -> None:
        if self.mbstd_group_size < 1 or self.mbstd_num_channels < 0:
            raise AssetganError("DiscriminatorConfig: mbstd_group_size >= 1, num_channels >= 0")
        if self.resolution < 8:
            raise AssetganError(
                f"DiscriminatorConfig: resolution must be >= 8, got {self.resolution}"
            )
        self.channels_per_resolution()

    def channels_per_resolution(self) -> dict[int, int]:
        """{4: C4, 8: C8, ..., resolution: C}."""
        return _channel_schedule(
            self.resolution,
            self.channel_base,
            self.channel_max,
            self.channels,
            "DiscriminatorConfig",
        )

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self, "stylegan2_discriminator")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        return _from_dict(cls, data, "DiscriminatorConfig")
