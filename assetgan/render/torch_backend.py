"""Pure-PyTorch differentiable rasterizer with nvdiffrast's conventions (docs/conventions.md).

Visibility is decided without autograd from (face, pixel) candidate pairs enumerated from each
face's pixel bounding box; no dense pixel x face tensor is ever formed. Autograd then runs only
through the winning face of every covered pixel (barycentrics) and through the faces near
uncovered pixels (DIB-R soft silhouette).
"""

from __future__ import annotations

import math

import torch

from assetgan.core.errors import AssetganError

# Faces whose vertices have w below this are dropped (no near-plane clipping; docs/conventions.md).
_MIN_W = 1e-6
# Pairs are processed in chunks of this many so the candidate arrays stay small in memory.
_CHUNK_PAIRS = 1 << 22


def gather_corners(
    values: torch.Tensor, batch_of: torch.Tensor, corners: torch.Tensor
) -> torch.Tensor:
    """values [B, V, C], batch_of [N], corners [N, 3] vertex ids -> [N, 3, C] (index_select based:
    much faster than advanced indexing on CPU, and differentiable in values)."""
    num_vertices, channels = values.shape[1], values.shape[2]
    if values.shape[0] == 1:
        rows = corners.reshape(-1)
    else:
        rows = (batch_of.unsqueeze(1) * num_vertices + corners).reshape(-1)
    return values.reshape(-1, channels).index_select(0, rows).reshape(-1, 3, channels)


def check_inputs(pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> None:
    """Raise AssetganError on malformed rasterizer inputs (shapes, dtypes, index range)."""
    if pos.ndim != 3 or pos.shape[-1] != 4:
        raise AssetganError(f"pos must be [batch, vertices, 4] clip coords, got {list(pos.shape)}")
    if not pos.is_floating_point():
        raise AssetganError(f"pos must be a float tensor, got {pos.dtype}")
    if tri.ndim != 2 or tri.shape[-1] != 3:
        raise AssetganError(f"tri must be [triangles, 3], got {list(tri.shape)}")
    if tri.dtype not in (torch.int32, torch.int64):
        raise AssetganError(f"tri must be int32 or int64, got {tri.dtype}")
    if tri.numel() and (int(tri.min()) < 0 or int(tri.max()) >= pos.shape[1]):
        raise AssetganError(
            f"tri indexes vertices {int(tri.min())}..{int(tri.max())} "
            f"but pos has {pos.shape[1]} vertices"
        )
    if len(resolution) != 2 or min(resolution) < 1:
        raise AssetganError(f"resolution must be (height, width) >= 1, got {resolution}")


def pixel_centres_ndc(
    height: int, width: int, device: torch.device, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """NDC coordinates of pixel centres, [H, W, 2] = (x, y); row 0 is the bottom (y = -1 side)."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * (2.0 / height) - 1.0
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * (2.0 / width) - 1.0
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def _face_bboxes(
    face_ndc: torch.Tensor, height: int, width: int, pad_ndc: float
) -> tuple[torch.Tensor, ...]:
    """Inclusive pixel index boxes [N] x0, x1, y0, y1 of faces given NDC corners [N, 3, 2]."""
    lo = face_ndc.amin(dim=1) - pad_ndc  # [N, 2]
    hi = face_ndc.amax(dim=1) + pad_ndc
    # Pixel i has its centre at ndc (i + 0.5) * 2 / size - 1  <=>  i = (ndc + 1) * size / 2 - 0.5.
    scale = torch.tensor([width / 2.0, height / 2.0], device=face_ndc.device)
    lo_px = torch.ceil((lo + 1.0) * scale - 0.5)
    hi_px = torch.floor((hi + 1.0) * scale - 0.5)
    lo_px = torch.nan_to_num(lo_px, nan=1e9, posinf=1e9, neginf=-1e9)
    hi_px = torch.nan_to_num(hi_px, nan=-1e9, posinf=1e9, neginf=-1e9)
    x0 = lo_px[:, 0].clamp(0, width).long()
    y0 = lo_px[:, 1].clamp(0, height).long()
    x1 = hi_px[:, 0].clamp(-1, width - 1).long()
    y1 = hi_px[:, 1].clamp(-1, height - 1).long()
    return x0, x1, y0, y1


def candidate_pairs(
    face_ndc: torch.Tensor, height: int, width: int, pad_ndc: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Enumerate (face, pixel) pairs whose pixel centre lies in the face's (padded) bounding box.

    face_ndc: [N, 3, 2] projected corners of N faces (all batches flattened). Returns
    face_index [P] (into N), pixel_x [P], pixel_y [P], all int64, without autograd.
    """
    x0, x1, y0, y1 = _face_bboxes(face_ndc, height, width, pad_ndc)
    box_w = (x1 - x0 + 1).clamp(min=0)
    box_h = (y1 - y0 + 1).clamp(min=0)
    counts = box_w * box_h
    face_index = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    local = torch.arange(face_index.numel(), device=counts.device) - starts.index_select(
        0, face_index
    )
    width_of_pair = box_w.index_select(0, face_index)
    row = torch.div(local, width_of_pair, rounding_mode="floor")
    pixel_x = x0.index_select(0, face_index) + (local - row * width_of_pair)
    pixel_y = y0.index_select(0, face_index) + row
    return face_index, pixel_x, pixel_y


def homogeneous_barycentrics(face_clip: torch.Tensor, point_ndc: torch.Tensor) -> torch.Tensor:
    """Perspective-correct barycentrics of NDC points in clip-space triangles.

    face_clip [P, 3, 4] clip coords, point_ndc [P, 2]. Returns unnormalised weights [P, 3]; divide
    by their sum for barycentrics. Solves sum_i l_i (x_i - px w_i) = 0 = sum_i l_i (y_i - py w_i).
    """
    a = face_clip[..., 0] - point_ndc[:, 0:1] * face_clip[..., 3]  # [P, 3]
    b = face_clip[..., 1] - point_ndc[:, 1:2] * face_clip[..., 3]
    l0 = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    l1 = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    l2 = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return torch.stack([l0, l1, l2], dim=-1)


def _flat_faces(
    pos: torch.Tensor, tri: torch.Tensor, cull_backfaces: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kept faces as flat ids (batch * T + face) and their clip corners [N, 3, 4], no autograd."""
    batch, num_faces = pos.shape[0], tri.shape[0]
    face_clip = pos.detach().index_select(1, tri.reshape(-1)).reshape(batch, num_faces, 3, 4)
    w = face_clip[..., 3]
    keep = (w > _MIN_W).all(dim=-1)  # [B, T]
    if cull_backfaces:
        ndc = face_clip[..., :2] / w.clamp(min=_MIN_W).unsqueeze(-1)
        e1 = ndc[:, :, 1] - ndc[:, :, 0]
        e2 = ndc[:, :, 2] - ndc[:, :, 0]
        keep &= (e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]) > 0
    flat_ids = torch.nonzero(keep.reshape(-1)).squeeze(1)
    return flat_ids, face_clip.reshape(batch * num_faces, 3, 4).index_select(0, flat_ids)


def _edge_coefficients(face_clip: torch.Tensor) -> torch.Tensor:
    """Per-face linear forms in the pixel's NDC (px, py), [N, 5, 3] = (l0, l1, l2, Z, W) x (c, a, b).

    The homogeneous barycentric l_i = c_i + a_i px + b_i py (the px * py terms cancel); Z and W
    are sum_i l_i z_i and sum_i l_i w_i, so z/w = Z / W. Each row is multiplied by the sign of
    sum_i l_i (constant over a face with all w > 0), so a pixel is inside iff all l_i >= 0.
    """
    x, y, z, w = (face_clip[..., k].contiguous() for k in range(4))  # each [N, 3]
    # l_i uses vertices i + 1 and i + 2 (mod 3).
    x1, y1, w1 = (torch.roll(t, -1, 1) for t in (x, y, w))
    x2, y2, w2 = (torch.roll(t, -2, 1) for t in (x, y, w))
    lam = torch.stack(
        [x1 * y2 - x2 * y1, w2 * y1 - w1 * y2, x2 * w1 - x1 * w2], dim=-1
    )  # [N, 3, 3]
    depth = torch.einsum("nic,ni->nc", lam, z)  # [N, 3]
    weight = torch.einsum("nic,ni->nc", lam, w)
    total = lam.sum(1)  # [N, 3]; sum_i l_i = total . (1, px, py)
    # At the centroid of the projected triangle sum_i l_i has the face's orientation sign.
    ndc_x, ndc_y = x / w, y / w
    centroid_x = (ndc_x[:, 0] + ndc_x[:, 1] + ndc_x[:, 2]) / 3.0
    centroid_y = (ndc_y[:, 0] + ndc_y[:, 1] + ndc_y[:, 2]) / 3.0
    orient = torch.sign(total[:, 0] + total[:, 1] * centroid_x + total[:, 2] * centroid_y)
    out = torch.cat([lam, depth.unsqueeze(1), weight.unsqueeze(1)], dim=1)
    return out * orient[:, None, None]


# Faces whose pixel box fits in this many pixels a side are tested on a fixed window by
# broadcasting (no per-pair gathers); larger faces go through candidate_pairs.
_SMALL_BOX = 4


def _inside_pairs(
    edge_coeffs: torch.Tensor, face_ndc: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(face, pixel) pairs whose pixel centre is inside the face: face [P], x [P], y [P] (int64).

    edge_coeffs [N, 9] are the sign-normalised linear forms (c, a, b) of the three barycentrics.
    """
    x0, x1, y0, y1 = _face_bboxes(face_ndc, height, width, 0.0)
    box_w, box_h = x1 - x0 + 1, y1 - y0 + 1
    small = (box_w <= _SMALL_BOX) & (box_h <= _SMALL_BOX) & (box_w > 0) & (box_h > 0)
    small_ids = torch.nonzero(small).squeeze(1)
    large_ids = torch.nonzero(~small & (box_w > 0) & (box_h > 0)).squeeze(1)
    dtype = edge_coeffs.dtype
    # Small faces: every pixel of a _SMALL_BOX x _SMALL_BOX window at the box corner, [S, K, K].
    offsets = torch.arange(_SMALL_BOX, device=face_ndc.device)
    xs = x0.index_select(0, small_ids)[:, None] + offsets  # [S, K]
    ys = y0.index_select(0, small_ids)[:, None] + offsets
    ndc_x = (xs.to(dtype) + 0.5) * (2.0 / width) - 1.0
    ndc_y = (ys.to(dtype) + 0.5) * (2.0 / height) - 1.0
    coeffs = edge_coeffs.index_select(0, small_ids)  # [S, 9]
    inside = (xs < width)[:, None, :] & (ys < height)[:, :, None]
    for i in range(3):
        const, a, b = (
            coeffs[:, 3 * i, None, None],
            coeffs[:, 3 * i + 1, None],
            coeffs[:, 3 * i + 2, None],
        )
        inside &= (const + (a * ndc_x)[:, None, :] + (b * ndc_y)[:, :, None]) >= 0
    hit = torch.nonzero(inside.reshape(-1)).squeeze(1)
    window = _SMALL_BOX * _SMALL_BOX
    small_face = hit // window
    small_y = ys.reshape(-1).index_select(0, small_face * _SMALL_BOX + (hit % window) // _SMALL_BOX)
    small_x = xs.reshape(-1).index_select(0, small_face * _SMALL_BOX + hit % _SMALL_BOX)
    small_face = small_ids.index_select(0, small_face)
    # Large faces: enumerate their boxes, then test.
    pair_face, pair_x, pair_y = candidate_pairs(face_ndc.index_select(0, large_ids), height, width)
    edge = edge_coeffs.index_select(0, large_ids).index_select(0, pair_face).reshape(-1, 3, 3)
    pair_ndc_x = (pair_x.to(dtype) + 0.5) * (2.0 / width) - 1.0
    pair_ndc_y = (pair_y.to(dtype) + 0.5) * (2.0 / height) - 1.0
    lam = edge[..., 0] + edge[..., 1] * pair_ndc_x[:, None] + edge[..., 2] * pair_ndc_y[:, None]
    keep = torch.nonzero((lam >= 0).all(-1)).squeeze(1)
    large_face = large_ids.index_select(0, pair_face.index_select(0, keep))
    return (
        torch.cat([small_face, large_face]),
        torch.cat([small_x, pair_x.index_select(0, keep)]),
        torch.cat([small_y, pair_y.index_select(0, keep)]),
    )


def rasterize(
    pos: torch.Tensor,
    tri: torch.Tensor,
    resolution: tuple[int, int],
    *,
    cull_backfaces: bool = False,
) -> torch.Tensor:
    """Rasterize clip-space triangles.

    pos: [batch, vertices, 4] float clip coords; tri: [triangles, 3] int32/int64.
    Returns rast [batch, height, width, 4] = (u, v, z/w, triangle_id + 1) in pos's dtype, all zero
    where no triangle covers the pixel centre. u, v are the perspective-correct barycentric
    weights of tri[:, 0] and tri[:, 1] and carry gradients to pos; z/w and the id carry none.
    Row 0 is the bottom of the image (y_ndc = -1). Faces with a vertex at w <= 0 are dropped;
    pixels whose z/w falls outside [-1, 1] are not drawn. cull_backfaces drops faces that are
    clockwise in NDC (valid for closed meshes; about halves the work).
    """
    check_inputs(pos, tri, resolution)
    height, width = int(resolution[0]), int(resolution[1])
    batch, num_vertices, num_faces = pos.shape[0], pos.shape[1], tri.shape[0]
    device = pos.device
    tri = tri.long()
    num_pixels = batch * height * width

    with torch.no_grad():
        flat_ids, face_clip = _flat_faces(pos, tri, cull_backfaces)
        face_ndc = face_clip[..., :2] / face_clip[..., 3:4]
        coeffs = _edge_coefficients(face_clip)  # [N, 5, 3]
        edge_coeffs = coeffs[:, :3].reshape(-1, 9).contiguous()
        depth_coeffs = coeffs[:, 3:].reshape(-1, 6).contiguous()
        face_index, pixel_x, pixel_y = _inside_pairs(edge_coeffs, face_ndc, height, width)
        best_depth = torch.full((num_pixels,), math.inf, device=device, dtype=pos.dtype)
        pair_pixel_all, pair_face_all, pair_depth_all = [], [], []
        for start in range(0, face_index.numel(), _CHUNK_PAIRS):
            f_idx = face_index[start : start + _CHUNK_PAIRS]
            px = pixel_x[start : start + _CHUNK_PAIRS]
            py = pixel_y[start : start + _CHUNK_PAIRS]
            ndc_x = (px.to(pos.dtype) + 0.5) * (2.0 / width) - 1.0
            ndc_y = (py.to(pos.dtype) + 0.5) * (2.0 / height) - 1.0
            zw = depth_coeffs.index_select(0, f_idx).reshape(-1, 2, 3)  # [P, (Z, W), 3]
            values = zw[..., 0] + zw[..., 1] * ndc_x[:, None] + zw[..., 2] * ndc_y[:, None]
            depth = values[:, 0] / values[:, 1]
            in_range = torch.nonzero((depth >= -1.0) & (depth <= 1.0)).squeeze(1)
            depth = depth.index_select(0, in_range)
            flat_face = flat_ids.index_select(0, f_idx.index_select(0, in_range))
            pixel = (
                (flat_face // num_faces) * (height * width)
                + py.index_select(0, in_range) * width
                + px.index_select(0, in_range)
            )
            pair_pixel_all.append(pixel)
            pair_face_all.append(flat_face % num_faces)
            pair_depth_all.append(depth)
        pair_pixel = torch.cat(pair_pixel_all) if pair_pixel_all else face_index[:0]
        pair_face = torch.cat(pair_face_all) if pair_face_all else face_index[:0]
        pair_depth = torch.cat(pair_depth_all) if pair_depth_all else best_depth[:0]
        best_depth.scatter_reduce_(0, pair_pixel, pair_depth, reduce="amin")
        # Ties in depth go to the highest triangle id, deterministically.
        is_best = torch.nonzero(pair_depth == best_depth.index_select(0, pair_pixel)).squeeze(1)
        best_face = torch.full((num_pixels,), -1, dtype=torch.long, device=device)
        best_face.scatter_reduce_(
            0,
            pair_pixel.index_select(0, is_best),
            pair_face.index_select(0, is_best),
            reduce="amax",
        )
        covered = torch.nonzero(best_face >= 0).squeeze(1)
        covered_face = best_face.index_select(0, covered)

    # Differentiable part: barycentrics of the winning face only.
    batch_of = covered // (height * width)
    rem = covered % (height * width)
    point = torch.stack(
        [
            ((rem % width).to(pos.dtype) + 0.5) * (2.0 / width) - 1.0,
            ((rem // width).to(pos.dtype) + 0.5) * (2.0 / height) - 1.0,
        ],
        dim=-1,
    )
    corner_rows = (
        batch_of.unsqueeze(1) * num_vertices + tri.index_select(0, covered_face)
    ).reshape(-1)
    corners = pos.reshape(-1, 4).index_select(0, corner_rows).reshape(-1, 3, 4)  # [N, 3, 4]
    weights = homogeneous_barycentrics(corners, point)
    uv = weights[:, :2] / weights.sum(-1, keepdim=True)
    rast_uv = torch.zeros(num_pixels, 2, device=device, dtype=pos.dtype).index_put((covered,), uv)
    rast_rest = torch.zeros(num_pixels, 2, device=device, dtype=pos.dtype)
    rast_rest[covered, 0] = best_depth[covered]
    rast_rest[covered, 1] = (covered_face + 1).to(pos.dtype)
    return torch.cat([rast_uv, rast_rest], dim=-1).reshape(batch, height, width, 4)


def _point_segment_dist2(
    point: torch.Tensor, start: torch.Tensor, end: torch.Tensor
) -> torch.Tensor:
    """Squared distance from points [P, 2] to segments start->end [P, 2]."""
    edge = end - start
    t = ((point - start) * edge).sum(-1) / (edge * edge).sum(-1).clamp(min=1e-12)
    closest = start + t.clamp(0.0, 1.0).unsqueeze(-1) * edge
    return ((point - closest) ** 2).sum(-1)


def triangle_dist2(point: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
    """Squared 2D distance from points [P, 2] to the boundary of triangles [P, 3, 2]."""
    d01 = _point_segment_dist2(point, corners[:, 0], corners[:, 1])
    d12 = _point_segment_dist2(point, corners[:, 1], corners[:, 2])
    d20 = _point_segment_dist2(point, corners[:, 2], corners[:, 0])
    return torch.minimum(torch.minimum(d01, d12), d20)


def soft_silhouette(
    pos: torch.Tensor,
    tri: torch.Tensor,
    rast: torch.Tensor,
    *,
    sigma_inv: float = 7000.0,
    min_prob: float = 1e-4,
) -> torch.Tensor:
    """DIB-R soft mask: [batch, height, width, 1] in [0, 1].

    Covered pixels (rast id > 0) get 1. An uncovered pixel gets 1 - prod_j (1 - exp(-sigma_inv *
    d_j^2)), d_j the NDC distance from its centre to face j, over the faces whose bounding box
    padded by sqrt(ln(1 / min_prob) / sigma_inv) contains it. Gradients flow to pos through d_j.
    """
    batch, height, width = rast.shape[0], rast.shape[1], rast.shape[2]
    check_inputs(pos, tri, (height, width))
    tri = tri.long()
    num_faces = tri.shape[0]
    device = pos.device
    num_pixels = batch * height * width
    pad = math.sqrt(math.log(1.0 / min_prob) / sigma_inv)
    uncovered = (rast[..., 3] == 0).reshape(-1)

    with torch.no_grad():
        flat_ids, face_clip = _flat_faces(pos, tri, cull_backfaces=False)
        face_ndc = face_clip[..., :2] / face_clip[..., 3:4]
        face_index, pixel_x, pixel_y = candidate_pairs(face_ndc, height, width, pad_ndc=pad)
        flat_face = flat_ids[face_index]
        pixel = (flat_face // num_faces) * (height * width) + pixel_y * width + pixel_x
        keep = uncovered[pixel]
        face_index, pixel, flat_face = face_index[keep], pixel[keep], flat_face[keep]
        pixel_x, pixel_y = pixel_x[keep], pixel_y[keep]
        point = torch.stack(
            [
                (pixel_x.to(pos.dtype) + 0.5) * (2.0 / width) - 1.0,
                (pixel_y.to(pos.dtype) + 0.5) * (2.0 / height) - 1.0,
            ],
            dim=-1,
        )
        near = triangle_dist2(point, face_ndc[face_index]) < pad * pad
        pixel, flat_face, point = pixel[near], flat_face[near], point[near]

    corners = gather_corners(
        pos, flat_face // num_faces, tri.index_select(0, flat_face % num_faces)
    )
    corners_ndc = corners[..., :2] / corners[..., 3:4]
    prob = torch.exp(-sigma_inv * triangle_dist2(point, corners_ndc))
    log_miss = torch.log1p(-prob.clamp(max=1.0 - 1e-6))
    log_miss_pixel = torch.zeros(num_pixels, device=device, dtype=pos.dtype).index_add(
        0, pixel, log_miss
    )
    soft = 1.0 - torch.exp(log_miss_pixel)
    mask = torch.where(uncovered, soft, torch.ones_like(soft))
    return mask.reshape(batch, height, width, 1)


def _screen_barycentrics(corners_ndc: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    """Screen-space (linear in NDC) barycentrics of points [P, 2] in triangles [P, 3, 2] -> [P, 3]."""
    a, b, c = corners_ndc[:, 0], corners_ndc[:, 1], corners_ndc[:, 2]

    def cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]

    area = cross(b - a, c - a)
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, 1e-12), area)
    w0 = cross(b - point, c - point) / area
    w1 = cross(c - point, a - point) / area
    return torch.stack([w0, w1, 1.0 - w0 - w1], dim=-1)


def antialias(
    color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor, tri: torch.Tensor
) -> torch.Tensor:
    """Analytic silhouette antialiasing in the manner of nvdiffrast's antialias.

    color [B, H, W, C], rast from rasterize(pos, tri), pos [B, V, 4], tri [T, 3]. For every pair
    of horizontally or vertically adjacent pixels where exactly one is covered, the covered
    face's edge crosses the segment between the centres at fraction t (from the covered pixel).
    If t < 0.5 the covered pixel takes (0.5 - t) of the empty one's colour, else the empty pixel
    takes (t - 0.5) of the covered one's. Gradients reach pos through t, so silhouette losses move
    vertices both outwards and inwards. Occlusion edges between two faces are not antialiased.
    """
    batch, height, width, channels = color.shape
    tri = tri.long()
    face = rast[..., 3].long() - 1  # [B, H, W]
    covered = face >= 0
    out = color.reshape(-1, channels)
    deltas = []
    for axis in (1, 2):  # vertical neighbours (rows), horizontal neighbours (columns)
        a_cov = covered.narrow(axis, 0, covered.shape[axis] - 1)
        b_cov = covered.narrow(axis, 1, covered.shape[axis] - 1)
        for inside_first in (True, False):
            edge_pairs = (a_cov & ~b_cov) if inside_first else (~a_cov & b_cov)
            bb, yy, xx = torch.nonzero(edge_pairs, as_tuple=True)
            step_y, step_x = (1, 0) if axis == 1 else (0, 1)
            if inside_first:
                in_y, in_x, out_y, out_x = yy, xx, yy + step_y, xx + step_x
            else:
                in_y, in_x, out_y, out_x = yy + step_y, xx + step_x, yy, xx
            deltas.append((bb, in_y, in_x, out_y, out_x))
    pixel_in = torch.cat([b * height * width + y * width + x for b, y, x, _, _ in deltas])
    pixel_out = torch.cat([b * height * width + y * width + x for b, _, _, y, x in deltas])
    if pixel_in.numel() == 0:
        return color
    batch_of = pixel_in // (height * width)
    face_in = face.reshape(-1)[pixel_in]
    corners = gather_corners(pos, batch_of, tri.index_select(0, face_in))  # [P, 3, 4]
    corners_ndc = corners[..., :2] / corners[..., 3:4]

    def centre(pixel: torch.Tensor) -> torch.Tensor:
        rem = pixel % (height * width)
        return torch.stack(
            [
                ((rem % width).to(pos.dtype) + 0.5) * (2.0 / width) - 1.0,
                ((rem // width).to(pos.dtype) + 0.5) * (2.0 / height) - 1.0,
            ],
            dim=-1,
        )

    bary_in = _screen_barycentrics(corners_ndc, centre(pixel_in))
    bary_out = _screen_barycentrics(corners_ndc, centre(pixel_out))
    # Along the segment each barycentric is linear; the face is left where the first one hits 0.
    drop = bary_in - bary_out
    crossing = torch.where(
        (bary_out < 0) & (drop > 1e-12), bary_in / drop.clamp(min=1e-12), torch.full_like(drop, 2.0)
    )
    t = crossing.min(dim=-1).values.clamp(0.0, 1.0)  # [P]
    color_in, color_out = out[pixel_in], out[pixel_out]
    to_in = (0.5 - t).clamp(min=0.0).unsqueeze(-1) * (color_out - color_in)
    to_out = (t - 0.5).clamp(min=0.0).unsqueeze(-1) * (color_in - color_out)
    out = out.index_add(0, pixel_in, to_in).index_add(0, pixel_out, to_out)
    return out.reshape(batch, height, width, channels)


def antialias_silhouette(pos: torch.Tensor, tri: torch.Tensor, rast: torch.Tensor) -> torch.Tensor:
    """Coverage [B, H, W, 1]: the hard mask antialiased at silhouette edges (unbiased, so a mask
    fitted with it converges onto the target's boundary; gradients on both sides of it)."""
    mask = (rast[..., 3:4] > 0).to(pos.dtype)
    return antialias(mask, rast, pos, tri).clamp(0.0, 1.0)
