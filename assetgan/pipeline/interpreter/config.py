"""The interpreter's contracts: InterpreterTrainConfig (what `interpreter train` reads and
writes), InterpreterTrainSettings (how the ensembles are trained) and InterpreterConfig (what was
built).

InterpreterConfig is saved in every interpreter checkpoint, so loading rebuilds the exact
ensembles and ties them to the generator (by SHA-256) and taps they were trained on; its `train`
field is the InterpreterTrainSettings used (to_dict), without paths or device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.pipeline.interpreter.features import TapGeometry
from assetgan.pipeline.stylegan.networks import FeatureTap

SCHEMA_VERSION = 1
INTERPRETER_KIND = "style_interpreter"


# Tuple-valued fields: lists in JSON, tuples in the dataclass (None stays None).
_SEQUENCE_FIELDS = ("crop_rows", "class_names", "keypoint_names", "parts_hidden", "keypoint_hidden")


class FeatureDtype(StrEnum):
    """Storage precision of the native feature maps during training."""

    float16 = "float16"  # as DatasetGAN (half the memory)
    float32 = "float32"


@dataclass(frozen=True)
class InterpreterTrainSettings:
    """How the ensembles are trained (DatasetGAN's settings by default, ANCHORS.md)."""

    members: int = 10  # N ensemble members per head
    batch_pixels: int = 64  # pixels per iteration and member (paper: 64; larger is fine on CPU)
    lr: float = 1e-3  # Adam learning rate
    max_epochs: int = 100  # upper bound on passes over the training pixels
    early_stop_epoch: int = 3  # early stopping counts only in epochs with index > this
    patience: int = 50  # stop a member when its batch loss sets no new minimum for > this many
    max_iterations: int | None = None  # optional cap on iterations per head (tests, benchmarks)
    min_class_pixels: int = 30  # a class with fewer pixels in an image is reset to background
    keypoints: bool = True  # also train the keypoint heatmap ensemble
    heatmap_sigma: float = 0.025  # Gaussian heatmap sigma as a fraction of the image width
    keypoint_focus: float = 0.5  # share of keypoint-head pixels drawn within 3 sigma of a keypoint
    visible_amplitude: float = 1.0  # heatmap peak of a visible keypoint (v = 2)
    occluded_amplitude: float = 0.5  # heatmap peak of a labeled occluded keypoint (v = 1)
    feature_dtype: FeatureDtype = FeatureDtype.float16  # storage of the native feature maps
    seed: int = 0  # initialisation and pixel order; same seed, same checkpoint

    def validate(self) -> InterpreterTrainSettings:
        checks = [
            (self.members >= 1, "members must be >= 1"),
            (self.batch_pixels >= 2, "batch_pixels must be >= 2 (BatchNorm needs two pixels)"),
            (self.lr > 0, "lr must be > 0"),
            (self.max_epochs >= 1, "max_epochs must be >= 1"),
            (self.patience >= 0, "patience must be >= 0"),
            (self.max_iterations is None or self.max_iterations >= 1, "max_iterations >= 1"),
            (self.min_class_pixels >= 0, "min_class_pixels must be >= 0"),
            (0 < self.heatmap_sigma < 1, "heatmap_sigma is a fraction of the width in (0, 1)"),
            (0 <= self.keypoint_focus < 1, "keypoint_focus must be in [0, 1)"),
            (self.feature_dtype in tuple(FeatureDtype), "feature_dtype: float16 or float32"),
        ]
        for ok, message in checks:
            if not ok:
                raise AssetganError(f"interpreter training config: {message}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (InterpreterConfig.train of every checkpoint)."""
        return {**dataclasses.asdict(self), "feature_dtype": FeatureDtype(self.feature_dtype).value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InterpreterTrainSettings:
        try:
            settings = cls(**data)
            return dataclasses.replace(settings, feature_dtype=FeatureDtype(settings.feature_dtype))
        except (TypeError, ValueError) as error:
            raise AssetganError(f"interpreter training settings: malformed ({error})") from None


@dataclass(frozen=True)
class InterpreterTrainConfig:
    """What `interpreter train` reads, how it trains, and where it writes the checkpoint."""

    annotations: Path  # annotation set folder (docs/formats.md, "Annotation set")
    generator: Path  # the generator checkpoint the set was annotated on
    out: Path  # the interpreter checkpoint to write (.safetensors; a .json sidecar beside it)
    training: InterpreterTrainSettings = field(default_factory=InterpreterTrainSettings)  # how
    device: Device = Device.auto  # where the generator and the ensembles run

    def validate(self) -> InterpreterTrainConfig:
        if Path(self.out).suffix != ".safetensors":
            raise AssetganError(f"--out {self.out}: interpreter checkpoints end in .safetensors")
        self.training.validate()
        return self


@dataclass(frozen=True)
class InterpreterConfig:
    """Everything needed to rebuild a trained interpreter and check what it may be applied to."""

    generator_sha256: str  # SHA-256 of the generator checkpoint whose features it reads
    generator_config: dict[str, Any]  # that generator's GeneratorConfig.to_dict()
    taps: tuple[tuple[str, int, int], ...]  # (name, channels, resolution) in feature order
    canvas: int  # generator canvas side R
    crop_rows: tuple[int, int] | None  # (top, bottom) canvas rows of the image
    taxonomy: str  # part taxonomy of the labels
    class_names: tuple[str, ...]  # part names, index = id
    keypoint_names: tuple[str, ...]  # heatmap channel order
    members: int  # N per head
    parts_hidden: tuple[int, int]  # (h1, h2) of the part ensemble
    keypoint_hidden: tuple[int, int] | None  # (h1, h2) of the keypoint ensemble, None = no head
    heatmap_sigma_px: float  # Gaussian sigma of the training heatmaps, pixels
    visible_amplitude: float  # heatmap peak trained for visible keypoints
    occluded_amplitude: float  # heatmap peak trained for occluded keypoints
    train: dict[str, Any] = dataclasses.field(default_factory=dict)  # InterpreterTrainSettings

    @property
    def geometry(self) -> TapGeometry:
        taps = tuple(FeatureTap(name=n, channels=c, resolution=r) for n, c, r in self.taps)
        return TapGeometry(taps, self.canvas, self.crop_rows)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["taps"] = [list(t) for t in self.taps]
        for key in _SEQUENCE_FIELDS:
            if data[key] is not None:
                data[key] = list(data[key])
        return {"kind": INTERPRETER_KIND, "schema_version": SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], where: str = "interpreter config"
    ) -> InterpreterConfig:
        data = dict(data)
        if data.pop("kind", None) != INTERPRETER_KIND:
            raise AssetganError(f"{where}: kind is not {INTERPRETER_KIND!r}")
        if data.pop("schema_version", None) != SCHEMA_VERSION:
            raise AssetganError(f"{where}: unsupported schema_version (this assetgan reads 1)")
        try:
            data["taps"] = tuple((str(n), int(c), int(r)) for n, c, r in data["taps"])
            for key in _SEQUENCE_FIELDS:
                if data.get(key) is not None:
                    data[key] = tuple(data[key])
            return cls(**data)
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(f"{where}: malformed ({error})") from None
