"""GanTrainConfig: everything a `gan train` run needs, saved as RUN_DIR/train_config.json.

Presets (docs/stylegan.md, "Presets"):
- `cpu64`: the compact model MEASURED.md found to learn cars on 2 CPU cores in ~1.5 h at 64x64:
  mapping 4 x 128 (lr multiplier 0.01), synthesis channels 128/128/64/32/16 at 4..64, residual D
  16/32/64/128/128 at 64..4 (both min(1024 // r, 128), so other resolutions follow the same
  rule), batch 16, lr 0.0025, R1 gamma 0.05 every 16 D steps, EMA 5 kimg (ada's batch * 10 / 32)
  with ramp-up 0.05, path-length regularisation off.
- `auto`: stylegan2-ada's "auto" GPU config for the resolution: channel_base 16384 (32768 at
  >= 512), mapping 2 x 512, batch min(4096 // res, 32), gamma 0.0002 * res^2 / batch,
  lr 0.0025 (0.002 at 1024), EMA batch * 10 / 32 kimg with ramp 0.05, path length weight 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.config import DiscriminatorConfig, GeneratorConfig

TRAIN_SCHEMA_VERSION = 1


class Preset(StrEnum):
    """Model + schedule presets (module docstring)."""

    cpu64 = "cpu64"
    auto = "auto"


# Fields that say how this invocation runs, not what the run is: left out of train_config.json.
NOT_SAVED = ("resume",)


@dataclass(frozen=True)
class GanTrainConfig:
    """A training run: models, data, optimisation, schedule and outputs."""

    data: str  # image folder (DIR/images if present, else DIR)
    out: str  # run directory (checkpoints, samples, metrics.jsonl, train_config.json)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)  # G (and G_ema) contract
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)  # D contract
    preset: Preset = Preset.cpu64  # the preset these settings came from (informational)
    total_kimg: float = 200.0  # train until this many thousand real images were shown
    batch: int = 16  # images per G and per D step
    g_lr: float = 0.0025  # Adam learning rate of G
    d_lr: float = 0.0025  # Adam learning rate of D
    betas: tuple[float, float] = (0.0, 0.99)  # Adam betas
    r1_gamma: float = 0.05  # R1 weight (gamma / 2 * |grad D(real)|^2), 0 = off
    d_reg_interval: int = 16  # lazy R1: every this many D steps, with lr/beta correction
    pl_weight: float = 0.0  # path-length regularisation weight, 0 = off (CPU default)
    g_reg_interval: int = 4  # lazy path-length regularisation interval
    pl_batch_shrink: int = 2  # path-length batch = batch // this
    pl_decay: float = 0.01  # decay of the path-length running mean
    style_mixing_prob: float = 0.9  # probability of two latents per batch
    xflip: bool = True  # mirror real images left-right with probability 0.5
    ema_kimg: float = 5.0  # G_ema half-life in thousand images
    ema_rampup: float | None = 0.05  # EMA half-life <= this * images seen, None = no ramp
    tick_kimg: float = 1.0  # log a metrics.jsonl line every this many kimg
    snap_kimg: float = 10.0  # checkpoint + sample grid (+ KID) every this many kimg
    keep_checkpoints: int = 3  # complete checkpoints kept (older ones are deleted), >= 1
    kid_images: int = 1000  # generated/real images for KID at each snapshot, 0 = no KID
    grid_seeds: int = 32  # fixed seeds 0..N-1 of the sample grid
    seed: int = 0  # everything random derives from (seed, iteration)
    device: Device = Device.auto  # torch device; run() saves the resolved one (cpu or cuda)
    resume: bool = False  # continue `out` from its latest checkpoint (not saved: NOT_SAVED)

    def __post_init__(self) -> None:
        for name, choice in (("preset", Preset), ("device", Device)):  # strings from JSON
            value = getattr(self, name)
            if value not in tuple(choice):
                raise AssetganError(
                    f"GanTrainConfig.{name} {value!r} is not one of {[c.value for c in choice]}"
                )
            object.__setattr__(self, name, choice(value))
        if self.generator.resolution != self.discriminator.resolution:
            raise AssetganError("GanTrainConfig: generator and discriminator resolutions differ")
        if self.generator.crop_rows is not None:
            raise AssetganError("GanTrainConfig: training with crop_rows is not supported")
        group = min(self.discriminator.mbstd_group_size, self.batch)
        if self.batch < 1 or self.batch % group:
            raise AssetganError(
                f"--batch {self.batch} must be a positive multiple of the minibatch-stddev "
                f"group size {self.discriminator.mbstd_group_size}"
            )
        for name in ("total_kimg", "tick_kimg", "snap_kimg", "g_lr", "d_lr", "ema_kimg"):
            if getattr(self, name) <= 0:
                raise AssetganError(f"GanTrainConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.d_reg_interval < 1 or self.g_reg_interval < 1 or self.keep_checkpoints < 1:
            raise AssetganError("GanTrainConfig: intervals and keep_checkpoints must be >= 1")
        if self.r1_gamma < 0 or self.pl_weight < 0 or not 0 <= self.style_mixing_prob <= 1:
            raise AssetganError("GanTrainConfig: gamma, pl_weight >= 0 and mixing prob in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in NOT_SAVED
        }
        data["preset"] = self.preset.value
        data["device"] = self.device.value
        data["generator"] = self.generator.to_dict()
        data["discriminator"] = self.discriminator.to_dict()
        data["betas"] = list(self.betas)
        return {"kind": "stylegan2_train", "schema_version": TRAIN_SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanTrainConfig:
        data = dict(data)
        if data.pop("schema_version", TRAIN_SCHEMA_VERSION) != TRAIN_SCHEMA_VERSION:
            raise AssetganError("train_config.json: unsupported schema_version")
        data.pop("kind", None)
        known = {f.name for f in dataclasses.fields(cls)} - set(NOT_SAVED)
        unknown = sorted(set(data) - known)
        if unknown:
            raise AssetganError(f"train_config.json: unknown fields {unknown}")
        data["generator"] = GeneratorConfig.from_dict(data["generator"])
        data["discriminator"] = DiscriminatorConfig.from_dict(data["discriminator"])
        data["betas"] = tuple(data.get("betas", (0.0, 0.99)))
        return cls(**data)


def preset_config(preset: Preset | str, data: str, out: str, resolution: int) -> GanTrainConfig:
    """The GanTrainConfig of a named preset at `resolution` (override fields with
    dataclasses.replace)."""
    name = Preset(preset)
    if name is Preset.cpu64:
        generator = GeneratorConfig(
            resolution=resolution,
            z_dim=128,
            w_dim=128,
            mapping_layers=4,
            channel_base=1024,
            channel_max=128,
        )
        discriminator = DiscriminatorConfig(
            resolution=resolution, channel_base=1024, channel_max=128
        )
        return GanTrainConfig(
            data=data,
            out=out,
            generator=generator,
            discriminator=discriminator,
            preset=name,
            batch=16,
            g_lr=0.0025,
            d_lr=0.0025,
            r1_gamma=0.05,
            ema_kimg=16 * 10 / 32,
        )
    batch = max(min(4096 // resolution, 32), 4)
    base = 32768 if resolution >= 512 else 16384
    lr = 0.002 if resolution >= 1024 else 0.0025
    return GanTrainConfig(
        data=data,
        out=out,
        generator=GeneratorConfig(resolution=resolution, mapping_layers=2, channel_base=base),
        discriminator=DiscriminatorConfig(resolution=resolution, channel_base=base),
        preset=name,
        batch=batch,
        g_lr=lr,
        d_lr=lr,
        r1_gamma=0.0002 * resolution**2 / batch,
        ema_kimg=batch * 10 / 32,
        pl_weight=2.0,
        tick_kimg=4.0,
        snap_kimg=200.0,
        kid_images=5000,
    )
