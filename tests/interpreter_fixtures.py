"""Tiny generators and toy annotation sets for the interpreter and dataset tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from assetgan.core.hashing import file_sha256
from assetgan.pipeline.annotations import AnnotatedSample, AnnotationSet
from assetgan.pipeline.stylegan.checkpoint import save_generator
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import to_uint8, ws_from_seeds

TINY = GeneratorConfig(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channels=(16, 16, 8))
TINY_CROP = GeneratorConfig(
    resolution=32, z_dim=16, w_dim=16, mapping_layers=2, channels=(16, 16, 8, 8), crop_rows=(4, 28)
)


def tiny_generator(config: GeneratorConfig = TINY, seed: int = 0) -> Generator:
    """A random-weight generator whose biases and noise strengths are non-zero."""
    torch.manual_seed(seed)
    generator = Generator(config)
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                param.normal_(0, 0.3)
    return generator.eval().requires_grad_(False)


def save_tiny_generator(
    path: Path, config: GeneratorConfig = TINY, seed: int = 0
) -> tuple[Generator, str]:
    generator = tiny_generator(config, seed)
    save_generator(generator, path)
    return generator, file_sha256(path)


def toy_annotations(
    generator: Generator,
    seeds: list[int],
    generator_path: str = "G.safetensors",
    sha: str = "0" * 64,
) -> AnnotationSet:
    """Labels a segmenter could learn from the image itself: part id = argmax RGB channel + 1
    where the image is bright, else background; keypoint 0 = the reddest pixel."""
    annotation_set = AnnotationSet.empty("car_20")
    ws = ws_from_seeds(generator, seeds)
    images = to_uint8(generator.synthesis(ws, noise_mode="const"))
    for seed, w, image in zip(seeds, ws, images, strict=True):
        brightness = image.astype(np.int32).sum(-1)
        labels = np.where(brightness > np.median(brightness), image.argmax(-1) + 1, 0)
        keypoints = np.zeros((12, 3), np.float32)
        red = image[..., 0].astype(np.int32) - image[..., 1:].mean(-1)
        row, col = np.unravel_index(int(red.argmax()), red.shape)
        keypoints[0] = (col + 0.5, row + 0.5, 2)
        annotation_set.samples.append(
            AnnotatedSample(
                name=f"seed{seed:04d}",
                generator_path=generator_path,
                generator_sha256=sha,
                seed=seed,
                ws=w.numpy().astype(np.float32),
                part_ids=labels.astype(np.uint8),
                keypoints_xyv=keypoints,
                image=image,
            )
        )
    return annotation_set
