"""StyleGAN2 in plain PyTorch: networks, checkpoints, sampling, training, KID (docs/stylegan.md)."""

from assetgan.pipeline.stylegan.config import DiscriminatorConfig, GeneratorConfig
from assetgan.pipeline.stylegan.discriminator import Discriminator
from assetgan.pipeline.stylegan.networks import FeatureTap, Generator, truncate

__all__ = [
    "Discriminator",
    "DiscriminatorConfig",
    "FeatureTap",
    "Generator",
    "GeneratorConfig",
    "truncate",
]
