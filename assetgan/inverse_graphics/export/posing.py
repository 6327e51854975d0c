"""Read a glTF back and pose it: node transforms (TRS or matrix), an animation sampled at a time
(LINEAR / STEP; rotations by slerp), world-space vertices per mesh node, and a render.mesh.Mesh
of the posed car for turntables. Used by the tests (drive keeps every wheel vertex at its
distance to the axle, steer moves only the front wheels) and by docs/export.md's pictures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygltflib

from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.export.rig import quat_matrix

_DTYPE = {
    pygltflib.FLOAT: np.float32,
    pygltflib.UNSIGNED_INT: np.uint32,
    pygltflib.UNSIGNED_SHORT: np.uint16,
    pygltflib.UNSIGNED_BYTE: np.uint8,
}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def load_gltf(path: str | Path) -> pygltflib.GLTF2:
    """A .glb / .gltf with its buffer loaded; AssetganError naming the file otherwise."""
    try:
        gltf = pygltflib.GLTF2.load(str(path))
    except Exception as error:  # pygltflib raises many types for corrupt files
        raise AssetganError(f"{path}: not a readable glTF ({type(error).__name__})") from None
    if gltf is None:
        raise AssetganError(f"{path}: not a readable glTF")
    if gltf.buffers and gltf.buffers[0].uri:
        gltf.convert_buffers(pygltflib.BufferFormat.BINARYBLOB)
    return gltf


def read_accessor(gltf: pygltflib.GLTF2, index: int) -> np.ndarray:
    """The accessor's data as [count] or [count, components] (tightly packed views only)."""
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    if view.byteStride:
        raise AssetganError(f"accessor {index}: interleaved buffer views are not read here")
    width = _WIDTH[accessor.type]
    dtype = np.dtype(_DTYPE[accessor.componentType])
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    blob = gltf.binary_blob()
    data = np.frombuffer(blob, dtype=dtype, count=accessor.count * width, offset=start)
    return data.reshape(accessor.count, width) if width > 1 else data.copy()


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation of unit quaternions along the shorter arc (glTF LINEAR)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dot = float(a @ b)
    if dot < 0:
        b, dot = -b, -dot
    if dot > 0.9995:
        out = a + t * (b - a)
        return out / np.linalg.norm(out)
    theta = math.acos(min(dot, 1.0))
    return (math.sin((1 - t) * theta) * a + math.sin(t * theta) * b) / math.sin(theta)


@dataclass(frozen=True)
class Pose:
    """Local TRS overrides per node id, from an animation at one time."""

    rotation: dict[int, np.ndarray]  # node -> quaternion (x, y, z, w)
    translation: dict[int, np.ndarray]  # node -> [3]
    scale: dict[int, np.ndarray]  # node -> [3]


def sample_animation(gltf: pygltflib.GLTF2, name: str | None, time: float) -> Pose:
    """The pose of animation `name` at `time` seconds (clamped to its keys); None = rest."""
    pose = Pose({}, {}, {})
    if name is None:
        return pose
    matches = [a for a in gltf.animations if a.name == name]
    if not matches:
        raise AssetganError(f"no animation named {name!r}")
    animation = matches[0]
    for channel in animation.channels:
        sampler = animation.samplers[channel.sampler]
        times = read_accessor(gltf, sampler.input).astype(np.float64)
        values = read_accessor(gltf, sampler.output).astype(np.float64)
        t = float(np.clip(time, times[0], times[-1]))
        k = int(np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2))
        span = times[k + 1] - times[k]
        alpha = 0.0 if span <= 0 else (t - times[k]) / span
        if sampler.interpolation == pygltflib.ANIM_STEP:
            alpha = 0.0 if alpha < 1.0 else 1.0
        elif sampler.interpolation not in (None, pygltflib.ANIM_LINEAR):
            raise AssetganError(f"animation {name!r}: {sampler.interpolation} is not sampled here")
        path, node = channel.target.path, channel.target.node
        if path == "rotation":
            pose.rotation[node] = slerp(values[k], values[k + 1], alpha)
        else:
            value = (1 - alpha) * values[k] + alpha * values[k + 1]
            (pose.translation if path == "translation" else pose.scale)[node] = value
    return pose


def local_matrix(gltf: pygltflib.GLTF2, node_id: int, pose: Pose) -> np.ndarray:
    node = gltf.nodes[node_id]
    if node.matrix is not None and node.matrix != list(np.eye(4).reshape(-1)):
        return np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T  # column-major
    matrix = np.eye(4)
    rotation = pose.rotation.get(node_id, node.rotation or [0, 0, 0, 1])
    scale = pose.scale.get(node_id, node.scale or [1, 1, 1])
    unit = np.asarray(rotation, dtype=np.float64) / np.linalg.norm(rotation)
    matrix[:3, :3] = quat_matrix(unit) * np.asarray(scale, dtype=np.float64)
    matrix[:3, 3] = pose.translation.get(node_id, node.translation or [0, 0, 0])
    return matrix


def world_matrices(gltf: pygltflib.GLTF2, pose: Pose) -> dict[int, np.ndarray]:
    """node id -> [4, 4] world matrix for every node reachable from the default scene."""
    out: dict[int, np.ndarray] = {}
    scene = gltf.scenes[gltf.scene or 0]
    stack = [(node, np.eye(4)) for node in scene.nodes]
    while stack:
        node_id, parent = stack.pop()
        out[node_id] = parent @ local_matrix(gltf, node_id, pose)
        stack.extend((child, out[node_id]) for child in gltf.nodes[node_id].children or [])
    return out


@dataclass(frozen=True)
class PosedPrimitive:
    """One primitive of one node, posed."""

    node: str  # node name
    vertices: np.ndarray  # [V, 3] world positions (float64)
    faces: np.ndarray  # [T, 3]
    colors: np.ndarray  # [V, 3] linear RGB (COLOR_0, else the material's base colour)
    parts: np.ndarray | None  # [V] car_20 ids (_PART) or None
    material: str  # material name


def posed_primitives(
    gltf: pygltflib.GLTF2, animation: str | None = None, time: float = 0.0
) -> list[PosedPrimitive]:
    """Every mesh primitive in world space, at `time` of `animation` (None = rest pose)."""
    worlds = world_matrices(gltf, sample_animation(gltf, animation, time))
    out = []
    for node_id, world in sorted(worlds.items()):
        node = gltf.nodes[node_id]
        if node.mesh is None:
            continue
        for primitive in gltf.meshes[node.mesh].primitives:
            local = read_accessor(gltf, primitive.attributes.POSITION).astype(np.float64)
            vertices = local @ world[:3, :3].T + world[:3, 3]
            faces = read_accessor(gltf, primitive.indices).astype(np.int64).reshape(-1, 3)
            material = (
                gltf.materials[primitive.material] if primitive.material is not None else None
            )
            if primitive.attributes.COLOR_0 is not None:
                colors = read_accessor(gltf, primitive.attributes.COLOR_0)[:, :3].astype(np.float64)
            else:
                base = material.pbrMetallicRoughness.baseColorFactor if material else [0.8] * 4
                colors = np.broadcast_to(np.asarray(base[:3]), (len(vertices), 3)).copy()
            texture = _base_texture(gltf, material)
            if texture is not None and primitive.attributes.TEXCOORD_0 is not None:
                uv = read_accessor(gltf, primitive.attributes.TEXCOORD_0).astype(np.float64)
                colors = colors * _sample_nearest(texture, uv)
            part_id = getattr(primitive.attributes, "_PART", None)
            parts = None if part_id is None else read_accessor(gltf, part_id).astype(np.int64)
            out.append(
                PosedPrimitive(
                    node=node.name or str(node_id),
                    vertices=vertices,
                    faces=faces,
                    colors=colors,
                    parts=parts,
                    material=(material.name or "") if material else "",
                )
            )
    return out


def _base_texture(gltf: pygltflib.GLTF2, material) -> np.ndarray | None:
    """The material's base colour texture as linear RGB [H, W, 3] in [0, 1], or None."""
    info = material.pbrMetallicRoughness.baseColorTexture if material else None
    if info is None:
        return None
    import io

    from PIL import Image

    image = gltf.images[gltf.textures[info.index].source]
    view = gltf.bufferViews[image.bufferView]
    start = view.byteOffset or 0
    png = gltf.binary_blob()[start : start + view.byteLength]
    srgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64) / 255.0
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _sample_nearest(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """[V, 3] texels at uv [V, 2] (repeat wrapping, nearest)."""
    height, width = texture.shape[:2]
    cols = np.floor(np.mod(uv[:, 0], 1.0) * width).astype(np.int64).clip(0, width - 1)
    rows = np.floor(np.mod(uv[:, 1], 1.0) * height).astype(np.int64).clip(0, height - 1)
    return texture[rows, cols]


def posed_mesh(gltf: pygltflib.GLTF2, animation: str | None = None, time: float = 0.0):
    """All primitives as one render.mesh.Mesh with per-face display colours (lights brightened,
    glass darkened: the rasterizer has no transparency or emission)."""
    import torch

    from assetgan.render.mesh import Mesh

    vertices, faces, colours = [], [], []
    count = 0
    for primitive in posed_primitives(gltf, animation, time):
        linear = primitive.colors[primitive.faces].mean(1)
        display = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
        if primitive.material in ("head_light", "tail_light"):
            display = np.clip(display * 1.6 + 0.15, 0.0, 1.0)
        elif primitive.material == "glass":
            display = 0.5 * display + 0.05
        vertices.append(primitive.vertices)
        faces.append(primitive.faces + count)
        colours.append(display)
        count += len(primitive.vertices)
    return Mesh(
        vertices=torch.tensor(np.concatenate(vertices), dtype=torch.float32),
        faces=torch.tensor(np.concatenate(faces), dtype=torch.int64),
        face_colors=torch.tensor(np.clip(np.concatenate(colours), 0, 1), dtype=torch.float32),
    )
