"""What every import format produces: one labeled image (part ids + keypoints), before pairing
with a latent. Shared checks for the readers (paths that must stay inside the annotation folder,
images that must open and have the expected size)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from assetgan.core.errors import AssetganError
from assetgan.pipeline.annotate.labels import NUM_KEYPOINTS


@dataclass(frozen=True)
class LabeledImage:
    """One annotated image as read from LabelMe, COCO or PNG masks."""

    name: str  # stem of the annotated image file; pairs it with an exported sample
    source: str  # file the labels came from (for messages and provenance)
    part_ids: np.ndarray  # [H, W] uint8 car_20 ids, 255 = ignore
    keypoints_xyv: np.ndarray  # [12, 3] float32 (x, y, v); v 0 = not labeled, 1 occluded, 2 visible
    annotated: bool = True  # False for a COCO image without any annotation

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return (int(self.part_ids.shape[0]), int(self.part_ids.shape[1]))


def empty_keypoints() -> np.ndarray:
    """[12, 3] float32 zeros (no keypoint labeled)."""
    return np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)


def resolve_inside(root: Path, relative: str, where: str, field: str = "imagePath") -> Path:
    """`root / relative`, refusing absolute paths and paths that leave `root` (path traversal).

    Backslashes count as separators (LabelMe on Windows writes them)."""
    text = str(relative)
    if not text:
        raise AssetganError(f"{where}: {field} is empty; it must name the image file")
    posix = PurePosixPath(text.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(text).drive or PureWindowsPath(text).root:
        raise AssetganError(
            f"{where}: {field} {text!r} is an absolute path; it must be relative to the "
            f"annotation folder {root}"
        )
    if ".." in posix.parts:
        raise AssetganError(
            f"{where}: {field} {text!r} contains '..'; it must stay inside the annotation "
            f"folder {root}"
        )
    target = (root / Path(*posix.parts)).resolve()
    if not target.is_relative_to(root.resolve()):  # a symlink pointing out of the folder
        raise AssetganError(
            f"{where}: {field} {text!r} resolves to {target}, outside the annotation folder {root}"
        )
    return target


def read_image_size(path: Path, where: str) -> tuple[int, int]:
    """(height, width) of an image file; AssetganError if missing or unreadable."""
    if not path.is_file():
        raise AssetganError(f"{where}: image {path} does not exist")
    try:
        with Image.open(path) as picture:
            picture.verify()
        with Image.open(path) as picture:
            picture.load()
            return (picture.height, picture.width)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise AssetganError(f"{where}: image {path} is not a readable image ({error})") from None


def check_size(
    got: tuple[int, int], expected: tuple[int, int] | None, where: str, what: str
) -> None:
    """AssetganError when `got` (H, W) differs from `expected`."""
    if expected is not None and tuple(got) != tuple(expected):
        raise AssetganError(
            f"{where}: {what} is {got[1]}x{got[0]} (WxH) but the exported image is "
            f"{expected[1]}x{expected[0]}; annotate the exported image at its own size"
        )


def check_points_inside(points: np.ndarray, height: int, width: int, where: str) -> None:
    """AssetganError naming the first point [P, 2] (x, y) outside [0, width] x [0, height]."""
    outside = (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0)
    outside |= points[:, 1] > height
    if outside.any():
        x, y = points[int(np.argmax(outside))]
        raise AssetganError(
            f"{where}: point ({x:g}, {y:g}) is outside the {width}x{height} image "
            f"(x must be in 0..{width}, y in 0..{height})"
        )
