"""Tiny synthetic image sets for the StyleGAN tests and benchmarks (coloured shapes on gradients)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def shape_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """[size, size, 3] uint8: a vertical gradient background with one to three filled shapes."""
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    background = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    picture = Image.fromarray(np.broadcast_to(background, (size, size, 3)).copy())
    draw = ImageDraw.Draw(picture)
    for _ in range(rng.integers(1, 4)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        radius = rng.uniform(0.1, 0.3) * size
        box = [cx - radius, cy - radius, cx + radius, cy + radius]
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon(
                [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)],
                fill=colour,
            )
    return np.asarray(picture)


def shape_images(count: int, size: int, seed: int = 0) -> np.ndarray:
    """[count, size, size, 3] uint8, deterministic per seed."""
    rng = np.random.default_rng(seed)
    return np.stack([shape_image(rng, size) for _ in range(count)])


def write_shape_folder(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """Write `count` PNGs into folder/images and return folder."""
    images_dir = Path(folder) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    for idx, image in enumerate(shape_images(count, size, seed)):
        Image.fromarray(image).save(images_dir / f"{idx:05d}.png")
    return Path(folder)


def tiny_train_config(data: Path, out: Path, **overrides):
    """A seconds-fast GanTrainConfig at 16x16 that exercises every loss path (R1, path length)."""
    from assetgan.pipeline.stylegan.config import DiscriminatorConfig, GeneratorConfig
    from assetgan.pipeline.stylegan.train_config import GanTrainConfig

    settings = dict(
        data=str(data),
        out=str(out),
        generator=GeneratorConfig(
            resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=256, channel_max=32
        ),
        discriminator=DiscriminatorConfig(resolution=16, channel_base=256, channel_max=32),
        batch=4,
        total_kimg=0.016,
        tick_kimg=0.004,
        snap_kimg=0.008,
        d_reg_interval=2,
        pl_weight=1.0,
        g_reg_interval=2,
        ema_kimg=0.01,
        kid_images=16,
        grid_seeds=4,
        device="cpu",
    )
    settings.update(overrides)
    return GanTrainConfig(**settings)
