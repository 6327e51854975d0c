"""Contact sheet of predictions: per row image | ground-truth parts | predicted parts, keypoints
drawn on both part maps (left keypoints green, right red, unsided none; taxonomy palette)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from assetgan.assets.taxonomy import KEYPOINTS, colorize
from assetgan.core.images import contact_sheet


def _with_keypoints(picture: np.ndarray, keypoints_xyv: np.ndarray, scale: int) -> np.ndarray:
    canvas = Image.fromarray(picture).resize(
        (picture.shape[1] * scale, picture.shape[0] * scale), Image.NEAREST
    )
    draw = ImageDraw.Draw(canvas)
    for (x, y, v), name in zip(keypoints_xyv, KEYPOINTS, strict=True):
        if v != 2:
            continue
        colour = (0, 230, 0) if "left" in name else (255, 40, 40)
        r = max(2, scale - 1)
        draw.ellipse((x * scale - r, y * scale - r, x * scale + r, y * scale + r), fill=colour,
                     outline=(0, 0, 0))  # fmt: skip
    return np.asarray(canvas)


def prediction_sheet(
    images: np.ndarray,  # [N, H, W, 3] uint8
    truth_parts: np.ndarray,  # [N, H, W] car_20
    truth_keypoints: np.ndarray,  # [N, K, 3]
    predicted_parts: np.ndarray,  # [N, H, W]
    predicted_keypoints: np.ndarray,  # [N, K, 3]
    scale: int = 4,  # nearest-neighbour enlargement
    triples_per_row: int = 2,  # (image, truth, prediction) triples side by side
) -> np.ndarray:
    """[rows, cols, 3] uint8 sheet."""
    tiles = []
    for index in range(len(images)):
        image = np.asarray(
            Image.fromarray(images[index]).resize(
                (images.shape[2] * scale, images.shape[1] * scale), Image.NEAREST
            )
        )
        truth = np.where(truth_parts[index] == 255, 0, truth_parts[index])
        tiles.append(image)
        tiles.append(_with_keypoints(colorize(truth), truth_keypoints[index], scale))
        tiles.append(_with_keypoints(colorize(predicted_parts[index]), predicted_keypoints[index],
                                     scale))  # fmt: skip
    return contact_sheet(tiles, columns=3 * triples_per_row, pad=2)
