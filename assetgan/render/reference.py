"""Dense reference twins of the rasterizer: every pixel against every face.

They form [pixels, faces] tensors, so they are only for tests on small inputs and for the
side-by-side benchmark (benchmarks/render.py). Same conventions as torch_backend.
"""

from __future__ import annotations

import torch

from assetgan.render.torch_backend import _MIN_W, pixel_centres_ndc


def _dense_weights(face_clip: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """face_clip [T, 3, 4], point [P, 2] -> unnormalised homogeneous barycentrics [P, T, 3]."""
    x = face_clip[None, :, :, 0] - point[:, None, None, 0] * face_clip[None, :, :, 3]
    y = face_clip[None, :, :, 1] - point[:, None, None, 1] * face_clip[None, :, :, 3]
    l0 = x[..., 1] * y[..., 2] - x[..., 2] * y[..., 1]
    l1 = x[..., 2] * y[..., 0] - x[..., 0] * y[..., 2]
    l2 = x[..., 0] * y[..., 1] - x[..., 1] * y[..., 0]
    return torch.stack([l0, l1, l2], dim=-1)


def _row_points(height: int, width: int, rows, device, dtype) -> tuple[torch.Tensor, int]:
    """Pixel centres [P, 2] of rows[0]:rows[1] (all rows if None) and the number of rows."""
    centres = pixel_centres_ndc(height, width, device, dtype)
    if rows is not None:
        centres = centres[rows[0] : rows[1]]
    return centres.reshape(-1, 2), centres.shape[0]


def rasterize_dense(
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    rows: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Brute-force rasterize with the same output contract as torch_backend.rasterize.
    rows = (first, end) restricts the output to those image rows ([B, end - first, W, 4])."""
    height, width = resolution
    tri = tri.long()
    points, height = _row_points(height, width, rows, pos.device, pos.dtype)
    out = []
    for b in range(pos.shape[0]):
        face_clip = pos[b][tri]  # [T, 3, 4]
        valid = (face_clip[..., 3] > _MIN_W).all(-1)  # [T]
        weights = _dense_weights(face_clip, points)  # [P, T, 3]
        total = weights.sum(-1)
        bary = weights / total.unsqueeze(-1)
        depth = (weights * face_clip[None, :, :, 2]).sum(-1) / (
            weights * face_clip[None, :, :, 3]
        ).sum(-1)
        inside = (bary >= 0).all(-1) & (total != 0) & valid[None] & (depth >= -1) & (depth <= 1)
        masked_depth = torch.where(inside, depth.detach(), torch.full_like(depth, float("inf")))
        best = masked_depth.min(dim=1, keepdim=True).values
        # Highest triangle id among the nearest, as in the fast path.
        ids = torch.arange(tri.shape[0], device=pos.device).expand_as(masked_depth)
        candidates = torch.where(inside & (masked_depth == best), ids, torch.full_like(ids, -1))
        face = candidates.max(dim=1).values  # [P]
        hit = face >= 0
        face_safe = face.clamp(min=0)
        pick = bary[torch.arange(points.shape[0]), face_safe]  # [P, 3]
        u = torch.where(hit, pick[:, 0], torch.zeros_like(pick[:, 0]))
        v = torch.where(hit, pick[:, 1], torch.zeros_like(pick[:, 1]))
        z = torch.where(hit, best.squeeze(1), torch.zeros_like(u)).detach()
        tid = torch.where(hit, (face + 1).to(pos.dtype), torch.zeros_like(u))
        out.append(torch.stack([u, v, z, tid], dim=-1).reshape(height, width, 4))
    return torch.stack(out)


def _dense_edge_dist2(point: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """point [P, 2], corners [T, 3, 2] -> squared distance to each triangle's boundary [P, T]."""
    best = None
    for i, j in ((0, 1), (1, 2), (2, 0)):
        start = corners[None, :, i]
        edge = corners[None, :, j] - start
        rel = point[:, None] - start
        t = ((rel * edge).sum(-1) / (edge * edge).sum(-1).clamp(min=1e-12)).clamp(0, 1)
        dist2 = ((rel - t.unsqueeze(-1) * edge) ** 2).sum(-1)
        best = dist2 if best is None else torch.minimum(best, dist2)
    return best


def soft_silhouette_dense(
    pos: torch.Tensor, tri: torch.Tensor, rast: torch.Tensor, *, sigma_inv: float = 7000.0
) -> torch.Tensor:
    """Dense DIB-R soft mask (every uncovered pixel against every face)."""
    batch, height, width = rast.shape[:3]
    tri = tri.long()
    points = pixel_centres_ndc(height, width, pos.device, pos.dtype).reshape(-1, 2)
    out = []
    for b in range(batch):
        face_clip = pos[b][tri]
        valid = (face_clip[..., 3] > _MIN_W).all(-1)
        corners = face_clip[..., :2] / face_clip[..., 3:4]
        prob = torch.exp(-sigma_inv * _dense_edge_dist2(points, corners)) * valid[None]
        soft = 1.0 - torch.exp(torch.log1p(-prob.clamp(max=1.0 - 1e-6)).sum(-1))
        covered = rast[b, ..., 3].reshape(-1) > 0
        out.append(torch.where(covered, torch.ones_like(soft), soft).reshape(height, width, 1))
    return torch.stack(out)


def softras_silhouette_dense(
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    *,
    sigma: float = 1e-4,
    rows: tuple[int, int] | None = None,
) -> torch.Tensor:
    """SoftRas silhouette, all pixel-face pairs: 1 - prod_j (1 - sigmoid(sign_j * d_j^2 / sigma)).

    sign_j = +1 inside face j, -1 outside. The dense baseline of benchmarks/render.py.
    """
    height, width = resolution
    tri = tri.long()
    points, height = _row_points(height, width, rows, pos.device, pos.dtype)
    out = []
    for b in range(pos.shape[0]):
        face_clip = pos[b][tri]
        corners = face_clip[..., :2] / face_clip[..., 3:4]
        dist2 = _dense_edge_dist2(points, corners)
        weights = _dense_weights(face_clip, points)
        inside = (weights * weights.sum(-1, keepdim=True) >= 0).all(-1)
        sign = inside.to(pos.dtype) * 2.0 - 1.0
        prob = torch.sigmoid(sign * dist2 / sigma)
        soft = 1.0 - torch.exp(torch.log1p(-prob.clamp(max=1.0 - 1e-6)).sum(-1))
        out.append(soft.reshape(height, width, 1))
    return torch.stack(out)
