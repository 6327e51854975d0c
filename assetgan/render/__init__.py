"""Differentiable rendering with nvdiffrast's primitives: rasterize -> interpolate -> texture,
plus a silhouette with gradients. Module-level functions use the torch backend."""

from assetgan.render.backends import (
    NvdiffrastBackend,
    RenderBackend,
    SilhouetteMode,
    TorchBackend,
    get_backend,
)
from assetgan.render.ops import interpolate, texture
from assetgan.render.torch_backend import (
    antialias,
    antialias_silhouette,
    rasterize,
    soft_silhouette,
)

__all__ = [
    "NvdiffrastBackend",
    "antialias",
    "antialias_silhouette",
    "RenderBackend",
    "SilhouetteMode",
    "TorchBackend",
    "get_backend",
    "interpolate",
    "rasterize",
    "soft_silhouette",
    "texture",
]
