"""assetgan: labeled 2D car datasets and rigged 3D car assets from a StyleGAN generator."""

__version__ = "0.1.0"
