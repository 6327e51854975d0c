"""Rasterizer: fast path vs brute-force reference, gradients vs finite differences, fitting."""

from __future__ import annotations

import math

import pytest
import torch

from assetgan.core.errors import AssetganError
from assetgan.render import (
    antialias_silhouette,
    interpolate,
    rasterize,
    soft_silhouette,
    texture,
)
from assetgan.render.camera import orbit_camera, stack_mvp, transform_points
from assetgan.render.mesh import icosphere, uniform_laplacian_loss
from assetgan.render.reference import rasterize_dense, soft_silhouette_dense


def random_scene(
    seed: int, batch: int = 2, vertices: int = 40, faces: int = 30, dtype=torch.float32
):
    """Random triangles in front of the camera (w in [1.5, 3.5]) overlapping in depth."""
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, vertices, 4, generator=gen, dtype=dtype)
    pos[..., 3] = torch.rand(batch, vertices, generator=gen, dtype=dtype) * 2.0 + 1.5
    pos[..., :2] *= pos[..., 3:4] * 0.6
    pos[..., 2] = pos[..., 2].clamp(-0.9, 0.9) * pos[..., 3]
    tri = torch.randint(0, vertices, (faces, 3), generator=gen)
    return pos, tri


def edge_distance_px(pos: torch.Tensor, tri: torch.Tensor, resolution) -> torch.Tensor:
    """Per pixel, the distance in pixels to the nearest projected triangle edge of any face."""
    from assetgan.render.reference import _dense_edge_dist2
    from assetgan.render.torch_backend import pixel_centres_ndc

    height, width = resolution
    points = pixel_centres_ndc(height, width, pos.device, pos.dtype).reshape(-1, 2)
    scale = torch.tensor([width / 2.0, height / 2.0], dtype=pos.dtype)
    out = []
    for b in range(pos.shape[0]):
        corners = pos[b][tri][..., :2] / pos[b][tri][..., 3:4]
        dist2 = _dense_edge_dist2(points * scale, corners * scale)
        out.append(dist2.min(dim=1).values.sqrt().reshape(height, width))
    return torch.stack(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rasterize_matches_brute_force(seed):
    pos, tri = random_scene(seed)
    resolution = (37, 53)
    fast = rasterize(pos, tri, resolution)
    dense = rasterize_dense(pos, tri, resolution)
    away = edge_distance_px(pos, tri, resolution) > 1e-3
    assert (fast[..., 3] > 0).float().mean() > 0.2  # the scene really covers the image
    assert torch.equal(fast[..., 3][away], dense[..., 3][away])
    same = fast[..., 3] == dense[..., 3]
    assert same.float().mean() > 0.999
    assert (fast[..., :3][same] - dense[..., :3][same]).abs().max() < 1e-5


def test_rasterize_conventions_single_triangle():
    # A triangle covering the lower-left half of the image: row 0 is the bottom (y = -1).
    pos = torch.tensor([[[-1.0, -1.0, 0.5, 1.0], [1.0, -1.0, 0.5, 1.0], [-1.0, 1.0, 0.5, 1.0]]])
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast = rasterize(pos, tri, (4, 4))
    assert rast[0, 0, 0, 3] == 1 and rast[0, 3, 3, 3] == 0
    # Pixel centre (row 0, col 0) is ndc (-0.75, -0.75) = 0.75 A + 0.125 B + 0.125 C.
    u, v = rast[0, 0, 0, 0].item(), rast[0, 0, 0, 1].item()
    assert math.isclose(u, 0.75, abs_tol=1e-6) and math.isclose(v, 0.125, abs_tol=1e-6)
    assert math.isclose(rast[0, 0, 0, 2].item(), 0.5, abs_tol=1e-6)


def test_perspective_correct_barycentrics():
    # A quad receding in depth: interpolating world x must be perspective-correct.
    camera = orbit_camera(0.0, 0.0, 3.0, fov_y_deg=60.0, size=(32, 32))
    world = torch.tensor([[-1.0, -1, 0], [1, -1, 0], [1, 1, -4], [-1, 1, -4]])
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]])
    clip = transform_points(world, stack_mvp([camera]))
    rast = rasterize(clip, tri, (32, 32))
    position = interpolate(world, rast, tri)[0]
    covered = rast[0, ..., 3] > 0
    reprojected, _ = camera.project(position[covered])
    rows, cols = torch.nonzero(covered, as_tuple=True)
    expected = torch.stack([cols.float() + 0.5, 32 - (rows.float() + 0.5)], dim=-1)
    assert (reprojected - expected).abs().max() < 1e-3


def test_interpolate_gradients_match_finite_differences():
    pos, tri = random_scene(3, batch=1, vertices=12, faces=6, dtype=torch.float64)
    resolution = (24, 24)
    attr = torch.randn(1, 12, 3, dtype=torch.float64)
    weights = torch.randn(1, *resolution, 3, dtype=torch.float64)
    base = rasterize(pos, tri, resolution)
    interior = edge_distance_px(pos, tri, resolution) > 0.05

    def loss_fn(p, a):
        out = interpolate(a, rasterize(p, tri, resolution), tri)
        return (out * weights * interior.unsqueeze(-1)).sum()

    pos_var = pos.clone().requires_grad_(True)
    attr_var = attr.clone().requires_grad_(True)
    loss_fn(pos_var, attr_var).backward()
    eps = 1e-6
    checked = 0
    for index in torch.randperm(12 * 3)[:12].tolist():
        v, c = divmod(index, 3)
        plus, minus = pos.clone(), pos.clone()
        plus[0, v, c] += eps
        minus[0, v, c] -= eps
        assert torch.equal(rasterize(plus, tri, resolution)[..., 3], base[..., 3])
        numeric = (loss_fn(plus, attr) - loss_fn(minus, attr)) / (2 * eps)
        assert math.isclose(
            pos_var.grad[0, v, c].item(), numeric.item(), rel_tol=1e-4, abs_tol=1e-6
        )
        checked += 1
    assert checked == 12
    assert pos_var.grad.abs().sum() > 0 and attr_var.grad.abs().sum() > 0


def test_soft_silhouette_matches_dense_and_finite_differences():
    pos, tri = random_scene(4, batch=1, vertices=9, faces=3, dtype=torch.float64)
    resolution = (20, 20)
    rast = rasterize(pos, tri, resolution)
    fast = soft_silhouette(pos, tri, rast, sigma_inv=200.0, min_prob=1e-12)
    dense = soft_silhouette_dense(pos, tri, rast, sigma_inv=200.0)
    assert (fast - dense).abs().max() < 1e-9
    soft_pixels = (fast > 1e-3) & (fast < 0.999)
    assert soft_pixels.sum() > 5  # a real soft rim exists around the triangles

    target = torch.rand(1, *resolution, 1, dtype=torch.float64)

    def loss_fn(p):
        return (
            (soft_silhouette(p, tri, rast, sigma_inv=200.0, min_prob=1e-12) - target) ** 2
        ).sum()

    pos_var = pos.clone().requires_grad_(True)
    loss_fn(pos_var).backward()
    eps = 1e-6
    for v in range(9):
        for c in range(2):
            plus, minus = pos.clone(), pos.clone()
            plus[0, v, c] += eps
            minus[0, v, c] -= eps
            numeric = (loss_fn(plus) - loss_fn(minus)) / (2 * eps)
            assert math.isclose(
                pos_var.grad[0, v, c].item(), numeric.item(), rel_tol=1e-4, abs_tol=1e-7
            )


def test_texture_wrap_and_clamp():
    tex = torch.arange(16.0).reshape(1, 4, 4, 1)
    # Texel centres sample exactly; u runs along the width, v along the height.
    uv = torch.tensor([[[[0.125, 0.125], [0.375, 0.125], [0.125, 0.625]]]])
    out = texture(tex, uv, "linear", "clamp")
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 1.0, 8.0]))
    # Wrap: the border between texel 3 and texel 0 of the same row blends them.
    out = texture(tex, torch.tensor([[[[1.0, 0.125]]]]), "linear", "wrap")
    assert math.isclose(out.item(), 1.5, abs_tol=1e-5)
    out = texture(tex, torch.tensor([[[[1.0 + 0.125, 0.125]]]]), "linear", "wrap")
    assert math.isclose(out.item(), 0.0, abs_tol=1e-5)
    with pytest.raises(AssetganError):
        texture(tex, uv, "cubic", "wrap")


def test_bad_inputs_raise_clear_errors():
    pos, tri = random_scene(0)
    with pytest.raises(AssetganError, match="pos must be"):
        rasterize(pos[..., :3], tri, (8, 8))
    with pytest.raises(AssetganError, match="indexes vertices"):
        rasterize(pos, tri + 100, (8, 8))
    with pytest.raises(AssetganError, match="tri must be int"):
        rasterize(pos, tri.float(), (8, 8))


def test_antialias_silhouette_gradients_match_finite_differences():
    pos, tri = random_scene(5, batch=1, vertices=9, faces=3, dtype=torch.float64)
    resolution = (24, 24)
    base = rasterize(pos, tri, resolution)
    coverage = antialias_silhouette(pos, tri, base)
    hard = (base[..., 3:4] > 0).to(torch.float64)
    blended = (coverage - hard).abs() > 1e-6
    assert blended.sum() > 5  # the edge pixels really are blended
    assert ((coverage >= 0) & (coverage <= 1)).all()
    target = torch.rand(1, *resolution, 1, dtype=torch.float64)

    def loss_fn(p):
        return ((antialias_silhouette(p, tri, rasterize(p, tri, resolution)) - target) ** 2).sum()

    pos_var = pos.clone().requires_grad_(True)
    loss_fn(pos_var).backward()
    assert pos_var.grad[0, :, :2].abs().sum() > 0
    eps = 1e-7
    for v in range(9):
        for c in range(2):
            plus, minus = pos.clone(), pos.clone()
            plus[0, v, c] += eps
            minus[0, v, c] -= eps
            if not torch.equal(rasterize(plus, tri, resolution), rasterize(minus, tri, resolution)):
                continue  # a pixel centre changed sides: not differentiable there
            numeric = (loss_fn(plus) - loss_fn(minus)) / (2 * eps)
            assert math.isclose(
                pos_var.grad[0, v, c].item(), numeric.item(), rel_tol=1e-4, abs_tol=1e-6
            )


def silhouette_views(vertices, faces, cameras, resolution):
    clip = transform_points(vertices, stack_mvp(cameras))
    rast = rasterize(clip, faces, resolution)
    return antialias_silhouette(clip, faces, rast), rast


def test_fit_icosphere_to_target_silhouettes():
    """Silhouette IoU + Laplacian moves a sphere onto a box-like target seen in 4 views."""
    torch.manual_seed(0)
    resolution = (48, 48)
    cameras = [
        orbit_camera(az, 20.0, 4.0, fov_y_deg=40.0, size=resolution) for az in (0, 70, 160, 250)
    ]
    target_mesh = icosphere(3)
    stretch = torch.tensor([1.3, 0.55, 0.8])
    target_vertices = target_mesh.vertices.sign() * target_mesh.vertices.abs() ** 0.6 * stretch
    with torch.no_grad():
        _, target_rast = silhouette_views(target_vertices, target_mesh.faces, cameras, resolution)
    target = (target_rast[..., 3:4] > 0).float()

    sphere = icosphere(3)
    offsets = torch.zeros_like(sphere.vertices, requires_grad=True)
    optimizer = torch.optim.Adam([offsets], lr=0.01)

    def hard_iou(vertices):
        with torch.no_grad():
            _, rast = silhouette_views(vertices, sphere.faces, cameras, resolution)
        pred = rast[..., 3:4] > 0
        return ((pred & (target > 0)).sum() / (pred | (target > 0)).sum()).item()

    start_iou = hard_iou(sphere.vertices * 0.8)
    for _ in range(100):
        vertices = sphere.vertices * 0.8 + offsets
        mask, _ = silhouette_views(vertices, sphere.faces, cameras, resolution)
        iou_loss = 1.0 - (mask * target).sum() / (mask + target - mask * target).sum()
        loss = iou_loss + 0.3 * uniform_laplacian_loss(vertices, sphere.faces)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final_iou = hard_iou(sphere.vertices * 0.8 + offsets.detach())
    assert start_iou < 0.8
    assert final_iou >= 0.9, f"IoU {start_iou:.3f} -> {final_iou:.3f}"


@pytest.mark.cuda
def test_nvdiffrast_parity():
    """Torch backend vs nvdiffrast on the same scene (runs only with CUDA + nvdiffrast)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("nvdiffrast.torch")
    from assetgan.render import NvdiffrastBackend, TorchBackend

    pos, tri = random_scene(0)
    pos, tri = pos.cuda(), tri.cuda().int()
    resolution = (64, 64)
    ours = TorchBackend().rasterize(pos, tri, resolution)
    theirs = NvdiffrastBackend("cuda").rasterize(pos, tri, resolution)
    away = edge_distance_px(pos.cpu(), tri.cpu(), resolution).cuda() > 1e-2
    assert torch.equal(ours[..., 3][away], theirs[..., 3][away])
    same = ours[..., 3] == theirs[..., 3]
    assert (ours[..., :2][same] - theirs[..., :2][same]).abs().max() < 1e-4
    attr = torch.randn(1, pos.shape[1], 3, device="cuda")
    ours_i = TorchBackend().interpolate(attr, ours, tri)
    theirs_i = NvdiffrastBackend("cuda").interpolate(attr, theirs, tri)
    assert (ours_i[same] - theirs_i[same]).abs().max() < 1e-3


def test_silhouette_mode_is_an_enum_and_bad_names_are_refused():
    from assetgan.core.errors import AssetganError
    from assetgan.render import SilhouetteMode, TorchBackend

    assert TorchBackend(silhouette_mode="dibr").silhouette_mode is SilhouetteMode.dibr
    assert TorchBackend().silhouette_mode is SilhouetteMode.antialias
    with pytest.raises(AssetganError, match="antialias, dibr"):
        TorchBackend(silhouette_mode="softras")
