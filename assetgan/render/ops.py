"""interpolate and texture for the torch backend: plain tensors in, plain tensors out."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from assetgan.core.errors import AssetganError
from assetgan.render.torch_backend import gather_corners


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Interpolate vertex attributes over the rasterized triangles.

    attr: [batch, vertices, A] or [vertices, A] (shared by the batch); rast: [batch, H, W, 4]
    from rasterize; tri: [triangles, 3] indexing attr's vertices (it may differ from the tri used
    to rasterize as long as the triangle count matches, e.g. a separate UV index).
    Returns [batch, H, W, A], zero where the pixel is empty; differentiable in attr and rast u, v.
    """
    if attr.ndim == 2:
        attr = attr.unsqueeze(0)
    if attr.ndim != 3:
        raise AssetganError(
            f"attr must be [batch, vertices, A] or [vertices, A], got {list(attr.shape)}"
        )
    batch, height, width, _ = rast.shape
    if attr.shape[0] not in (1, batch):
        raise AssetganError(f"attr batch {attr.shape[0]} does not match rast batch {batch}")
    tri = tri.long()
    flat = rast.reshape(-1, 4)
    covered = torch.nonzero(flat[:, 3] > 0).squeeze(1)
    face = flat[covered, 3].long() - 1
    if face.numel() and int(face.max()) >= tri.shape[0]:
        raise AssetganError(f"rast names triangle {int(face.max())} but tri has {tri.shape[0]}")
    corner_attr = gather_corners(attr, covered // (height * width), tri.index_select(0, face))
    uv = flat[:, :2].index_select(0, covered)
    u, v = uv[:, 0:1], uv[:, 1:2]
    values = corner_attr[:, 0] * u + corner_attr[:, 1] * v + corner_attr[:, 2] * (1.0 - u - v)
    out = torch.zeros(flat.shape[0], attr.shape[-1], device=attr.device, dtype=values.dtype)
    out = out.index_put((covered,), values)
    return out.reshape(batch, height, width, attr.shape[-1])


_BOUNDARY_MODES = ("wrap", "clamp", "zero")
_FILTER_MODES = ("linear", "nearest")


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    filter_mode: str = "linear",
    boundary_mode: str = "wrap",
) -> torch.Tensor:
    """Sample textures: tex [batch, Ht, Wt, C], uv [batch, H, W, 2] -> [batch, H, W, C].

    uv (0, 0) is the corner of texel tex[:, 0, 0], u runs along the texture width and v along its
    height (nvdiffrast's convention). boundary_mode: wrap | clamp | zero.
    """
    if filter_mode not in _FILTER_MODES:
        raise AssetganError(f"filter_mode must be one of {_FILTER_MODES}, got {filter_mode!r}")
    if boundary_mode not in _BOUNDARY_MODES:
        raise AssetganError(
            f"boundary_mode must be one of {_BOUNDARY_MODES}, got {boundary_mode!r}"
        )
    if tex.ndim != 4 or uv.ndim != 4 or uv.shape[-1] != 2:
        raise AssetganError(
            f"texture expects tex [B, Ht, Wt, C] and uv [B, H, W, 2], got {list(tex.shape)} and "
            f"{list(uv.shape)}"
        )
    if tex.shape[0] not in (1, uv.shape[0]):
        raise AssetganError(f"tex batch {tex.shape[0]} does not match uv batch {uv.shape[0]}")
    image = tex.permute(0, 3, 1, 2)  # [B, C, Ht, Wt]
    if image.shape[0] != uv.shape[0]:
        image = image.expand(uv.shape[0], -1, -1, -1)
    tex_h, tex_w = image.shape[-2:]
    if boundary_mode == "wrap":
        uv = uv - torch.floor(uv)
        image = F.pad(image, (1, 1, 1, 1), mode="circular")
        grid_x = (uv[..., 0] * tex_w + 1.0) / (tex_w + 2) * 2.0 - 1.0
        grid_y = (uv[..., 1] * tex_h + 1.0) / (tex_h + 2) * 2.0 - 1.0
        padding = "border"
    else:
        grid_x = uv[..., 0] * 2.0 - 1.0
        grid_y = uv[..., 1] * 2.0 - 1.0
        padding = "border" if boundary_mode == "clamp" else "zeros"
    grid = torch.stack([grid_x, grid_y], dim=-1)
    mode = "bilinear" if filter_mode == "linear" else "nearest"
    out = F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=False)
    return out.permute(0, 2, 3, 1)
