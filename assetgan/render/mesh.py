"""Triangle meshes: a small dataclass, icospheres with UVs, normals, Laplacians, I/O via trimesh."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from assetgan.core.errors import AssetganError


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh. Optional fields are None when absent."""

    vertices: torch.Tensor  # [V, 3] float32, metres
    faces: torch.Tensor  # [T, 3] int64, counter-clockwise seen from outside
    uv: torch.Tensor | None = None  # [Vt, 2] texture coordinates in [0, 1]
    uv_faces: torch.Tensor | None = None  # [T, 3] int64 indices into uv (seams split)
    face_parts: torch.Tensor | None = None  # [T] int64 car_20 part ids
    vertex_colors: torch.Tensor | None = None  # [V, 3] float32 in [0, 1]
    face_colors: torch.Tensor | None = None  # [T, 3] float32 in [0, 1]

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def with_vertices(self, vertices: torch.Tensor) -> Mesh:
        return replace(self, vertices=vertices)

    def normalized(self, extent: float = 1.0) -> Mesh:
        """Centre the bounding box at the origin and scale its largest side to `extent`."""
        lo = self.vertices.amin(0)
        hi = self.vertices.amax(0)
        scale = extent / float((hi - lo).max().clamp(min=1e-12))
        return self.with_vertices((self.vertices - (lo + hi) / 2.0) * scale)

    def to_trimesh(self):
        import trimesh

        visual = None
        if self.face_colors is not None:
            visual = trimesh.visual.ColorVisuals(
                face_colors=(self.face_colors.clamp(0, 1).numpy() * 255).astype(np.uint8)
            )
        elif self.vertex_colors is not None:
            visual = trimesh.visual.ColorVisuals(
                vertex_colors=(self.vertex_colors.clamp(0, 1).numpy() * 255).astype(np.uint8)
            )
        return trimesh.Trimesh(
            self.vertices.detach().numpy(), self.faces.numpy(), visual=visual, process=False
        )


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted vertex normals, [V, 3] or [B, V, 3] (differentiable)."""
    corners = vertices[..., faces, :]  # [..., T, 3, 3]
    face_n = torch.linalg.cross(
        corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :]
    )
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals = normals.index_add(-2, faces[:, k], face_n)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit face normals [..., T, 3]."""
    corners = vertices[..., faces, :]
    cross = torch.linalg.cross(
        corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :]
    )
    return torch.nn.functional.normalize(cross, dim=-1, eps=1e-12)


def edges(faces: torch.Tensor) -> torch.Tensor:
    """Unique undirected edges [E, 2] (sorted vertex pairs)."""
    pairs = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return torch.unique(pairs.sort(dim=1).values, dim=0)


def uniform_laplacian_loss(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """mean ||v - mean(neighbours(v))||^2 over vertices (and batch if [B, V, 3])."""
    edge = edges(faces)
    num_vertices = vertices.shape[-2]
    degree = torch.zeros(num_vertices, dtype=vertices.dtype, device=vertices.device)
    degree.index_add_(
        0, edge.reshape(-1), torch.ones(edge.numel(), dtype=vertices.dtype, device=vertices.device)
    )
    summed = torch.zeros_like(vertices)
    summed = summed.index_add(-2, edge[:, 0], vertices[..., edge[:, 1], :])
    summed = summed.index_add(-2, edge[:, 1], vertices[..., edge[:, 0], :])
    delta = vertices - summed / degree.clamp(min=1).unsqueeze(-1)
    return (delta**2).sum(-1).mean()


def _icosahedron() -> tuple[np.ndarray, np.ndarray]:
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = np.array(
        [
            [-1, t, 0],
            [1, t, 0],
            [-1, -t, 0],
            [1, -t, 0],
            [0, -1, t],
            [0, 1, t],
            [0, -1, -t],
            [0, 1, -t],
            [t, 0, -1],
            [t, 0, 1],
            [-t, 0, -1],
            [-t, 0, 1],
        ],
        dtype=np.float64,
    )
    faces = np.array(
        [
            [0, 11, 5],
            [0, 5, 1],
            [0, 1, 7],
            [0, 7, 10],
            [0, 10, 11],
            [1, 5, 9],
            [5, 11, 4],
            [11, 10, 2],
            [10, 7, 6],
            [7, 1, 8],
            [3, 9, 4],
            [3, 4, 2],
            [3, 2, 6],
            [3, 6, 8],
            [3, 8, 9],
            [4, 9, 5],
            [2, 4, 11],
            [6, 2, 10],
            [8, 6, 7],
            [9, 8, 1],
        ],
        dtype=np.int64,
    )
    return verts / np.linalg.norm(verts, axis=1, keepdims=True), faces


def icosphere(subdivisions: int = 3, radius: float = 1.0) -> Mesh:
    """Unit icosphere: 3 -> 642 vertices / 1280 faces, 4 -> 2562 / 5120. Equirectangular UVs with
    the seam split (faces crossing u = 0/1 get duplicated UV vertices), poles at v = 0 / 1."""
    if not 0 <= subdivisions <= 7:
        raise AssetganError(f"icosphere subdivisions must be in 0..7, got {subdivisions}")
    verts, faces = _icosahedron()
    for _ in range(subdivisions):
        verts, faces = _subdivide(verts, faces)
    uv, uv_faces = _sphere_uvs(verts, faces)
    return Mesh(
        vertices=torch.tensor(verts * radius, dtype=torch.float32),
        faces=torch.tensor(faces, dtype=torch.int64),
        uv=torch.tensor(uv, dtype=torch.float32),
        uv_faces=torch.tensor(uv_faces, dtype=torch.int64),
    )


def _subdivide(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split every triangle into four, projecting new vertices onto the unit sphere."""
    midpoint: dict[tuple[int, int], int] = {}
    vert_list = list(verts)

    def middle(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in midpoint:
            m = (vert_list[a] + vert_list[b]) / 2.0
            vert_list.append(m / np.linalg.norm(m))
            midpoint[key] = len(vert_list) - 1
        return midpoint[key]

    new_faces = []
    for a, b, c in faces:
        ab, bc, ca = middle(a, b), middle(b, c), middle(c, a)
        new_faces += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
    return np.array(vert_list), np.array(new_faces, dtype=np.int64)


def _sphere_uvs(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular UVs; seam-crossing faces reference shifted copies (u + 1)."""
    u = 0.5 + np.arctan2(verts[:, 0], verts[:, 2]) / (2.0 * np.pi)
    v = 0.5 - np.arcsin(np.clip(verts[:, 1], -1.0, 1.0)) / np.pi
    uv = [np.stack([u, v], axis=1)]
    uv_faces = faces.copy()
    extra: dict[tuple[int, str], int] = {}
    count = len(verts)
    pole = np.abs(verts[:, 1]) > 1.0 - 1e-9
    for f, face in enumerate(faces):
        us = u[face]
        non_pole = ~pole[face]
        ref = us[non_pole]
        for k, vid in enumerate(face):
            if pole[vid]:  # pole: put u at the mean of the face's other corners
                key, new_u = (f * 3 + k, "pole"), float(np.mean(_unwrap(ref)))
            elif ref.max() - ref.min() > 0.5 and us[k] < 0.5:
                key, new_u = (int(vid), "wrap"), us[k] + 1.0
            else:
                continue
            if key not in extra:
                extra[key] = count
                uv.append(np.array([[new_u, v[vid]]]))
                count += 1
            uv_faces[f, k] = extra[key]
    return np.concatenate(uv).astype(np.float32), uv_faces


def _unwrap(us: np.ndarray) -> np.ndarray:
    return np.where((us.max() - us.min() > 0.5) & (us < 0.5), us + 1.0, us)


MESH_SUFFIXES = (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")


def load_mesh(path: str | Path) -> Mesh:
    """Read OBJ/GLB/glTF/PLY/STL/OFF through trimesh; scenes are flattened into one mesh.
    Raises AssetganError naming the file for missing, unreadable or empty meshes."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise AssetganError(f"{path}: no such mesh file")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise AssetganError(
            f"{path}: unsupported mesh format {path.suffix!r}; use one of {MESH_SUFFIXES}"
        )
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # trimesh raises many types for corrupt files
        raise AssetganError(
            f"{path}: cannot read mesh ({type(error).__name__}: {error})"
        ) from error
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))))
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))))
    if faces.size == 0 or vertices.size == 0:
        raise AssetganError(f"{path}: mesh has no triangles")
    if not np.isfinite(vertices).all():
        raise AssetganError(f"{path}: mesh has non-finite vertex coordinates")
    colors = None
    visual = getattr(loaded, "visual", None)
    if visual is not None and getattr(visual, "kind", None) in ("vertex", "face"):
        try:
            colors = torch.tensor(
                np.asarray(visual.vertex_colors)[:, :3] / 255.0, dtype=torch.float32
            )
        except Exception:  # colours are optional; a mesh without usable colours renders grey
            colors = None
    return Mesh(
        vertices=torch.tensor(vertices, dtype=torch.float32),
        faces=torch.tensor(faces, dtype=torch.int64),
        vertex_colors=colors,
    )


def save_mesh(mesh: Mesh, path: str | Path) -> Path:
    """Write a mesh (format from the suffix) atomically through trimesh."""
    from assetgan.core.io_utils import atomic_write_bytes

    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise AssetganError(
            f"{path}: unsupported mesh format {path.suffix!r}; use one of {MESH_SUFFIXES}"
        )
    payload = mesh.to_trimesh().export(file_type=path.suffix.lower().lstrip("."))
    if isinstance(payload, str):
        payload = payload.encode()
    return atomic_write_bytes(path, payload)
