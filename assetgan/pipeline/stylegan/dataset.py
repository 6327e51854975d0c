"""Training images: a folder of PNG/JPG files loaded once into memory as uint8.

Layout: if DIR/images exists the images are read from there (CarWorld's layout), else from DIR
itself; only that folder's own files with a .png/.jpg/.jpeg suffix (any case) count, in sorted
name order. Images must be square; they are converted to RGB (alpha dropped) and resized with
Lanczos to the training resolution when their size differs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from assetgan.core.errors import AssetganError
from assetgan.core.progress import Progress, emit

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def image_folder(data: str | Path) -> Path:
    """DIR/images when it exists, else DIR; AssetganError when neither is a directory."""
    data = Path(data)
    if not data.is_dir():
        raise AssetganError(f"--data {data}: no such directory; give a folder of PNG/JPG images")
    return data / "images" if (data / "images").is_dir() else data


def list_images(data: str | Path) -> list[Path]:
    folder = image_folder(data)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise AssetganError(f"{folder}: no .png/.jpg/.jpeg images found; point --data at them")
    return files


def load_images(
    data: str | Path,
    resolution: int,  # output side; images of another size are resized
    progress: Progress | None = None,  # task "loading": images loaded of all
) -> torch.Tensor:
    """All images as one uint8 tensor [N, 3, resolution, resolution]."""
    files = list_images(data)
    out = torch.empty(len(files), 3, resolution, resolution, dtype=torch.uint8)
    for idx, path in enumerate(files):
        try:
            with Image.open(path) as picture:
                picture.load()
                rgb = picture.convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise AssetganError(f"{path}: unreadable image ({error}); fix or remove it") from None
        if rgb.width != rgb.height:
            raise AssetganError(
                f"{path}: image is {rgb.width}x{rgb.height}, training needs square images "
                f"(crop or pad them to square first)"
            )
        if rgb.width != resolution:
            rgb = rgb.resize((resolution, resolution), Image.Resampling.LANCZOS)
        out[idx] = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
        if (idx + 1) % 256 == 0:
            emit(progress, idx + 1, len(files), task="loading")
    emit(progress, len(files), len(files), task="loading")
    return out
