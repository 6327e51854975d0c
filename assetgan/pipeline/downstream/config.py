"""The segmenter's network contract (`SegmenterConfig`, saved in every checkpoint) and its
`Architecture` choice, shared by the library and the CLI; no torch here (model.py builds it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum

from assetgan.assets.taxonomy import CAR_20, KEYPOINTS
from assetgan.core.errors import AssetganError
from assetgan.core.fields import known_fields


class Architecture(StrEnum):
    """The segmenter's network (model.py says what each is); the CLI's --architecture choices."""

    unet = "unet"  # compact full-resolution UNet (default)
    lraspp = "lraspp"  # torchvision LRASPP-MobileNetV3, the measured baseline


@dataclass(frozen=True)
class SegmenterConfig:
    """The network's contract; saved in every checkpoint so loading rebuilds the exact model."""

    architecture: Architecture = Architecture.unet  # unet (default) or lraspp (baseline)
    channels: tuple[int, ...] = (16, 32, 64, 128)  # UNet widths per level (full res first)
    num_classes: int = len(CAR_20)  # car_20 ids, background included (taxonomy.CAR_20)
    num_keypoints: int = len(KEYPOINTS)  # heatmap channels (taxonomy.KEYPOINTS order)
    heatmap_sigma: float = 1.5  # px, std of the Gaussian heatmap targets at the training size
    visible_threshold: float = 0.5  # heatmap peak >= this -> keypoint predicted visible (v=2)

    def __post_init__(self) -> None:
        try:  # a plain string from JSON or a caller becomes the enum
            object.__setattr__(self, "architecture", Architecture(self.architecture))
        except ValueError:
            raise AssetganError(
                f"architecture {self.architecture!r} is not one of {[a.value for a in Architecture]}"
            ) from None

    def validate(self) -> SegmenterConfig:
        if not self.channels or min(self.channels) < 1:
            raise AssetganError(f"channels must be positive, got {list(self.channels)}")
        if self.num_classes < 2 or self.num_keypoints < 0 or self.heatmap_sigma <= 0:
            raise AssetganError("need num_classes >= 2, num_keypoints >= 0, heatmap_sigma > 0")
        return self

    def to_dict(self) -> dict:
        """The JSON form stored in checkpoints (architecture as its string value)."""
        out = asdict(self)
        out["architecture"] = self.architecture.value
        out["channels"] = list(self.channels)
        return out

    @classmethod
    def from_dict(cls, obj: dict) -> SegmenterConfig:
        values = known_fields(cls, obj, "segmenter config")
        if "channels" in values:
            values["channels"] = tuple(int(c) for c in values["channels"])
        return cls(**values).validate()
