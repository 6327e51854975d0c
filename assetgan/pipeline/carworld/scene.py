"""Scene parameters around one car: camera, light, background and image degradations, and
the distribution-shift options (docs/carworld.md)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from enum import StrEnum

import numpy as np

from assetgan.core.errors import AssetganError
from assetgan.pipeline.carworld.params import CarParams, weighted_choice
from assetgan.render.camera import Camera, orbit_camera

Colour = tuple[float, float, float]


class Background(StrEnum):
    studio = "studio"  # seamless floor and backdrop of one tone
    outdoor = "outdoor"  # textured ground, sky, skyline silhouettes
    backdrop = "backdrop"  # screen-space gradient / noise, shadow on an invisible floor
    pattern = "pattern"  # (shift only) checker / stripe floors and walls
    clutter = "clutter"  # (shift only) dense random shapes all around


TRAIN_BACKGROUNDS = {Background.studio: 0.3, Background.outdoor: 0.45, Background.backdrop: 0.25}
SHIFT_BACKGROUNDS = {Background.pattern: 0.5, Background.clutter: 0.5}


@dataclass(frozen=True)
class SceneParams:
    """Everything around the car in one image (angles in degrees, lengths in metres)."""

    azimuth: float  # camera azimuth, 0 = front view, 90 = car's left side
    elevation: float  # camera elevation above the horizon
    distance: float  # camera distance to the target
    fov_y: float  # vertical field of view
    target: tuple[float, float, float]  # look-at point
    light_dir: tuple[float, float, float]  # unit vector towards the sun
    light_colour: Colour  # sun colour (times diffuse)
    ambient: float  # ambient intensity
    diffuse: float  # sun intensity
    specular: float  # highlight intensity
    sky_zenith: Colour  # sky colour straight up
    sky_horizon: Colour  # sky colour at the horizon
    ground: Colour  # ground base colour
    ground_texture: float  # ground noise contrast (0 = flat)
    ground_scale: float  # ground noise feature size (m)
    fog_distance: float  # ground fades into the horizon colour over this distance (m)
    background: Background  # background kind
    shadow: float  # contact-shadow darkness in [0, 1]
    blur: float  # Gaussian blur sigma in output pixels (0 = none)
    noise: float  # additive Gaussian noise sigma (0 = none)
    jpeg: int  # JPEG re-encoding quality (0 = none)
    texture_seed: int  # seed of procedural textures and clutter

    def camera(self, size: int) -> Camera:
        near = max(self.distance - 6.0, 0.1)
        return orbit_camera(
            self.azimuth,
            self.elevation,
            self.distance,
            fov_y_deg=self.fov_y,
            size=(size, size),
            target=self.target,
            near=near,
            far=self.distance + 6.0,
        )

    def to_json(self) -> dict:
        out = asdict(self)
        out["background"] = self.background.value
        return out

    @classmethod
    def from_json(cls, obj: dict) -> SceneParams:
        names = {f.name for f in fields(cls)}
        if names - set(obj):
            raise AssetganError(f"scene json lacks fields {sorted(names - set(obj))}")
        values = {n: obj[n] for n in names}
        values["background"] = Background(values["background"])
        for key in ("target", "light_dir", "light_colour", "sky_zenith", "sky_horizon", "ground"):
            values[key] = tuple(float(v) for v in values[key])
        return cls(**values)


def _rgb(values) -> Colour:
    return tuple(round(float(v), 4) for v in np.clip(values, 0.0, 1.0))


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def sample_scene(
    rng: np.random.Generator,
    car: CarParams,
    *,
    lighting_shift: bool = False,
    background_shift: bool = False,
    degrade: float = 0.25,
) -> SceneParams:
    """Draw the camera, light, background and degradations for one image of `car`."""
    # ---- camera: frame the car's bounding circle in plan view plus its height ------------------
    fov = float(rng.uniform(22.0, 42.0))
    radius = 0.5 * math.hypot(car.length, car.width)
    fill = float(rng.uniform(0.8, 1.0))  # share of the frame width the plan diagonal spans
    distance = radius / (fill * math.tan(math.radians(fov) / 2.0))
    target = (
        float(rng.normal(0.0, 0.04 * radius)),
        float(car.height * rng.uniform(0.38, 0.5)),
        float(rng.normal(0.0, 0.04 * radius)),
    )
    azimuth = float(rng.uniform(0.0, 360.0))
    elevation = float(rng.uniform(0.0, 35.0))

    # ---- light --------------------------------------------------------------------------------
    sun_az = rng.uniform(0.0, 2.0 * np.pi)
    mode = "normal"
    if lighting_shift:
        mode = ("low", "tinted", "flat")[int(rng.integers(3))]
    sun_el = np.radians(rng.uniform(5.0, 18.0) if mode == "low" else rng.uniform(25.0, 75.0))
    light_dir = (
        float(np.cos(sun_el) * np.sin(sun_az)),
        float(np.sin(sun_el)),
        float(np.cos(sun_el) * np.cos(sun_az)),
    )
    warmth = rng.uniform(-0.08, 0.08)
    light_colour = np.array([1.0 + warmth, 1.0, 1.0 - warmth])
    ambient, diffuse, specular = (
        rng.uniform(0.3, 0.5),
        rng.uniform(0.55, 0.85),
        rng.uniform(0.3, 0.7),
    )
    if mode == "low":
        light_colour = np.array([1.0, 0.75, 0.5])
        ambient, diffuse = rng.uniform(0.12, 0.25), rng.uniform(0.8, 1.1)
    elif mode == "tinted":
        light_colour = _hsv(rng.uniform(), 0.55, 1.0) / 0.8
        ambient = rng.uniform(0.15, 0.3)
    elif mode == "flat":
        ambient, diffuse, specular = rng.uniform(0.75, 0.95), rng.uniform(0.0, 0.15), 0.05

    # ---- background ---------------------------------------------------------------------------
    kind = weighted_choice(rng, SHIFT_BACKGROUNDS if background_shift else TRAIN_BACKGROUNDS)
    if kind is Background.outdoor:
        overcast = rng.uniform() < 0.35
        zenith = _hsv(
            rng.uniform(0.55, 0.63),
            rng.uniform(0.0, 0.15) if overcast else rng.uniform(0.35, 0.7),
            rng.uniform(0.6, 0.95),
        )
        horizon = 0.6 * zenith + 0.4 * rng.uniform(0.75, 0.95)
        ground = (
            _hsv(rng.uniform(0.05, 0.12), rng.uniform(0.0, 0.15), rng.uniform(0.25, 0.5))  # asphalt
            if rng.uniform() < 0.6
            else _hsv(
                rng.uniform(0.1, 0.3), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.55)
            )  # grass/sand
        )
        texture, scale, fog = rng.uniform(0.1, 0.35), rng.uniform(0.3, 3.0), rng.uniform(25.0, 80.0)
    elif kind is Background.studio:
        tone = _hsv(rng.uniform(), rng.uniform(0.0, 0.3), rng.uniform(0.45, 0.95))
        zenith, horizon = tone * rng.uniform(0.75, 1.0), tone
        ground = tone * rng.uniform(0.8, 1.0)
        texture, scale, fog = rng.uniform(0.0, 0.08), 2.0, rng.uniform(8.0, 20.0)
    else:  # backdrop, pattern, clutter: colours drawn freely
        zenith = _hsv(rng.uniform(), rng.uniform(0.1, 0.8), rng.uniform(0.3, 1.0))
        horizon = _hsv(rng.uniform(), rng.uniform(0.1, 0.8), rng.uniform(0.3, 1.0))
        ground = _hsv(rng.uniform(), rng.uniform(0.0, 0.6), rng.uniform(0.2, 0.8))
        texture, scale, fog = rng.uniform(0.1, 0.5), rng.uniform(0.3, 2.0), rng.uniform(20.0, 60.0)

    # ---- degradations -------------------------------------------------------------------------
    blur = float(rng.uniform(0.3, 0.9)) if rng.uniform() < 0.5 * degrade else 0.0
    noise = float(rng.uniform(0.005, 0.03)) if rng.uniform() < degrade else 0.0
    jpeg = int(rng.integers(55, 95)) if rng.uniform() < 0.6 * degrade else 0
    return SceneParams(
        azimuth=round(azimuth, 4),
        elevation=round(elevation, 4),
        distance=round(float(distance), 4),
        fov_y=round(fov, 4),
        target=tuple(round(v, 4) for v in target),
        light_dir=tuple(round(v, 5) for v in light_dir),
        light_colour=tuple(round(float(v), 4) for v in light_colour),
        ambient=round(float(ambient), 4),
        diffuse=round(float(diffuse), 4),
        specular=round(float(specular), 4),
        sky_zenith=_rgb(zenith),
        sky_horizon=_rgb(horizon),
        ground=_rgb(ground),
        ground_texture=round(float(texture), 4),
        ground_scale=round(float(scale), 4),
        fog_distance=round(float(fog), 3),
        background=kind,
        shadow=round(float(rng.uniform(0.35, 0.75)), 4),
        blur=round(blur, 4),
        noise=round(noise, 4),
        jpeg=jpeg,
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )
