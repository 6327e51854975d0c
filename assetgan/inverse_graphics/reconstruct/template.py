"""The template mesh the network deforms: a left-right symmetric icosphere, either mapped onto a
smooth car-like body (the default) or onto an ellipsoid, with its mirror tables.

Frames and units: docs/conventions.md (metres, +Y up, front +Z, left +X, ground y = 0).

Why a car-like template (docs/reconstruct.md "Template"): CarWorld and GAN cars all share one
layout (low hood, cabin, deck); starting from it, a 64-pixel silhouette and a short CPU training
only have to learn residuals, and the template posed by a camera is the issue's floor row.
The mapping from the unit sphere is smooth and one-to-one, so the sphere's UVs, faces and mirror
symmetry carry over unchanged.

Mirror symmetry: the icosahedron and its midpoint subdivision are symmetric under x -> -x, so
every vertex has a mirror twin (`mirror_vertex`; vertices on the plane x = 0 are their own).
The equirectangular UVs (u = 0.5 + atan2(x, z) / 2 pi) map x -> -x to u -> 1 - u, which is a flip
of a UV image along its width: texel column i <-> W - 1 - i (`flip_uv_image`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import torch

from assetgan.core.errors import AssetganError
from assetgan.render.mesh import edges, icosphere


class TemplateKind(StrEnum):
    """The shape the network starts from."""

    car = "car"  # smooth car-like body: hood, cabin, deck, narrower greenhouse (default)
    ellipsoid = "ellipsoid"  # an icosphere stretched to the car's mean extents


@dataclass(frozen=True)
class TemplateShape:
    """Extents of the template in metres (defaults: CarWorld's mean car, docs/reconstruct.md)."""

    length: float = 4.6  # along Z
    width: float = 1.85  # along X
    bottom: float = 0.24  # underside height above the ground
    hood: float = 1.0  # top of the hood and of the lower body
    roof: float = 1.52  # top of the cabin
    deck: float = 1.05  # top of the trunk deck
    roundness: float = 0.55  # superellipse exponent of the body (1 = ellipsoid, 0 = box)

    def validate(self) -> TemplateShape:
        if not (self.length > 0 and self.width > 0 and 0 <= self.bottom < self.hood < self.roof):
            raise AssetganError(
                "template extents need length > 0, width > 0 and 0 <= bottom < hood < roof, got "
                f"{self}"
            )
        if not self.bottom < self.deck <= self.roof or not 0.2 <= self.roundness <= 1.0:
            raise AssetganError("template needs bottom < deck <= roof and roundness in [0.2, 1]")
        return self


@dataclass(frozen=True)
class Template:
    """The template mesh and the tables the model and losses use (all torch, CPU)."""

    vertices: torch.Tensor  # [V, 3] float32 metres
    faces: torch.Tensor  # [T, 3] int64, counter-clockwise seen from outside
    uv: torch.Tensor  # [Vt, 2] float32 (u along the UV image width, v along its height)
    uv_faces: torch.Tensor  # [T, 3] int64 into uv
    mirror_vertex: torch.Tensor  # [V] int64: index of each vertex's x -> -x twin
    face_pairs: torch.Tensor  # [E, 2] int64: the two faces sharing each interior edge
    mesh_edges: torch.Tensor  # [E, 2] int64 unique undirected vertex pairs

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def car_body(directions: np.ndarray, shape: TemplateShape) -> np.ndarray:
    """Map unit-sphere points [V, 3] onto the car-like template surface [V, 3] (metres).

    1. A superellipsoid with exponent `roundness` (sign(s) |s|^e per axis) gives a rounded box
       b in [-1, 1]^3.
    2. Length: z = b_z L / 2. Height: y runs from `bottom` (b_y = -1) to a top profile y_top(z):
       the roof over the cabin, falling through the windshield to the hood in front and through
       the rear glass to the deck behind (smoothsteps, so the surface stays smooth).
    3. Width: x = b_x W / 2, narrowed by up to 22% above the hood line (the greenhouse).
    """
    box = np.sign(directions) * np.abs(directions) ** shape.roundness
    half = shape.length / 2.0
    z = box[:, 2] * half
    zn = z / half  # -1 at the tail, +1 at the nose
    windshield = _smoothstep(0.42, 0.05, zn)  # 0 over the hood, 1 over the cabin
    rear = _smoothstep(-0.78, -0.55, zn)  # 0 over the deck, 1 over the cabin
    cabin = windshield * rear
    front_top = shape.hood + (shape.roof - shape.hood) * cabin
    y_top = np.where(zn > -0.55, front_top, shape.deck + (shape.roof - shape.deck) * cabin)
    y = shape.bottom + (box[:, 1] + 1.0) / 2.0 * (y_top - shape.bottom)
    greenhouse = np.clip((y - shape.hood) / max(shape.roof - shape.hood, 1e-6), 0.0, 1.0)
    x = box[:, 0] * shape.width / 2.0 * (1.0 - 0.22 * greenhouse)
    return np.stack([x, y, z], axis=1)


def ellipsoid_body(directions: np.ndarray, shape: TemplateShape) -> np.ndarray:
    """Unit-sphere points [V, 3] -> an ellipsoid spanning the template's extents (metres)."""
    centre_y = (shape.bottom + shape.roof) / 2.0
    radii = np.array([shape.width / 2.0, (shape.roof - shape.bottom) / 2.0, shape.length / 2.0])
    return directions * radii + np.array([0.0, centre_y, 0.0])


def mirror_table(directions: np.ndarray) -> np.ndarray:
    """[V] index of each unit-sphere vertex's x -> -x twin; AssetganError if one is missing."""
    mirrored = directions * np.array([-1.0, 1.0, 1.0])
    distance = np.linalg.norm(mirrored[:, None, :] - directions[None, :, :], axis=-1)
    twin = distance.argmin(1)
    if float(distance[np.arange(len(twin)), twin].max()) > 1e-6:
        raise AssetganError("template vertices are not mirror-symmetric under x -> -x")
    return twin


def adjacent_faces(faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(face pairs [E, 2] sharing an edge, the unique edges [E, 2]) of a closed mesh."""
    mesh_edges = edges(faces)
    key = {(int(a), int(b)): i for i, (a, b) in enumerate(mesh_edges.tolist())}
    pairs = [[-1, -1] for _ in range(len(key))]
    for face_index, face in enumerate(faces.tolist()):
        for a, b in ((face[0], face[1]), (face[1], face[2]), (face[2], face[0])):
            slot = pairs[key[(min(a, b), max(a, b))]]
            slot[0 if slot[0] < 0 else 1] = face_index
    table = torch.tensor(pairs, dtype=torch.int64)
    interior = (table >= 0).all(1)
    return table[interior], mesh_edges


def build_template(
    kind: TemplateKind = TemplateKind.car,
    subdivisions: int = 3,
    shape: TemplateShape = TemplateShape(),
) -> Template:
    """The template: icosphere(subdivisions) (3 -> 642 vertices / 1280 faces) mapped by `kind`."""
    shape.validate()
    sphere = icosphere(subdivisions)
    directions = sphere.vertices.double().numpy()
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    body = car_body if TemplateKind(kind) is TemplateKind.car else ellipsoid_body
    vertices = body(directions, shape)
    face_pairs, mesh_edges = adjacent_faces(sphere.faces)
    if sphere.uv is None or sphere.uv_faces is None:  # icosphere always has UVs
        raise AssetganError("icosphere returned no UVs")
    return Template(
        vertices=torch.tensor(vertices, dtype=torch.float32),
        faces=sphere.faces,
        uv=sphere.uv,
        uv_faces=sphere.uv_faces,
        mirror_vertex=torch.tensor(mirror_table(directions), dtype=torch.int64),
        face_pairs=face_pairs,
        mesh_edges=mesh_edges,
    )


def mirror_points(points: torch.Tensor, mirror_vertex: torch.Tensor) -> torch.Tensor:
    """[..., V, 3] per-vertex vectors -> the mirror image: value of the twin with x negated."""
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=points.dtype, device=points.device)
    return points.index_select(-2, mirror_vertex) * flip


def symmetrize_points(points: torch.Tensor, mirror_vertex: torch.Tensor) -> torch.Tensor:
    """[..., V, 3] -> exactly mirror-symmetric vectors: the mean of each and its twin's mirror."""
    return 0.5 * (points + mirror_points(points, mirror_vertex))


def flip_uv_image(image: torch.Tensor) -> torch.Tensor:
    """[B, Ht, Wt, C] UV image -> its mirror (x -> -x on the car is u -> 1 - u)."""
    return image.flip(2)
