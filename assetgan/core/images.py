"""Image helpers every stage uses: contact sheets and atomic PNG writes (uint8 arrays, row 0 at
the top)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from assetgan.core.io_utils import atomic_write


def atomic_write_png(path: str | Path, picture: Any) -> Path:
    """Write a uint8 / uint16 array ([H, W] or [H, W, 3]) as a PNG, atomically."""
    from PIL import Image

    return atomic_write(path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))


def contact_sheet(
    images: list[np.ndarray], columns: int, pad: int = 2, fill: int = 255
) -> np.ndarray:
    """Tile uint8 images [H, W, C] (all the same size) into one grid image."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    height, width, channels = images[0].shape
    rows = (len(images) + columns - 1) // columns
    sheet = np.full(
        (rows * (height + pad) + pad, columns * (width + pad) + pad, channels), fill, dtype=np.uint8
    )
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        sheet[top : top + height, left : left + width] = image
    return sheet
