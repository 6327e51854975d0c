"""PNG label masks (Cityscapes style): one single-channel PNG per image whose pixel values are
car_20 ids (0 = background, 255 = ignore). The file stem names the exported image it labels.
Masks carry no keypoints: every keypoint comes in as not labeled (v = 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID
from assetgan.core.errors import AssetganError
from assetgan.pipeline.annotate.labeled import LabeledImage, check_size, empty_keypoints


def read_png_mask(path: Path, expected_size: tuple[int, int] | None = None) -> LabeledImage:
    """One mask file -> LabeledImage; AssetganError for unreadable files, colour images,
    ids outside car_20 and size mismatches."""
    where = str(path)
    try:
        with Image.open(path) as picture:
            picture.load()
            mode = picture.mode
            part_ids = np.asarray(picture)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise AssetganError(f"{where}: not a readable PNG mask ({error})") from None
    if mode not in ("L", "P") or part_ids.ndim != 2:
        raise AssetganError(
            f"{where}: PNG mode {mode} is not a label mask; save one channel of car_20 ids "
            f"(8-bit grayscale or palette, 0..{len(CAR_20) - 1}, 255 = ignore)"
        )
    bad = (part_ids >= len(CAR_20)) & (part_ids != IGNORE_ID)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise AssetganError(
            f"{where}: pixel (x={cols[0]}, y={rows[0]}) has id {int(part_ids[rows[0], cols[0]])}, "
            f"outside car_20 ids 0..{len(CAR_20) - 1} (255 = ignore)"
        )
    check_size(part_ids.shape, expected_size, where, "the mask")
    return LabeledImage(path.stem, where, part_ids.astype(np.uint8), empty_keypoints())
