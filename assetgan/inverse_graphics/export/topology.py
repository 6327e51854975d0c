"""Mesh topology for the export: welding, the manifold check, cutting the wheels out of the body
and closing the holes the cut leaves.

All functions take plain arrays (vertices [V, 3], faces [T, 3]) and return new arrays; face
attributes travel as index arrays (`kept` face ids) so the caller carries parts and colours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assetgan.assets.taxonomy import CAR_20
from assetgan.core.errors import AssetganError

WELD_DECIMALS = 6  # vertices closer than ~1e-6 m are one vertex for topology


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[T] triangle areas."""
    corners = vertices[faces].astype(np.float64)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return 0.5 * np.linalg.norm(cross, axis=1)


def weld(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge vertices at the same position (to WELD_DECIMALS) -> (positions [W, 3], faces [T, 3])."""
    rounded = np.round(vertices.astype(np.float64), WELD_DECIMALS)
    positions, inverse = np.unique(rounded, axis=0, return_inverse=True)
    return positions, inverse.reshape(-1)[faces]


def undirected_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edges [E, 2] sorted pairs, edge id of each face corner edge [T, 3], faces per edge [E])."""
    directed = np.stack([faces, np.roll(faces, -1, axis=1)], axis=-1)  # [T, 3, 2]
    pairs = np.sort(directed.reshape(-1, 2), axis=1)
    edges, inverse, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    return edges, inverse.reshape(-1, 3), counts


def single_sided(faces: np.ndarray) -> np.ndarray:
    """[T] bool: True for the first face of every set of faces on the same three vertices (a
    double-sided sheet, a face plus its reversed twin, counts once)."""
    keys = np.sort(faces, axis=1)
    _, first = np.unique(keys, axis=0, return_index=True)
    keep = np.zeros(len(faces), dtype=bool)
    keep[first] = True
    return keep


def check_manifold(
    vertices: np.ndarray, faces: np.ndarray, face_parts: np.ndarray, where: str
) -> None:
    """AssetganError when, after welding and counting double-sided sheets once, an edge is shared
    by more than two triangles."""
    _, welded = weld(vertices, faces)
    proper = (welded[:, 0] != welded[:, 1]) & (welded[:, 1] != welded[:, 2])
    proper &= welded[:, 0] != welded[:, 2]
    ids = np.nonzero(proper)[0]
    ids = ids[single_sided(welded[ids])]
    edges, corner_edge, counts = undirected_edges(welded[ids])
    bad = np.nonzero(counts > 2)[0]
    if bad.size:
        face = ids[np.nonzero(np.isin(corner_edge, bad).any(1))[0][0]]
        point = vertices[faces[face]].mean(0)
        raise AssetganError(
            f"{where}: non-manifold geometry: {bad.size} edges are shared by more than two "
            f"triangles (first in part {CAR_20[int(face_parts[face])]!r} near "
            f"({point[0]:.3f}, {point[1]:.3f}, {point[2]:.3f}) m); export needs a manifold mesh"
        )


@dataclass(frozen=True)
class CutResult:
    """The body after the wheels were cut out and the holes closed."""

    vertices: np.ndarray  # [V', 3] float64: the input vertices, then one centre per closed hole
    faces: np.ndarray  # [T', 3]: kept input faces (input vertex ids), then the cap faces
    kept: np.ndarray  # [K] input face ids of the first K faces
    cap_source: np.ndarray  # [T' - K] for each cap face: an input face next to the hole
    holes_closed: int  # number of holes the cut opened and the caps closed
    open_edges_before: int  # boundary edges of the uncut non-wheel faces (welded)
    open_edges_after: int  # boundary edges of the result (welded); == before when closed


def boundary_count(vertices: np.ndarray, faces: np.ndarray) -> int:
    """Number of welded edges used by exactly one face (double-sided sheets counted once)."""
    _, welded = weld(vertices, faces)
    proper = (welded[:, 0] != welded[:, 1]) & (welded[:, 1] != welded[:, 2])
    proper &= welded[:, 0] != welded[:, 2]
    welded = welded[proper]
    welded = welded[single_sided(welded)]
    if len(welded) == 0:
        return 0
    _, _, counts = undirected_edges(welded)
    return int((counts == 1).sum())


def cut_and_close(
    vertices: np.ndarray,  # [V, 3]
    faces: np.ndarray,  # [T, 3]
    remove: np.ndarray,  # [T] bool: faces to cut out (wheel parts, faces inside the wheels)
) -> CutResult:
    """Remove `remove` faces and close every hole the removal opens with a fan of triangles
    around the hole's centre, oriented like the faces around it. Boundaries that were already
    open stay as they were."""
    positions, welded = weld(vertices, faces)
    proper = (welded[:, 0] != welded[:, 1]) & (welded[:, 1] != welded[:, 2])
    proper &= welded[:, 0] != welded[:, 2]
    sided = np.zeros(len(faces), dtype=bool)
    sided[np.nonzero(proper)[0][single_sided(welded[proper])]] = True
    _, corner_edge, counts_all = undirected_edges(welded[sided])
    kept_mask = ~remove
    before = boundary_count(vertices, faces[kept_mask & proper])

    # Edges interior before the cut (two faces) that the cut leaves with one face: hole rims.
    kept_sided = kept_mask[sided]
    kept_count = np.bincount(corner_edge[kept_sided].reshape(-1), minlength=len(counts_all))
    rim_edge = (counts_all == 2) & (kept_count == 1)
    sided_ids = np.nonzero(sided)[0]
    rim_next: dict[int, int] = {}  # directed rim edges a -> b as the kept faces run them
    rim_face: dict[int, int] = {}
    for local in np.nonzero(kept_sided)[0]:
        for k in range(3):
            if rim_edge[corner_edge[local, k]]:
                a, b = welded[sided_ids[local], k], welded[sided_ids[local], (k + 1) % 3]
                rim_next[int(a)] = int(b)
                rim_face[int(a)] = int(sided_ids[local])

    # Representative input vertex of every welded vertex (caps reuse input vertex ids).
    representative = np.zeros(len(positions), dtype=np.int64)
    representative[welded.reshape(-1)] = faces.reshape(-1)
    new_vertices = [vertices.astype(np.float64)]
    cap_faces, cap_source = [], []
    holes = 0
    visited: set[int] = set()
    for start in list(rim_next):
        if start in visited:
            continue
        loop = [start]
        visited.add(start)
        node = rim_next[start]
        while node != start and node in rim_next and node not in visited:
            loop.append(node)
            visited.add(node)
            node = rim_next[node]
        if len(loop) < 3:
            continue
        centre_id = len(vertices) + holes
        new_vertices.append(positions[loop].mean(0, keepdims=True))
        holes += 1
        ring = loop + ([loop[0]] if node == start else [])
        for a, b in zip(ring[:-1], ring[1:], strict=True):
            # The kept face runs a -> b; the cap runs b -> a so the two agree in orientation.
            cap_faces.append([representative[b], representative[a], centre_id])
            cap_source.append(rim_face[a])
    kept = np.nonzero(kept_mask)[0]
    all_vertices = np.concatenate(new_vertices)
    all_faces = faces[kept]
    if cap_faces:
        all_faces = np.concatenate([all_faces, np.asarray(cap_faces, dtype=np.int64)])
    proper_out = np.concatenate([proper[kept], np.ones(len(cap_faces), dtype=bool)])
    after = boundary_count(all_vertices, all_faces[proper_out])
    return CutResult(
        vertices=all_vertices,
        faces=all_faces,
        kept=kept,
        cap_source=np.asarray(cap_source, dtype=np.int64),
        holes_closed=holes,
        open_edges_before=before,
        open_edges_after=after,
    )


def corner_normals(vertices: np.ndarray, faces: np.ndarray, crease_deg: float = 35.0) -> np.ndarray:
    """[T, 3, 3] unit normals per face corner: the welded, area-weighted vertex normal where it is
    within `crease_deg` of the face normal (smooth panels), the face normal elsewhere (edges,
    double-sided sheets)."""
    _, welded = weld(vertices, faces)
    corners = vertices[faces].astype(np.float64)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])  # 2 * area * n
    length = np.linalg.norm(cross, axis=1, keepdims=True)
    face_n = cross / np.maximum(length, 1e-30)
    summed = np.zeros((int(welded.max()) + 1, 3))
    for k in range(3):
        np.add.at(summed, welded[:, k], cross)
    norm = np.linalg.norm(summed, axis=1, keepdims=True)
    vertex_n = summed / np.maximum(norm, 1e-30)
    corner_n = vertex_n[welded]  # [T, 3, 3]
    usable = (norm[welded][..., 0] > 1e-12) & (
        (corner_n * face_n[:, None, :]).sum(-1) > np.cos(np.radians(crease_deg))
    )
    out = np.where(usable[..., None], corner_n, face_n[:, None, :])
    return out / np.linalg.norm(out, axis=-1, keepdims=True)
