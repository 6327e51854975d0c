"""A small glTF 2.0 document builder on pygltflib: one binary buffer, 4-byte aligned buffer views,
accessors with the min/max the spec asks for, indexed triangle primitives built from per-corner
attributes, PNG images, and the GLB / embedded-glTF bytes.

It knows nothing about cars; rig.py decides what goes in.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pygltflib

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
_COMPONENT = {
    np.dtype(np.float32): pygltflib.FLOAT,
    np.dtype(np.uint32): pygltflib.UNSIGNED_INT,
    np.dtype(np.uint16): pygltflib.UNSIGNED_SHORT,
}
_TYPE = {1: pygltflib.SCALAR, 2: pygltflib.VEC2, 3: pygltflib.VEC3, 4: pygltflib.VEC4}


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """Display (sRGB) values in [0, 1] -> linear values (glTF colours are linear)."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


@dataclass(frozen=True)
class Corners:
    """Triangles as per-corner attributes (the builder merges equal corners into vertices)."""

    positions: np.ndarray  # [T, 3, 3] float
    normals: np.ndarray  # [T, 3, 3] unit
    colors: np.ndarray | None  # [T, 3, 3] linear RGB in [0, 1], or None
    uv: np.ndarray | None  # [T, 3, 2] texture coordinates, or None
    parts: np.ndarray  # [T] car_20 part ids (written as the _PART attribute)

    def __len__(self) -> int:
        return int(self.positions.shape[0])


class GltfBuilder:
    """Accumulates one glTF document and its binary buffer."""

    def __init__(self, generator: str) -> None:
        self.gltf = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0", generator=generator))
        self.blob = bytearray()
        self.extensions_used: set[str] = set()

    # ---- buffers ---------------------------------------------------------------------------
    def view(self, payload: bytes, target: int | None = None) -> int:
        """Append bytes as a new buffer view (4-byte aligned) -> its index."""
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.gltf.bufferViews.append(
            pygltflib.BufferView(
                buffer=0, byteOffset=len(self.blob), byteLength=len(payload), target=target
            )
        )
        self.blob.extend(payload)
        return len(self.gltf.bufferViews) - 1

    def accessor(
        self, array: np.ndarray, target: int | None = None, with_bounds: bool = False
    ) -> int:
        """A tightly packed accessor over `array` ([N] or [N, C]; float32, uint16 or uint32)."""
        array = np.ascontiguousarray(array)
        components = 1 if array.ndim == 1 else int(array.shape[1])
        view = self.view(array.tobytes(), target)
        bounds: dict[str, Any] = {}
        if with_bounds:
            flat = array.reshape(len(array), components)
            bounds = {"min": flat.min(0).tolist(), "max": flat.max(0).tolist()}
        self.gltf.accessors.append(
            pygltflib.Accessor(
                bufferView=view,
                componentType=_COMPONENT[array.dtype],
                count=int(len(array)),
                type=_TYPE[components],
                **bounds,
            )
        )
        return len(self.gltf.accessors) - 1

    # ---- content ---------------------------------------------------------------------------
    def add(self, kind: str, item: Any) -> int:
        """Append a pygltflib object to the list `kind` (materials, meshes, nodes, ...)."""
        items = getattr(self.gltf, kind)
        items.append(item)
        return len(items) - 1

    def use(self, *names: str) -> None:
        """Record extensions used by the document."""
        self.extensions_used.update(names)

    def primitive(self, corners: Corners, material: int) -> pygltflib.Primitive:
        """An indexed triangle primitive: equal corners (position, normal, colour, uv, part)
        become one vertex."""
        columns = [corners.positions.reshape(-1, 3), corners.normals.reshape(-1, 3)]
        if corners.colors is not None:
            columns.append(corners.colors.reshape(-1, 3))
        if corners.uv is not None:
            columns.append(corners.uv.reshape(-1, 2))
        columns.append(np.repeat(corners.parts, 3).reshape(-1, 1))
        table = np.concatenate(columns, axis=1).astype(np.float32)
        unique, inverse = np.unique(table, axis=0, return_inverse=True)
        indices = inverse.reshape(-1).astype(np.uint32 if len(unique) > 65535 else np.uint16)
        normals = unique[:, 3:6].astype(np.float64)
        unique[:, 3:6] = normals / np.linalg.norm(normals, axis=1, keepdims=True)
        attributes = pygltflib.Attributes(
            POSITION=self.accessor(unique[:, 0:3], ARRAY_BUFFER, with_bounds=True),
            NORMAL=self.accessor(unique[:, 3:6], ARRAY_BUFFER),
        )
        column = 6
        if corners.colors is not None:
            attributes.COLOR_0 = self.accessor(
                np.clip(unique[:, column : column + 3], 0.0, 1.0), ARRAY_BUFFER
            )
            column += 3
        if corners.uv is not None:
            attributes.TEXCOORD_0 = self.accessor(unique[:, column : column + 2], ARRAY_BUFFER)
            column += 2
        attributes._PART = self.accessor(unique[:, column], ARRAY_BUFFER)
        return pygltflib.Primitive(
            attributes=attributes,
            indices=self.accessor(indices, ELEMENT_ARRAY_BUFFER),
            material=material,
            mode=pygltflib.TRIANGLES,
        )

    def png_texture(self, png: bytes, name: str) -> int:
        """Embed a PNG -> texture index (linear filtering, repeat)."""
        view = self.view(png)
        image = self.add(
            "images", pygltflib.Image(bufferView=view, mimeType="image/png", name=name)
        )
        sampler = self.add(
            "samplers",
            pygltflib.Sampler(magFilter=pygltflib.LINEAR, minFilter=pygltflib.LINEAR_MIPMAP_LINEAR),
        )
        return self.add("textures", pygltflib.Texture(source=image, sampler=sampler, name=name))

    # ---- output ----------------------------------------------------------------------------
    def finish(self) -> pygltflib.GLTF2:
        """Close the buffer and the extension list; returns the document (blob attached)."""
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.gltf.buffers = [pygltflib.Buffer(byteLength=len(self.blob))]
        self.gltf.extensionsUsed = sorted(self.extensions_used)
        self.gltf.set_binary_blob(bytes(self.blob))
        return self.gltf


def glb_bytes(gltf: pygltflib.GLTF2) -> bytes:
    """The document as GLB bytes."""
    return b"".join(gltf.save_to_bytes())


def gltf_text(gltf: pygltflib.GLTF2) -> str:
    """The document as one .gltf JSON text with the buffer embedded as a data URI."""
    document = json.loads(gltf.to_json())
    blob = gltf.binary_blob() or b""
    document["buffers"] = [
        {
            "byteLength": len(blob),
            "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode(),
        }
    ]
    return json.dumps(document, separators=(",", ":"))
