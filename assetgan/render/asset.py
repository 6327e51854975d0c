"""The neutral car asset: one triangle mesh with per-face car_20 parts, materials and colours, an
optional UV texture and the 12 keypoints in 3D. CarWorld (ground truth) and the reconstruction
stage both produce it; the export stage (`assetgan export`) consumes it.

Frames and units: docs/conventions.md (metres, +Y up, front +Z, left +X). Files:
- `CarAsset.save(dir)` / `CarAsset.load(dir)`: the asset directory (docs/export.md "Asset
  directory"): `asset.json` (schema_version, kind, names), `asset.safetensors` (the arrays) and
  `texture.png` when there is a texture.
- `part_glb(asset)`: the part-node GLB CarWorld writes as `meshes/ID.glb` (one node per car_20
  part, node name = part name, face colours as vertex colours); `read_part_glb(path)` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assetgan.assets.taxonomy import CAR_20, KEYPOINTS, PART_ID
from assetgan.core.errors import AssetganError

SCHEMA_VERSION = 1
ASSET_KIND = "assetgan_car_asset"
# Material names, index = face_materials id (the same list as CarWorld's MATERIAL_NAMES).
MATERIALS = ("paint", "glass", "underbody", "trim", "rubber", "metal", "light", "plate")
MATERIAL_ID = {name: index for index, name in enumerate(MATERIALS)}
_ARRAY_FIELDS = ("vertices", "faces", "face_parts", "face_materials", "face_colors")


@dataclass(frozen=True)
class CarAsset:
    """A part-labelled car mesh. Face arrays are aligned with `faces`."""

    vertices: np.ndarray  # [V, 3] float32, metres, car frame (docs/conventions.md)
    faces: np.ndarray  # [T, 3] int64, counter-clockwise seen from outside
    face_parts: np.ndarray  # [T] int64 car_20 part ids (taxonomy.CAR_20)
    face_materials: np.ndarray  # [T] int64 index into MATERIALS
    face_colors: np.ndarray  # [T, 3] float32 albedo in [0, 1] (display values, as rendered)
    keypoints: np.ndarray | None = None  # [12, 3] float32, taxonomy.KEYPOINTS order
    uv: np.ndarray | None = None  # [Vt, 2] float32 texture coordinates (conventions: Textures)
    uv_faces: np.ndarray | None = None  # [T, 3] int64 indices into uv
    texture: np.ndarray | None = None  # [H, W, 3] uint8, row 0 = v 0
    source: str = ""  # where the asset came from (a path, "carworld", ...), for messages

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def has_texture(self) -> bool:
        return self.texture is not None

    def validate(self) -> CarAsset:
        """Check shapes, ranges and finiteness; AssetganError naming the field otherwise."""
        where = self.source or "car asset"
        v, f = self.vertices, self.faces
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise AssetganError(
                f"{where}: vertices must be [V, 3] and faces [T, 3], got {v.shape} and {f.shape}"
            )
        if len(v) == 0 or len(f) == 0:
            raise AssetganError(f"{where}: the mesh is empty (no vertices or no triangles)")
        if not np.isfinite(v).all():
            raise AssetganError(f"{where}: vertices hold NaN or infinite coordinates")
        if f.min() < 0 or f.max() >= len(v):
            raise AssetganError(f"{where}: face indices must be in 0..{len(v) - 1}")
        t = len(f)
        for name, shape in (
            ("face_parts", (t,)),
            ("face_materials", (t,)),
            ("face_colors", (t, 3)),
        ):
            if getattr(self, name).shape != shape:
                raise AssetganError(
                    f"{where}: {name} has shape {getattr(self, name).shape}, expected {shape}"
                )
        if self.face_parts.min() < 1 or self.face_parts.max() >= len(CAR_20):
            raise AssetganError(f"{where}: face_parts must be car_20 ids in 1..{len(CAR_20) - 1}")
        if self.face_materials.min() < 0 or self.face_materials.max() >= len(MATERIALS):
            raise AssetganError(f"{where}: face_materials must index {MATERIALS}")
        if self.keypoints is not None and self.keypoints.shape != (len(KEYPOINTS), 3):
            raise AssetganError(
                f"{where}: keypoints have shape {self.keypoints.shape}, expected "
                f"({len(KEYPOINTS)}, 3)"
            )
        textured = (self.uv is not None, self.uv_faces is not None, self.texture is not None)
        if any(textured) and not all(textured):
            raise AssetganError(f"{where}: uv, uv_faces and texture come together or not at all")
        if self.uv_faces is not None and self.uv_faces.shape != (t, 3):
            raise AssetganError(
                f"{where}: uv_faces has shape {self.uv_faces.shape}, expected {(t, 3)}"
            )
        return self

    def save(self, directory: str | Path) -> Path:
        """Write the asset directory (asset.json last, each file atomically)."""
        from safetensors.numpy import save_file

        from assetgan.core.images import atomic_write_png
        from assetgan.core.io_utils import atomic_write, atomic_write_json

        directory = Path(directory)
        arrays = {name: np.ascontiguousarray(getattr(self, name)) for name in _ARRAY_FIELDS}
        for name in ("keypoints", "uv", "uv_faces"):
            if getattr(self, name) is not None:
                arrays[name] = np.ascontiguousarray(getattr(self, name))
        atomic_write(directory / "asset.safetensors", lambda tmp: save_file(arrays, str(tmp)))
        if self.texture is not None:
            atomic_write_png(directory / "texture.png", self.texture)
        atomic_write_json(directory / "asset.json", self._header())
        return directory

    def _header(self) -> dict[str, Any]:
        return {
            "kind": ASSET_KIND,
            "schema_version": SCHEMA_VERSION,
            "parts": "car_20",
            "materials": list(MATERIALS),
            "keypoints": list(KEYPOINTS) if self.keypoints is not None else None,
            "texture": "texture.png" if self.texture is not None else None,
            "source": self.source,
        }

    @classmethod
    def load(cls, directory: str | Path) -> CarAsset:
        """Read an asset directory written by `save`; AssetganError naming the file otherwise."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        from assetgan.core.io_utils import read_json_object

        directory = Path(directory)
        header_path = directory / "asset.json"
        if not header_path.is_file():
            raise AssetganError(f"{directory}: not an asset directory (no asset.json)")
        header = read_json_object(header_path)
        if header.get("kind") != ASSET_KIND or header.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(
                f"{header_path}: expected kind {ASSET_KIND!r} schema_version {SCHEMA_VERSION}, "
                f"got {header.get('kind')!r} {header.get('schema_version')!r}"
            )
        if tuple(header.get("materials", ())) != MATERIALS:
            raise AssetganError(f"{header_path}: materials must be {list(MATERIALS)}")
        try:
            arrays = load_file(str(directory / "asset.safetensors"))
        except (SafetensorError, OSError, ValueError) as error:
            raise AssetganError(
                f"{directory / 'asset.safetensors'}: unreadable ({error})"
            ) from None
        missing = [name for name in _ARRAY_FIELDS if name not in arrays]
        if missing:
            raise AssetganError(f"{directory / 'asset.safetensors'}: missing arrays {missing}")
        texture = None
        if header.get("texture"):
            texture = _read_texture(directory / str(header["texture"]))
        return cls(
            vertices=arrays["vertices"].astype(np.float32),
            faces=arrays["faces"].astype(np.int64),
            face_parts=arrays["face_parts"].astype(np.int64),
            face_materials=arrays["face_materials"].astype(np.int64),
            face_colors=arrays["face_colors"].astype(np.float32),
            keypoints=arrays.get("keypoints"),
            uv=arrays.get("uv"),
            uv_faces=arrays.get("uv_faces"),
            texture=texture,
            source=str(directory),
        ).validate()

    def to_mesh(self):
        """The render leaf's Mesh (torch tensors) with face colours and parts, for rendering."""
        import torch

        from assetgan.render.mesh import Mesh

        return Mesh(
            vertices=torch.tensor(self.vertices, dtype=torch.float32),
            faces=torch.tensor(self.faces, dtype=torch.int64),
            face_parts=torch.tensor(self.face_parts, dtype=torch.int64),
            face_colors=torch.tensor(np.clip(self.face_colors, 0.0, 1.0), dtype=torch.float32),
        )


def _read_texture(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as error:
        raise AssetganError(f"{path}: unreadable texture ({error})") from None


def default_materials(face_parts: np.ndarray) -> np.ndarray:
    """[T] material ids for a mesh that has parts but no materials: glass for window and
    windshield, light for head and tail lights, rubber for tires, metal for wheel hubs, plate for
    licence plates, trim for grilles, paint elsewhere."""
    by_part = np.full(len(CAR_20), MATERIAL_ID["paint"], dtype=np.int64)
    for part, material in (
        ("window", "glass"),
        ("windshield", "glass"),
        ("car_lights", "light"),
        ("tailLight", "light"),
        ("tire", "rubber"),
        ("wheelhub", "metal"),
        ("licensePlate", "plate"),
        ("grilles", "trim"),
    ):
        by_part[PART_ID[part]] = MATERIAL_ID[material]
    return by_part[np.asarray(face_parts, dtype=np.int64)]


def part_scene(asset: CarAsset):
    """A trimesh.Scene with one node per car_20 part present (node and geometry name = the part
    name), face colours as RGBA uint8; zero-area faces (CarWorld's absent pieces) are left out."""
    import trimesh

    vertices, faces = asset.vertices, asset.faces
    corners = vertices[faces]
    area = np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    parts = asset.face_parts
    colours = (asset.face_colors * 255).round().astype(np.uint8)
    scene = trimesh.Scene()
    for part_id in np.unique(parts):
        keep = (parts == part_id) & (area > 1e-12)
        if not keep.any():
            continue
        used, local = np.unique(faces[keep], return_inverse=True)
        piece = trimesh.Trimesh(
            vertices[used],
            local.reshape(-1, 3),
            face_colors=np.concatenate(
                [colours[keep], np.full((int(keep.sum()), 1), 255, np.uint8)], 1
            ),
            process=False,
        )
        scene.add_geometry(piece, node_name=CAR_20[part_id], geom_name=CAR_20[part_id])
    return scene


def part_glb(asset: CarAsset) -> bytes:
    """The part-node GLB of `asset` (the bytes CarWorld's `meshes/ID.glb` holds)."""
    return part_scene(asset).export(file_type="glb")


def read_part_glb(path: str | Path, keypoints: np.ndarray | None = None) -> CarAsset:
    """Read a part-node GLB/glTF (one mesh node per car_20 part, named by the part; node
    transforms applied) into a CarAsset with default materials and per-face colours averaged
    from the vertex colours. AssetganError naming the file for anything else."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise AssetganError(f"{path}: no such file")
    try:
        scene = trimesh.load(path, force="scene", process=False)
    except Exception as error:  # trimesh raises many types for corrupt files
        raise AssetganError(f"{path}: cannot read glTF ({type(error).__name__}: {error})") from None
    vertices, faces, parts, colours = [], [], [], []
    count = 0
    unknown = []
    for node in scene.graph.nodes_geometry:
        transform, geometry_name = scene.graph[node]
        mesh = scene.geometry[geometry_name]
        part = _part_of(str(node), str(geometry_name))
        if part is None:
            unknown.append(str(node))
            continue
        if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
            continue
        local = np.asarray(mesh.vertices, dtype=np.float64)
        world = local @ transform[:3, :3].T + transform[:3, 3]
        face_rgb = _face_colours(mesh)
        vertices.append(world)
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + count)
        parts.append(np.full(len(mesh.faces), part, dtype=np.int64))
        colours.append(face_rgb)
        count += len(world)
    if unknown:
        raise AssetganError(
            f"{path}: node {unknown[0]!r} is not named after a car_20 part; a part-labelled GLB "
            "has one mesh node per part named like 'tire' or 'door' (docs/export.md)"
        )
    if not faces:
        raise AssetganError(f"{path}: no triangles (empty geometry)")
    face_parts = np.concatenate(parts)
    return CarAsset(
        vertices=np.concatenate(vertices).astype(np.float32),
        faces=np.concatenate(faces),
        face_parts=face_parts,
        face_materials=default_materials(face_parts),
        face_colors=np.concatenate(colours).astype(np.float32),
        keypoints=None if keypoints is None else np.asarray(keypoints, np.float32),
        source=str(path),
    ).validate()


def _part_of(node: str, geometry: str) -> int | None:
    """The car_20 id a node stands for: its name, or its geometry's name, maybe with trimesh's
    `_N` de-duplication suffix."""
    for name in (node, geometry):
        if name in PART_ID and PART_ID[name] > 0:
            return PART_ID[name]
        stem, _, tail = name.rpartition("_")
        if tail.isdigit() and stem in PART_ID and PART_ID[stem] > 0:
            return PART_ID[stem]
    return None


def _face_colours(mesh) -> np.ndarray:
    """[T, 3] float in [0, 1]: vertex colours averaged per face, else the material's base colour,
    else grey."""
    visual = mesh.visual
    if getattr(visual, "kind", None) in ("vertex", "face"):
        rgba = np.asarray(visual.vertex_colors, dtype=np.float64)[:, :3] / 255.0
        return rgba[np.asarray(mesh.faces)].mean(1)
    material = getattr(visual, "material", None)
    base = getattr(material, "baseColorFactor", None)
    if base is not None:
        rgb = np.asarray(base, dtype=np.float64)[:3]
        rgb = rgb / 255.0 if rgb.max() > 1.0 else rgb
        return np.broadcast_to(rgb, (len(mesh.faces), 3)).copy()
    return np.full((len(mesh.faces), 3), 0.6)


def asset_summary(asset: CarAsset) -> dict[str, Any]:
    """Counts for messages and results: vertices, faces, faces per part name."""
    names, counts = np.unique(asset.face_parts, return_counts=True)
    return {
        "vertices": int(len(asset.vertices)),
        "faces": asset.num_faces,
        "parts": {CAR_20[int(n)]: int(c) for n, c in zip(names, counts, strict=True)},
        "keypoints": asset.keypoints is not None,
        "texture": asset.has_texture,
    }


def keypoints_from_json(value: Any, where: str) -> np.ndarray:
    """[12, 3] float32 from a JSON list of 12 [x, y, z]; AssetganError naming `where`."""
    try:
        points = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        points = np.zeros(0)
    if points.shape != (len(KEYPOINTS), 3) or not np.isfinite(points).all():
        raise AssetganError(f"{where}: keypoints must be {len(KEYPOINTS)} finite [x, y, z] points")
    return points


__all__ = [
    "ASSET_KIND",
    "MATERIALS",
    "MATERIAL_ID",
    "SCHEMA_VERSION",
    "CarAsset",
    "asset_summary",
    "default_materials",
    "keypoints_from_json",
    "part_glb",
    "part_scene",
    "read_part_glb",
]
