"""`assetgan export CAR --out car.glb`: a part-labelled car -> a rigged, animatable asset.

run(AssetExportConfig) reads CAR into the neutral CarAsset (sources.py), scales it to metres,
checks it (four wheels, manifold, not empty), fits the wheels (wheels.py), cuts the wheel
geometry out of the body and closes the holes (topology.py), builds clean wheels at the fitted
sizes and writes either the rigged glTF (rig.py: .glb / .gltf) or a static mesh (.obj / .ply,
no rig) through trimesh. Nothing is written when any step fails. docs/export.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from assetgan.assets.taxonomy import PART_ID
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_bytes, atomic_write_text
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.export.gltf_build import glb_bytes, gltf_text
from assetgan.inverse_graphics.export.rig import (
    BodyGeometry,
    RigOptions,
    build_document,
    png_bytes,
    quat_from_x_to,
    quat_matrix,
)
from assetgan.inverse_graphics.export.sources import load_car
from assetgan.inverse_graphics.export.topology import (
    check_manifold,
    cut_and_close,
    face_areas,
)
from assetgan.inverse_graphics.export.wheels import (
    WHEEL_PARTS,
    WheelFit,
    WheelMesh,
    build_wheel,
    fit_wheels,
    inside_wheels,
)
from assetgan.render.asset import CarAsset

LENGTH_RANGE_M = (2.0, 10.0)  # an input outside this needs --length


class ExportFormat(StrEnum):
    """Output format, from the suffix of `out`."""

    glb = "glb"  # rigged, binary glTF
    gltf = "gltf"  # rigged, one JSON file with the buffer embedded
    obj = "obj"  # static mesh (rest pose), vertex colours, no rig
    ply = "ply"  # static mesh (rest pose), face colours, no rig


RIGGED = (ExportFormat.glb, ExportFormat.gltf)


@dataclass(frozen=True)
class AssetExportConfig:
    """What `assetgan export CAR --out OUT` does."""

    car: Path  # input: part-node .glb/.gltf (CarWorld meshes/ID.glb) or an asset directory
    out: Path  # output file; its suffix picks the format (ExportFormat)
    length_m: float | None = None  # scale the car to this length (m); None: input is in metres
    omi: bool = False  # add OMI_physics_body / OMI_vehicle_body / OMI_vehicle_wheel
    godot: bool = False  # Godot import hints: Car-vehicle, wheel mounts named ...-wheel
    steer_deg: float = 30.0  # steer animation amplitude and OMI maxSteeringAngle (degrees)
    steer_period_s: float = 2.0  # steer animation: one left-right cycle (seconds)
    revolution_s: float = 1.0  # drive animation: one wheel revolution (seconds)
    keys_per_revolution: int = 16  # drive animation keyframes per revolution (>= 3)
    spokes: int = 5  # spokes of the clean rims
    mass_kg: float = 1500.0  # OMI_physics_body mass (kg)

    @property
    def format(self) -> ExportFormat:
        suffix = Path(self.out).suffix.lower().lstrip(".")
        try:
            return ExportFormat(suffix)
        except ValueError:
            raise AssetganError(
                f"{self.out}: unknown output format {suffix!r}; use .glb or .gltf (rigged) or "
                ".obj or .ply (static mesh)"
            ) from None

    def validate(self) -> AssetExportConfig:
        """Check the settings; AssetganError naming the option otherwise."""
        _ = self.format
        if self.length_m is not None and not 0.5 <= self.length_m <= 30.0:
            raise AssetganError(f"--length must be in 0.5..30 metres, got {self.length_m}")
        if self.keys_per_revolution < 3:
            raise AssetganError(
                f"--keys must be at least 3 per revolution, got {self.keys_per_revolution}"
            )
        if not 0.0 < self.steer_deg <= 60.0:
            raise AssetganError(f"--steer must be in (0, 60] degrees, got {self.steer_deg}")
        if self.revolution_s <= 0 or self.steer_period_s <= 0:
            raise AssetganError("animation periods must be positive")
        if not 3 <= self.spokes <= 12:
            raise AssetganError(f"--spokes must be in 3..12, got {self.spokes}")
        if self.mass_kg <= 0:
            raise AssetganError(f"--mass must be positive, got {self.mass_kg}")
        return self

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["car"], out["out"] = str(self.car), str(self.out)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AssetExportConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["car"], values["out"] = Path(values["car"]), Path(values["out"])
        return cls(**values)


@dataclass(frozen=True)
class AssetExportResult:
    """What the export wrote."""

    out: Path  # the file written
    format: ExportFormat  # its format
    vertices: int  # vertices of the written geometry (rest pose, all nodes)
    faces: int  # triangles of the written geometry
    wheels: tuple[dict, ...]  # WheelFit.to_json() per wheel (FL, FR, RL, RR), in the Car frame
    holes_closed: int  # holes the wheel cut opened in the body and the export closed
    scale: float  # factor applied to the input (1.0 when it was in metres)
    origin: tuple[float, float, float]  # the Car node's origin in the (scaled) input frame
    length_m: float  # car length along Z after scaling
    animations: tuple[str, ...]  # animation names ("drive", "steer"); () for OBJ / PLY

    def summary(self) -> str:
        radii = ", ".join(f"{w['name']} r={w['radius']:.3f}" for w in self.wheels)
        rig = f", animations {', '.join(self.animations)}" if self.animations else ", no rig"
        return (
            f"wrote {self.out} ({self.format.value}: {self.vertices} vertices, {self.faces} "
            f"faces, length {self.length_m:.2f} m{rig}; wheels {radii}; "
            f"{self.holes_closed} holes closed)"
        )


def _scaled(asset: CarAsset, length_m: float | None) -> tuple[CarAsset, float]:
    """The asset in metres: scaled to `length_m`, or checked to be car-sized already."""
    extent = float(asset.vertices[:, 2].max() - asset.vertices[:, 2].min())
    where = asset.source or "car asset"
    if extent <= 0:
        raise AssetganError(f"{where}: the mesh has no extent along Z (empty geometry)")
    if length_m is None:
        if not LENGTH_RANGE_M[0] <= extent <= LENGTH_RANGE_M[1]:
            raise AssetganError(
                f"{where}: the car is {extent:.3g} units long along Z, not a car length in "
                "metres; pass --length METRES (e.g. --length 4.5) to scale it"
            )
        return asset, 1.0
    scale = length_m / extent
    keypoints = None if asset.keypoints is None else asset.keypoints * np.float32(scale)
    return (
        CarAsset(
            vertices=(asset.vertices.astype(np.float64) * scale).astype(np.float32),
            faces=asset.faces,
            face_parts=asset.face_parts,
            face_materials=asset.face_materials,
            face_colors=asset.face_colors,
            keypoints=keypoints,
            uv=asset.uv,
            uv_faces=asset.uv_faces,
            texture=asset.texture,
            source=asset.source,
        ),
        scale,
    )


def car_origin(fits: list[WheelFit]) -> np.ndarray:
    """[3] the Car node's origin in the input frame: on the ground (mean wheel bottom) under the
    centre of the wheelbase (midway between the axles, midway between the sides)."""
    centres = np.stack([fit.centre for fit in fits])
    ground = float(np.mean([fit.centre[1] - fit.radius for fit in fits]))
    axle_z = 0.5 * (centres[:2, 2].mean() + centres[2:, 2].mean())
    return np.array([centres[:, 0].mean(), ground, axle_z])


def _body(asset: CarAsset, fits: list[WheelFit], origin: np.ndarray) -> tuple[BodyGeometry, int]:
    """Cut the wheels out of the body, close the holes, move to the Car frame."""
    vertices = asset.vertices.astype(np.float64)
    area = face_areas(vertices, asset.faces)
    remove = np.isin(asset.face_parts, WHEEL_PARTS) | (area <= 1e-12)
    remove |= inside_wheels(vertices, asset.faces, fits)
    cut = cut_and_close(vertices, asset.faces, remove)
    source = np.concatenate([cut.kept, cut.cap_source])  # input face behind every output face
    parts = asset.face_parts[source].copy()
    corner_uv = None
    if asset.uv is not None and asset.uv_faces is not None:
        corner_uv = asset.uv[asset.uv_faces[source]].astype(np.float64)  # [T, 3, 2]
        caps = slice(len(cut.kept), None)
        corner_uv[caps] = corner_uv[caps].mean(1, keepdims=True)
    parts[len(cut.kept) :] = np.where(
        np.isin(parts[len(cut.kept) :], WHEEL_PARTS), PART_ID["car_body"], parts[len(cut.kept) :]
    )
    body = BodyGeometry(
        vertices=cut.vertices - origin,
        faces=cut.faces,
        face_parts=parts,
        face_materials=asset.face_materials[source],
        face_colors=asset.face_colors[source].astype(np.float64),
        corner_uv=corner_uv,
        texture_png=None if asset.texture is None else png_bytes(asset.texture),
    )
    return body, cut.holes_closed


def _static_mesh_bytes(
    body: BodyGeometry, wheels: list[tuple[WheelFit, WheelMesh]], fmt: ExportFormat
) -> bytes:
    """Body and wheels at rest in the Car frame as OBJ (vertex colours) or PLY (face colours)."""
    import trimesh

    vertices, faces, colours = [body.vertices], [body.faces], [body.face_colors]
    count = len(body.vertices)
    for fit, wheel in wheels:
        rotation = quat_matrix(quat_from_x_to(fit.axle))
        vertices.append(wheel.vertices @ rotation.T + fit.centre)
        faces.append(wheel.faces + count)
        colours.append(wheel.face_colors)
        count += len(wheel.vertices)
    v, f = np.concatenate(vertices), np.concatenate(faces)
    rgba = np.concatenate(
        [np.round(np.clip(np.concatenate(colours), 0, 1) * 255), np.full((len(f), 1), 255)], 1
    ).astype(np.uint8)
    if fmt is ExportFormat.obj:  # OBJ holds vertex colours only: one vertex per face corner
        mesh = trimesh.Trimesh(
            v[f].reshape(-1, 3),
            np.arange(3 * len(f)).reshape(-1, 3),
            vertex_colors=np.repeat(rgba, 3, axis=0),
            process=False,
        )
    else:
        mesh = trimesh.Trimesh(v, f, face_colors=rgba, process=False)
    payload = mesh.export(file_type=fmt.value)
    return payload.encode() if isinstance(payload, str) else payload


def _moved(fit: WheelFit, origin: np.ndarray) -> WheelFit:
    from dataclasses import replace

    return replace(fit, centre=fit.centre - origin)


def run(config: AssetExportConfig, progress: Progress | None = None) -> AssetExportResult:
    """Export CAR to `config.out` (see the module docstring)."""
    config = config.validate()
    fmt = config.format
    steps = 5
    emit(progress, 0, steps, task="reading")
    asset, scale = _scaled(load_car(config.car), config.length_m)
    where = asset.source or str(config.car)
    check_manifold(asset.vertices, asset.faces, asset.face_parts, where)
    emit(progress, 1, steps, task="fitting wheels")
    fits = fit_wheels(asset)
    origin = car_origin(fits)
    emit(progress, 2, steps, task="cutting the body")
    body, holes = _body(asset, fits, origin)
    if len(body.faces) == 0:
        raise AssetganError(f"{where}: nothing but wheels (empty body geometry)")
    emit(progress, 3, steps, task="building wheels")
    car_fits = [_moved(fit, origin) for fit in fits]
    wheels = [(fit, build_wheel(fit, spokes=config.spokes)) for fit in car_fits]
    emit(progress, 4, steps, task=f"writing {fmt.value}")
    animations: tuple[str, ...] = ()
    if fmt in RIGGED:
        options = RigOptions(
            omi=config.omi,
            godot=config.godot,
            steer_deg=config.steer_deg,
            steer_period_s=config.steer_period_s,
            revolution_s=config.revolution_s,
            keys_per_revolution=config.keys_per_revolution,
            mass_kg=config.mass_kg,
        )
        extras = {
            "assetgan": {
                "source": str(config.car),
                "scale": scale,
                "frame": "metres, +Y up, +Z forward, +X left (docs/conventions.md)",
                "wheels": [fit.to_json() for fit in car_fits],
            }
        }
        document = build_document(body, wheels, options, extras)
        if fmt is ExportFormat.glb:
            atomic_write_bytes(config.out, glb_bytes(document))
        else:
            atomic_write_text(config.out, gltf_text(document))
        animations = ("drive", "steer")
    else:
        atomic_write_bytes(config.out, _static_mesh_bytes(body, wheels, fmt))
    emit(progress, 5, steps, task="done")
    length = float(asset.vertices[:, 2].max() - asset.vertices[:, 2].min())
    return AssetExportResult(
        out=Path(config.out),
        format=fmt,
        vertices=int(len(body.vertices) + sum(len(w.vertices) for _, w in wheels)),
        faces=int(len(body.faces) + sum(len(w.faces) for _, w in wheels)),
        wheels=tuple(fit.to_json() for fit in car_fits),
        holes_closed=holes,
        scale=scale,
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        length_m=length,
        animations=animations,
    )
