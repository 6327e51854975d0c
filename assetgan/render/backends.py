"""The renderer interface and its two backends: `torch` (CPU/CUDA) and `nvdiffrast` (CUDA only).

Both take and return plain tensors with nvdiffrast's conventions (docs/conventions.md), so code
written against `RenderBackend` runs on either. The nvdiffrast backend is written against
nvdiffrast's documented API and is exercised only where CUDA and nvdiffrast exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import torch

from assetgan.core.errors import AssetganError
from assetgan.render import ops, torch_backend


class RenderBackend(Protocol):
    name: str

    def rasterize(
        self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]
    ) -> torch.Tensor:
        """[B,V,4] clip coords, [T,3] int -> rast [B,H,W,4] = (u, v, z/w, triangle_id + 1)."""

    def interpolate(
        self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor:
        """[B|1,V,A] attributes -> [B,H,W,A]."""

    def texture(
        self,
        tex: torch.Tensor,
        uv: torch.Tensor,
        filter_mode: str = "linear",
        boundary_mode: str = "wrap",
    ) -> torch.Tensor:
        """[B,Ht,Wt,C] texture sampled at uv [B,H,W,2] -> [B,H,W,C]."""

    def antialias(
        self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor
    ) -> torch.Tensor:
        """[B,H,W,C] colours blended across silhouette edges, with gradients to pos."""

    def silhouette(self, pos: torch.Tensor, tri: torch.Tensor, rast: torch.Tensor) -> torch.Tensor:
        """[B,H,W,1] coverage whose gradient moves silhouette edges."""


class SilhouetteMode(StrEnum):
    """How the torch backend's silhouette gets its edge gradients."""

    antialias = "antialias"  # analytic edge antialiasing (unbiased, like nvdiffrast)
    dibr = "dibr"  # DIB-R's soft mask (wider, outward-only rim)


@dataclass(frozen=True)
class TorchBackend:
    """Candidate-pair rasterizer in plain PyTorch. Silhouettes: analytic edge antialiasing
    (default, unbiased, like nvdiffrast) or the DIB-R soft mask (wider, outward-only rim)."""

    name: str = "torch"
    cull_backfaces: bool = False  # drop clockwise faces; only valid for closed meshes
    silhouette_mode: SilhouetteMode = SilhouetteMode.antialias  # edge gradients, see the enum
    sigma_inv: float = 7000.0  # DIB-R soft-mask sharpness (NDC units^-2), silhouette_mode=dibr

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "silhouette_mode", SilhouetteMode(self.silhouette_mode))
        except ValueError:
            choices = ", ".join(m.value for m in SilhouetteMode)
            raise AssetganError(
                f"silhouette_mode must be one of {choices}, got {self.silhouette_mode!r}"
            ) from None

    def rasterize(self, pos, tri, resolution):
        return torch_backend.rasterize(pos, tri, resolution, cull_backfaces=self.cull_backfaces)

    def interpolate(self, attr, rast, tri):
        return ops.interpolate(attr, rast, tri)

    def texture(self, tex, uv, filter_mode="linear", boundary_mode="wrap"):
        return ops.texture(tex, uv, filter_mode, boundary_mode)

    def antialias(self, color, rast, pos, tri):
        return torch_backend.antialias(color, rast, pos, tri)

    def silhouette(self, pos, tri, rast):
        if self.silhouette_mode is SilhouetteMode.dibr:
            return torch_backend.soft_silhouette(pos, tri, rast, sigma_inv=self.sigma_inv)
        return torch_backend.antialias_silhouette(pos, tri, rast)


class NvdiffrastBackend:
    """nvdiffrast's CUDA rasterizer; silhouette gradients from its analytic antialias."""

    name = "nvdiffrast"

    def __init__(self, device: str | torch.device = "cuda") -> None:
        try:
            import nvdiffrast.torch as dr
        except ImportError as error:
            raise AssetganError(
                f"the nvdiffrast backend needs `pip install assetgan[cuda]` and a CUDA device ({error})"
            ) from error
        if not torch.cuda.is_available():
            raise AssetganError("the nvdiffrast backend needs a CUDA device; use --backend torch")
        self._dr = dr
        self._context = dr.RasterizeCudaContext(device=torch.device(device))

    def rasterize(self, pos, tri, resolution):
        rast, _ = self._dr.rasterize(
            self._context, pos.float().contiguous(), tri.int().contiguous(), resolution
        )
        return rast

    def interpolate(self, attr, rast, tri):
        if attr.ndim == 2:
            attr = attr.unsqueeze(0)
        out, _ = self._dr.interpolate(attr.float().contiguous(), rast, tri.int().contiguous())
        return out

    def texture(self, tex, uv, filter_mode="linear", boundary_mode="wrap"):
        return self._dr.texture(
            tex.float().contiguous(),
            uv.float().contiguous(),
            filter_mode=filter_mode,
            boundary_mode=boundary_mode,
        )

    def antialias(self, color, rast, pos, tri):
        return self._dr.antialias(
            color.float().contiguous(), rast, pos.float().contiguous(), tri.int().contiguous()
        )

    def silhouette(self, pos, tri, rast):
        mask = (rast[..., 3:4] > 0).float()
        return self._dr.antialias(mask, rast, pos.float().contiguous(), tri.int().contiguous())


def get_backend(name: str = "torch", device: str | torch.device = "cpu") -> RenderBackend:
    """`torch`, `nvdiffrast`, or `auto` (nvdiffrast when it imports and CUDA is present)."""
    if name == "torch":
        return TorchBackend()
    if name == "nvdiffrast":
        return NvdiffrastBackend(device)
    if name == "auto":
        if torch.cuda.is_available():
            try:
                return NvdiffrastBackend(device)
            except AssetganError:
                pass
        return TorchBackend()
    raise AssetganError(f"unknown render backend {name!r}; choose torch, nvdiffrast or auto")
