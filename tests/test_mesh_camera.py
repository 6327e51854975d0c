"""Meshes (icosphere, normals, I/O) and cameras (projection, intrinsics, json)."""

from __future__ import annotations

import pytest
import torch

from assetgan.core.errors import AssetganError
from assetgan.render.camera import Camera, orbit_camera, orbit_eye
from assetgan.render.mesh import (
    icosphere,
    load_mesh,
    save_mesh,
    uniform_laplacian_loss,
    vertex_normals,
)


@pytest.mark.parametrize(("level", "vertices", "faces"), [(3, 642, 1280), (4, 2562, 5120)])
def test_icosphere_counts_and_uvs(level, vertices, faces):
    mesh = icosphere(level)
    assert (mesh.num_vertices, mesh.num_faces) == (vertices, faces)
    assert torch.allclose(mesh.vertices.norm(dim=1), torch.ones(vertices), atol=1e-6)
    face_uv = mesh.uv[mesh.uv_faces]  # [T, 3, 2]
    # Seams are split: no face spans more than a fraction of the texture.
    assert (face_uv[..., 0].amax(1) - face_uv[..., 0].amin(1)).max() < 0.25
    normals = vertex_normals(mesh.vertices, mesh.faces)
    assert (normals * mesh.vertices).sum(1).min() > 0.99  # outward, counter-clockwise faces


def test_laplacian_zero_for_flat_grid_interior_and_positive_for_noise():
    mesh = icosphere(2)
    smooth = uniform_laplacian_loss(mesh.vertices, mesh.faces)
    noisy = uniform_laplacian_loss(
        mesh.vertices + 0.05 * torch.randn_like(mesh.vertices), mesh.faces
    )
    assert noisy > 2 * smooth


def test_mesh_round_trip_and_errors(tmp_path):
    mesh = icosphere(1)
    path = save_mesh(mesh, tmp_path / "sphere.ply")
    loaded = load_mesh(path)
    assert loaded.num_faces == mesh.num_faces
    assert torch.allclose(loaded.vertices, mesh.vertices, atol=1e-5)
    (tmp_path / "empty.obj").write_text("# nothing\n")
    with pytest.raises(AssetganError, match="no triangles"):
        load_mesh(tmp_path / "empty.obj")
    with pytest.raises(AssetganError, match="no such mesh"):
        load_mesh(tmp_path / "missing.obj")
    (tmp_path / "bad.xyz").write_text("1 2 3")
    with pytest.raises(AssetganError, match="unsupported mesh format"):
        load_mesh(tmp_path / "bad.xyz")


def test_orbit_camera_conventions():
    # Azimuth 0 looks at the front (+Z), 90 at the left side (+X); the target projects to centre.
    assert torch.allclose(orbit_eye(0, 0, 5), torch.tensor([0.0, 0.0, 5.0]), atol=1e-6)
    assert torch.allclose(orbit_eye(90, 0, 5), torch.tensor([5.0, 0.0, 0.0]), atol=1e-6)
    camera = orbit_camera(30.0, 20.0, 6.0, fov_y_deg=40.0, size=(48, 64))
    centre, depth = camera.project(torch.zeros(1, 3))
    assert torch.allclose(centre, torch.tensor([[32.0, 24.0]]), atol=1e-4)
    assert abs(depth.item() - 6.0) < 1e-4
    # A point above the target appears above the centre (smaller row).
    above, _ = camera.project(torch.tensor([[0.0, 0.5, 0.0]]))
    assert above[0, 1] < 24.0
    # Intrinsics reproduce project() for camera-frame points.
    points = torch.randn(10, 3)
    pixels, _ = camera.project(points)
    cam = (torch.cat([points, torch.ones(10, 1)], 1) @ camera.view.T)[:, :3]
    flipped = torch.stack([cam[:, 0], -cam[:, 1], -cam[:, 2]], 1)  # OpenCV frame
    homo = flipped @ camera.intrinsics().T
    assert torch.allclose(homo[:, :2] / homo[:, 2:], pixels, atol=1e-3)
    again = Camera.from_json(camera.to_json())
    assert torch.allclose(again.mvp, camera.mvp)
    with pytest.raises(AssetganError):
        Camera.from_json({"view": []})


def test_orbit_mvp_matches_orbit_camera_and_is_differentiable():
    from assetgan.render.camera import orbit_camera, orbit_mvp

    orbits = torch.tensor(
        [[30.0, 10.0, 9.0, 32.0, 0.1, 0.5, -0.2], [250.0, 25.0, 7.0, 20.0, 0.0, 0.6, 0.3]],
        requires_grad=True,
    )
    mvp = orbit_mvp(orbits, (64, 48))
    for row, matrix in zip(orbits.tolist(), mvp, strict=True):
        azimuth, elevation, distance, fov, *target = row
        camera = orbit_camera(
            azimuth, elevation, distance, fov_y_deg=fov, size=(64, 48), target=target,
            near=max(0.3 * distance, 0.1), far=3.0 * distance,
        )  # fmt: skip
        assert torch.allclose(matrix, camera.mvp, atol=1e-5)
    mvp.sum().backward()
    assert bool((orbits.grad[:, :3].abs() > 0).all())
