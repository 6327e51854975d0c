"""The rigged car document: nodes, materials, meshes, the `drive` and `steer` animations and the
optional OMI / Godot vehicle hints (docs/export.md "The rigged GLB").

    Car                         origin on the ground under the centre of the wheelbase
    +- Body                     paint, trim, underbody, plate, metal (baked texture if any)
    +- Glass                    alphaMode BLEND + KHR_materials_transmission
    +- Lights                   head (emissive white), tail (emissive red), emissive strength
    +- Steer_FL -> Wheel_FL     steer about +Y (parent), spin about the axle (child)
    +- Steer_FR -> Wheel_FR
    +- Wheel_RL
    +- Wheel_RR

Animated nodes use translation/rotation (TRS); quaternions are (x, y, z, w).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pygltflib

from assetgan.assets.taxonomy import PART_ID
from assetgan.inverse_graphics.export.gltf_build import Corners, GltfBuilder, srgb_to_linear
from assetgan.inverse_graphics.export.topology import corner_normals
from assetgan.inverse_graphics.export.wheels import WheelFit, WheelMesh, wheel_textures
from assetgan.render.asset import MATERIAL_ID

EMISSIVE_STRENGTH = {"head_light": 3.0, "tail_light": 4.0}
_BODY_MATERIALS = ("paint", "underbody", "trim", "plate", "metal", "rubber")


@dataclass(frozen=True)
class RigOptions:
    """How the document is rigged (the export config's rig fields)."""

    omi: bool  # OMI_physics_body + OMI_vehicle_body on Car, OMI_vehicle_wheel on the mounts
    godot: bool  # Godot import hints: `Car-vehicle`, wheel mounts `...-wheel`
    steer_deg: float  # steer animation amplitude (degrees, + = left)
    steer_period_s: float  # one left-right-left cycle
    revolution_s: float  # drive animation: one wheel revolution
    keys_per_revolution: int  # drive keyframes per revolution (>= 3)
    mass_kg: float  # OMI_physics_body mass


@dataclass(frozen=True)
class BodyGeometry:
    """The car without its wheels, in the Car node's frame (metres)."""

    vertices: np.ndarray  # [V, 3]
    faces: np.ndarray  # [T, 3]
    face_parts: np.ndarray  # [T] car_20
    face_materials: np.ndarray  # [T] render.asset.MATERIALS ids
    face_colors: np.ndarray  # [T, 3] display albedo
    corner_uv: np.ndarray | None  # [T, 3, 2] when textured
    texture_png: bytes | None  # the baked texture, PNG


def quat_axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation by `angle` radians about unit `axis`."""
    axis = np.asarray(axis, dtype=np.float64)
    return np.concatenate([axis * math.sin(angle / 2.0), [math.cos(angle / 2.0)]])


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first), (x, y, z, w)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """[3, 3] rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def png_bytes(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image [H, W, 3]."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def quat_from_x_to(axle: np.ndarray) -> np.ndarray:
    """The shortest rotation taking +X to the unit vector `axle` (identity when equal)."""
    x = np.array([1.0, 0.0, 0.0])
    cross = np.cross(x, axle)
    sin = float(np.linalg.norm(cross))
    if sin < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    return quat_axis_angle(cross / sin, math.atan2(sin, float(x @ axle)))


def _material(builder: GltfBuilder, kind: str, texture: int | None) -> int:
    """The material of one kind (paint, glass, head_light, tire, rim, ...) -> index; `texture`
    (a texture index) becomes its base colour texture."""
    pbr = pygltflib.PbrMetallicRoughness(baseColorFactor=[1.0, 1.0, 1.0, 1.0])
    material = pygltflib.Material(name=kind, pbrMetallicRoughness=pbr)
    metallic, roughness = {
        "paint": (0.3, 0.35),
        "underbody": (0.0, 0.9),
        "trim": (0.0, 0.6),
        "plate": (0.0, 0.5),
        "metal": (1.0, 0.3),
        "rubber": (0.0, 0.95),
        "tire": (0.0, 0.95),
        "rim": (1.0, 0.25),
        "glass": (0.0, 0.05),
        "head_light": (0.0, 0.2),
        "tail_light": (0.0, 0.3),
    }[kind]
    pbr.metallicFactor, pbr.roughnessFactor = metallic, roughness
    if texture is not None:
        pbr.baseColorTexture = pygltflib.TextureInfo(index=texture)
    if kind == "paint":
        material.extensions = {
            "KHR_materials_clearcoat": {"clearcoatFactor": 1.0, "clearcoatRoughnessFactor": 0.08}
        }
        builder.use("KHR_materials_clearcoat")
    elif kind == "glass":
        pbr.baseColorFactor = [1.0, 1.0, 1.0, 0.4]
        material.alphaMode = pygltflib.BLEND
        material.doubleSided = True
        material.extensions = {"KHR_materials_transmission": {"transmissionFactor": 0.9}}
        builder.use("KHR_materials_transmission")
    elif kind in EMISSIVE_STRENGTH:
        material.emissiveFactor = [1.0, 1.0, 1.0] if kind == "head_light" else [1.0, 0.04, 0.02]
        material.extensions = {
            "KHR_materials_emissive_strength": {"emissiveStrength": EMISSIVE_STRENGTH[kind]}
        }
        builder.use("KHR_materials_emissive_strength")
    return builder.add("materials", material)


def _body_groups(body: BodyGeometry) -> dict[str, dict[str, np.ndarray]]:
    """Face masks of the body by node (Body, Glass, Lights) and material kind."""
    mat = body.face_materials
    light = mat == MATERIAL_ID["light"]
    tail = light & (body.face_parts == PART_ID["tailLight"])
    groups: dict[str, dict[str, np.ndarray]] = {
        "Body": {k: mat == MATERIAL_ID[k] for k in _BODY_MATERIALS},
        "Glass": {"glass": mat == MATERIAL_ID["glass"]},
        "Lights": {"head_light": light & ~tail, "tail_light": tail},
    }
    return {
        node: {kind: mask for kind, mask in kinds.items() if mask.any()}
        for node, kinds in groups.items()
    }


def _corners(
    vertices: np.ndarray,
    faces: np.ndarray,
    colours: np.ndarray | None,
    uv: np.ndarray | None,
    parts: np.ndarray,
    normals: np.ndarray,
) -> Corners:
    lin = None if colours is None else np.repeat(srgb_to_linear(colours)[:, None, :], 3, axis=1)
    return Corners(vertices[faces], normals, lin, uv, parts)


def build_document(
    body: BodyGeometry,
    wheels: list[tuple[WheelFit, WheelMesh]],  # fits in the Car frame, WHEELS order
    options: RigOptions,
    extras: dict,
) -> pygltflib.GLTF2:
    """The rigged car as a pygltflib document (binary blob attached)."""
    builder = GltfBuilder(generator="assetgan export")
    texture = None
    if body.texture_png is not None:
        texture = builder.png_texture(body.texture_png, "body_texture")
    textures = {kind: texture for kind in _BODY_MATERIALS}
    for kind, image in wheel_textures().items():
        textures[kind] = builder.png_texture(png_bytes(image), f"{kind}_texture")
    materials: dict[str, int] = {}

    def material(kind: str) -> int:
        if kind not in materials:
            materials[kind] = _material(builder, kind, textures.get(kind))
        return materials[kind]

    normals = corner_normals(body.vertices, body.faces)
    car_children: list[int] = []
    nodes: list[pygltflib.Node] = []

    def node(item: pygltflib.Node) -> int:
        nodes.append(item)
        return len(nodes) - 1

    root = node(pygltflib.Node(name="Car-vehicle" if options.godot else "Car"))
    for node_name, kinds in _body_groups(body).items():
        primitives = []
        for kind, mask in kinds.items():
            textured = texture is not None and kind in _BODY_MATERIALS
            corners = _corners(
                body.vertices,
                body.faces[mask],
                None if textured else body.face_colors[mask],
                body.corner_uv[mask] if textured else None,
                body.face_parts[mask],
                normals[mask],
            )
            primitives.append(builder.primitive(corners, material(kind)))
        if primitives:
            mesh = builder.add("meshes", pygltflib.Mesh(name=node_name, primitives=primitives))
            car_children.append(node(pygltflib.Node(name=node_name, mesh=mesh)))

    wheel_nodes: dict[str, int] = {}
    steer_nodes: dict[str, int] = {}
    rest: dict[str, np.ndarray] = {}
    for index, (fit, wheel) in enumerate(wheels):
        wheel_normals = corner_normals(wheel.vertices, wheel.faces, crease_deg=40.0)
        primitives = []
        for kind, part in (("tire", PART_ID["tire"]), ("rim", PART_ID["wheelhub"])):
            mask = wheel.face_parts == part
            corners = _corners(
                wheel.vertices, wheel.faces[mask], wheel.face_colors[mask],
                wheel.uv[wheel.faces[mask]], wheel.face_parts[mask], wheel_normals[mask],
            )  # fmt: skip
            primitives.append(builder.primitive(corners, material(kind)))
        mesh = builder.add(
            "meshes", pygltflib.Mesh(name=f"Wheel_{fit.name}", primitives=primitives)
        )
        rest[fit.name] = quat_from_x_to(fit.axle)
        front = fit.name.startswith("F")
        spin = pygltflib.Node(
            name=f"Wheel_{fit.name}",
            mesh=mesh,
            translation=[0.0, 0.0, 0.0] if front else [float(c) for c in fit.centre],
            rotation=[float(c) for c in rest[fit.name]],
        )
        wheel_nodes[fit.name] = node(spin)
        mount = wheel_nodes[fit.name]
        if front:
            mount = node(
                pygltflib.Node(
                    name=f"Steer_{fit.name}",
                    translation=[float(c) for c in fit.centre],
                    rotation=[0.0, 0.0, 0.0, 1.0],
                    children=[wheel_nodes[fit.name]],
                )
            )
            steer_nodes[fit.name] = mount
        if options.godot:
            nodes[mount].name = f"{nodes[mount].name}-wheel"
        if options.omi:
            nodes[mount].extensions = {"OMI_vehicle_wheel": {"wheel": index}}
        car_children.append(mount)
    nodes[root].children = car_children
    nodes[root].extras = extras
    if options.omi:
        _add_omi(builder, nodes[root], [fit for fit, _ in wheels], options)
    builder.gltf.nodes = nodes
    builder.gltf.scenes = [pygltflib.Scene(name="Car", nodes=[root])]
    builder.gltf.scene = 0
    _add_animations(builder, wheel_nodes, steer_nodes, rest, options)
    return builder.finish()


def _add_omi(
    builder: GltfBuilder, root: pygltflib.Node, fits: list[WheelFit], options: RigOptions
) -> None:
    root.extensions = {
        "OMI_physics_body": {"motion": {"type": "dynamic", "mass": options.mass_kg}},
        "OMI_vehicle_body": {},
    }
    wheels = []
    for fit in fits:
        front = fit.name.startswith("F")
        wheels.append(
            {
                "radius": round(fit.radius, 5),
                "width": round(fit.width, 5),
                "maxSteeringAngle": round(math.radians(options.steer_deg), 5) if front else 0.0,
                "maxForce": 0.0 if front else 4000.0,
                "suspensionStiffness": 20000.0,
                "suspensionDampingCompression": 2000.0,
                "suspensionDampingRebound": 2000.0,
                "suspensionTravel": 0.25,
            }
        )
    builder.gltf.extensions = {"OMI_vehicle_wheel": {"wheels": wheels}}
    builder.use("OMI_physics_body", "OMI_vehicle_body", "OMI_vehicle_wheel")


def _add_animations(
    builder: GltfBuilder,
    wheel_nodes: dict[str, int],
    steer_nodes: dict[str, int],
    rest: dict[str, np.ndarray],
    options: RigOptions,
) -> None:
    """`drive`: every wheel one full turn about its axle (forward roll); `steer`: the front
    wheels left and right about +Y, a sine sampled at 17 keys."""
    keys = options.keys_per_revolution
    times = np.linspace(0.0, options.revolution_s, keys + 1).astype(np.float32)
    time_acc = builder.accessor(times, with_bounds=True)
    samplers, channels = [], []
    for name, node_id in wheel_nodes.items():
        spins = [
            quat_multiply(rest[name], quat_axis_angle(np.array([1.0, 0.0, 0.0]), angle))
            for angle in np.linspace(0.0, 2.0 * np.pi, keys + 1)
        ]
        output = builder.accessor(np.asarray(spins, dtype=np.float32))
        samplers.append(pygltflib.AnimationSampler(input=time_acc, output=output))
        channels.append(
            pygltflib.AnimationChannel(
                sampler=len(samplers) - 1,
                target=pygltflib.AnimationChannelTarget(node=node_id, path="rotation"),
            )
        )
    builder.add(
        "animations", pygltflib.Animation(name="drive", samplers=samplers, channels=channels)
    )

    steer_times = np.linspace(0.0, options.steer_period_s, 17).astype(np.float32)
    steer_acc = builder.accessor(steer_times, with_bounds=True)
    amplitude = math.radians(options.steer_deg)
    turns = [
        quat_axis_angle(np.array([0.0, 1.0, 0.0]), amplitude * math.sin(2.0 * math.pi * k / 16))
        for k in range(17)
    ]
    turn_acc = builder.accessor(np.asarray(turns, dtype=np.float32))
    samplers = [pygltflib.AnimationSampler(input=steer_acc, output=turn_acc)]
    channels = [
        pygltflib.AnimationChannel(
            sampler=0, target=pygltflib.AnimationChannelTarget(node=node_id, path="rotation")
        )
        for node_id in steer_nodes.values()
    ]
    builder.add(
        "animations", pygltflib.Animation(name="steer", samplers=samplers, channels=channels)
    )
