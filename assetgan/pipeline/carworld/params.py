"""Car parameters: body-style families with continuous proportions, paint and materials.

A CarParams is the complete recipe of one car: build_car(params) is a pure function of it.
Lengths are in metres, colours are linear RGB in [0, 1] (docs/carworld.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum

import numpy as np

from assetgan.core.errors import AssetganError


class BodyStyle(StrEnum):
    sedan = "sedan"
    hatchback = "hatchback"
    suv = "suv"
    pickup = "pickup"
    coupe = "coupe"
    van = "van"


class Shift(StrEnum):
    """Distribution shifts for test splits: train on `none`, test on a shifted one."""

    none = "none"  # the training distribution
    paint = "paint"  # paint hues never seen in `none` (pink, purple, lime, cyan, rose)
    lighting = "lighting"  # low sun, strong colour casts, harsh or flat light
    background = "background"  # unseen backgrounds: patterns and dense clutter
    style = "style"  # mostly pickups / vans / coupes with wider proportions
    all = "all"  # every shift at once


class Finish(StrEnum):
    gloss = "gloss"
    metallic = "metallic"
    matte = "matte"


Colour = tuple[float, float, float]


@dataclass(frozen=True)
class CarParams:
    """Everything that defines one car. Heights are above the ground (y = 0); z runs from the
    tail (-length/2) to the nose (+length/2)."""

    style: BodyStyle  # body-style family
    length: float  # bumper to bumper (m)
    width: float  # body width without mirrors (m)
    height: float  # roof height above ground (m)
    wheelbase: float  # front to rear axle (m)
    front_overhang_share: float  # share of (length - wheelbase) in front of the front axle
    ride_height: float  # body underside above ground (m)
    wheel_radius: float  # tire outer radius (m)
    tire_width: float  # tire tread width (m)
    rim_ratio: float  # rim radius / tire radius
    spokes: int  # number of rim spokes
    nose_height: float  # top of the nose at the front face (m)
    hood_height: float  # hood height at the windshield base (m)
    deck_height: float  # trunk deck / hatch / bed-rail height at the rear glass base (m)
    tail_height: float  # top of the rear face (m)
    cabin_offset: float  # windshield base behind the front axle (m, negative = ahead of it)
    windshield_run: float  # horizontal run of the windshield (m)
    roof_length: float  # flat roof length (m); hatch-like styles extend it to the tail
    rear_run: float  # horizontal run of the rear glass (m)
    tumblehome: float  # roof half width / body half width
    nose_round: float  # plan-view corner radius at the nose (m)
    tail_round: float  # plan-view corner radius at the tail (m)
    doors: int  # doors per side (1 or 2)
    paint: Colour  # body colour
    finish: Finish  # paint finish (specular and reflection strength)
    roof_paint: Colour  # roof colour (= paint unless two-tone)
    trim: Colour  # bumper / mirror / pillar trim colour (black plastic or paint)
    glass: Colour  # glass tint
    rim: Colour  # rim colour
    headlight: Colour  # head light lens colour
    taillight: Colour  # tail light lens colour
    plate: Colour  # licence plate colour
    running_boards: bool  # side steps between the wheels (SUVs, pickups)

    def to_json(self) -> dict:
        out = asdict(self)
        out["style"] = self.style.value
        out["finish"] = self.finish.value
        return out

    @classmethod
    def from_json(cls, obj: dict) -> CarParams:
        names = {f.name for f in fields(cls)}
        missing = names - set(obj)
        if missing:
            raise AssetganError(f"car params json lacks fields {sorted(missing)}")
        values = {name: obj[name] for name in names}
        values["style"] = BodyStyle(values["style"])
        values["finish"] = Finish(values["finish"])
        for key in (
            "paint",
            "roof_paint",
            "trim",
            "glass",
            "rim",
            "headlight",
            "taillight",
            "plate",
        ):
            values[key] = tuple(float(c) for c in values[key])
        return cls(**values)


# Per-style means of the proportions (spread is applied in sample_car_params).
# length, width, height, wheelbase/length, ride, wheel r, nose h, hood h, deck h, tail h,
# cabin offset, windshield run, roof length, rear run, tumblehome, nose round, tail round
_STYLE_MEANS: dict[BodyStyle, dict[str, float]] = {
    BodyStyle.sedan: dict(
        length=4.70,
        width=1.82,
        height=1.45,
        wb=0.600,
        ride=0.17,
        wheel=0.325,
        nose=0.74,
        hood=0.98,
        deck=1.03,
        tail=0.98,
        cabin=0.55,
        ws=0.80,
        roof=1.20,
        rear=0.62,
        tumble=0.80,
        nose_round=0.30,
        tail_round=0.25,
    ),
    BodyStyle.hatchback: dict(
        length=3.95,
        width=1.76,
        height=1.48,
        wb=0.620,
        ride=0.16,
        wheel=0.315,
        nose=0.72,
        hood=0.95,
        deck=0.95,
        tail=1.02,
        cabin=0.40,
        ws=0.78,
        roof=0.0,
        rear=0.50,
        tumble=0.80,
        nose_round=0.30,
        tail_round=0.22,
    ),
    BodyStyle.suv: dict(
        length=4.70,
        width=1.90,
        height=1.72,
        wb=0.600,
        ride=0.26,
        wheel=0.375,
        nose=0.95,
        hood=1.14,
        deck=1.15,
        tail=1.17,
        cabin=0.50,
        ws=0.70,
        roof=0.0,
        rear=0.20,
        tumble=0.84,
        nose_round=0.30,
        tail_round=0.22,
    ),
    BodyStyle.pickup: dict(
        length=5.40,
        width=1.95,
        height=1.86,
        wb=0.620,
        ride=0.30,
        wheel=0.395,
        nose=1.05,
        hood=1.24,
        deck=1.22,
        tail=1.20,
        cabin=0.62,
        ws=0.62,
        roof=1.15,
        rear=0.08,
        tumble=0.86,
        nose_round=0.22,
        tail_round=0.08,
    ),
    BodyStyle.coupe: dict(
        length=4.50,
        width=1.84,
        height=1.32,
        wb=0.590,
        ride=0.14,
        wheel=0.335,
        nose=0.68,
        hood=0.90,
        deck=0.95,
        tail=0.92,
        cabin=0.70,
        ws=0.95,
        roof=0.85,
        rear=0.95,
        tumble=0.76,
        nose_round=0.34,
        tail_round=0.28,
    ),
    BodyStyle.van: dict(
        length=4.90,
        width=1.95,
        height=1.95,
        wb=0.620,
        ride=0.18,
        wheel=0.325,
        nose=0.86,
        hood=1.05,
        deck=1.02,
        tail=1.05,
        cabin=-0.10,
        ws=0.85,
        roof=0.0,
        rear=0.10,
        tumble=0.88,
        nose_round=0.28,
        tail_round=0.12,
    ),
}
_HATCH_LIKE = (BodyStyle.hatchback, BodyStyle.suv, BodyStyle.van)

# Real-world-like paint palette: (weight, colour) — greys and whites dominate.
TRAIN_PAINTS: tuple[tuple[float, Colour], ...] = (
    (0.20, (0.90, 0.90, 0.88)),  # white
    (0.17, (0.05, 0.05, 0.06)),  # black
    (0.14, (0.62, 0.63, 0.65)),  # silver
    (0.12, (0.33, 0.34, 0.36)),  # grey
    (0.09, (0.08, 0.15, 0.40)),  # dark blue
    (0.08, (0.65, 0.06, 0.06)),  # red
    (0.05, (0.15, 0.35, 0.70)),  # blue
    (0.04, (0.10, 0.30, 0.15)),  # green
    (0.04, (0.70, 0.62, 0.48)),  # beige
    (0.03, (0.35, 0.20, 0.10)),  # brown
    (0.02, (0.90, 0.70, 0.05)),  # yellow
    (0.02, (0.85, 0.35, 0.05)),  # orange
)
# Hues never used by TRAIN_PAINTS, for the `paint` distribution shift.
SHIFT_PAINTS: tuple[tuple[float, Colour], ...] = (
    (0.2, (0.95, 0.30, 0.65)),  # pink
    (0.2, (0.45, 0.15, 0.65)),  # purple
    (0.2, (0.55, 0.90, 0.10)),  # lime
    (0.2, (0.10, 0.80, 0.80)),  # cyan
    (0.2, (0.95, 0.55, 0.75)),  # pastel rose
)

TRAIN_STYLE_WEIGHTS = {
    BodyStyle.sedan: 0.28,
    BodyStyle.hatchback: 0.20,
    BodyStyle.suv: 0.22,
    BodyStyle.pickup: 0.10,
    BodyStyle.coupe: 0.12,
    BodyStyle.van: 0.08,
}
# The `style` shift: mostly the rare families, with wider proportion spread.
SHIFT_STYLE_WEIGHTS = {
    BodyStyle.sedan: 0.05,
    BodyStyle.hatchback: 0.05,
    BodyStyle.suv: 0.10,
    BodyStyle.pickup: 0.30,
    BodyStyle.coupe: 0.20,
    BodyStyle.van: 0.30,
}


def weighted_choice(rng: np.random.Generator, weighted: dict | tuple):
    """One key of {choice: weight}, or one choice of ((weight, choice), ...), drawn by weight."""
    items = list(weighted.items()) if isinstance(weighted, dict) else [(c, w) for w, c in weighted]
    weights = np.array([w for _, w in items], dtype=np.float64)
    index = int(rng.choice(len(items), p=weights / weights.sum()))
    return items[index][0]


def _jitter_colour(rng: np.random.Generator, colour: Colour, amount: float) -> Colour:
    brightness = rng.uniform(1 - amount, 1 + amount)
    values = np.clip(np.array(colour) * brightness + rng.normal(0, amount * 0.12, 3), 0.0, 1.0)
    return tuple(round(float(v), 4) for v in values)


def sample_car_params(
    rng: np.random.Generator, *, paint_shift: bool = False, style_shift: bool = False
) -> CarParams:
    """Draw one car. paint_shift uses SHIFT_PAINTS; style_shift favours rare styles and
    widens the proportion spread (the distribution shifts of docs/carworld.md)."""
    style = weighted_choice(rng, SHIFT_STYLE_WEIGHTS if style_shift else TRAIN_STYLE_WEIGHTS)
    mean = _STYLE_MEANS[style]
    spread = 1.6 if style_shift else 1.0

    def vary(key: str, rel: float) -> float:
        return float(mean[key] * (1.0 + spread * rel * rng.uniform(-1.0, 1.0)))

    length = vary("length", 0.06)
    width = vary("width", 0.03)
    height = vary("height", 0.035)
    scale = length / mean["length"]
    wheelbase = length * vary("wb", 0.03)
    wheel = vary("wheel", 0.06)
    ride = vary("ride", 0.12)
    ride = min(ride, wheel * 0.85)
    hood = vary("hood", 0.04)
    nose = min(vary("nose", 0.06), hood - 0.05)
    deck = vary("deck", 0.04)
    tail = min(vary("tail", 0.04), deck + 0.05)
    # Keep the hood/deck above the wheel arches and below the roof.
    floor_top = 2.0 * wheel + 0.12
    hood = max(hood, floor_top)
    deck = max(deck, floor_top - 0.02)
    height = max(height, max(hood, deck) + 0.35)
    paint_colour = _jitter_colour(
        rng, weighted_choice(rng, SHIFT_PAINTS if paint_shift else TRAIN_PAINTS), 0.08
    )
    finish = weighted_choice(rng, {Finish.gloss: 0.45, Finish.metallic: 0.4, Finish.matte: 0.15})
    two_tone = rng.uniform() < 0.1
    roof_paint = (0.05, 0.05, 0.06) if two_tone else paint_colour
    plastic_trim = (
        rng.uniform() < 0.45 or style in (BodyStyle.pickup, BodyStyle.suv) and rng.uniform() < 0.5
    )
    grey = float(rng.uniform(0.04, 0.09))
    trim = (round(grey, 4), round(grey, 4), round(grey * 1.05, 4)) if plastic_trim else paint_colour
    tint = weighted_choice(
        rng, {(1.0, 1.0, 1.0): 0.5, (0.85, 0.95, 1.15): 0.35, (0.9, 1.1, 1.0): 0.15}
    )
    glass = tuple(round(0.07 * float(rng.uniform(0.6, 1.3)) * t, 4) for t in tint)
    rim = _jitter_colour(
        rng,
        weighted_choice(
            rng,
            {
                (0.75, 0.76, 0.78): 0.55,
                (0.15, 0.15, 0.16): 0.3,
                (0.85, 0.72, 0.35): 0.05,
                (0.45, 0.46, 0.48): 0.1,
            },
        ),
        0.1,
    )
    spokes = int(rng.choice([4, 5, 10]))
    cabin = mean["cabin"] * scale + spread * rng.uniform(-0.08, 0.08)
    return CarParams(
        style=style,
        length=round(length, 4),
        width=round(width, 4),
        height=round(height, 4),
        wheelbase=round(wheelbase, 4),
        front_overhang_share=round(float(rng.uniform(0.42, 0.52)), 4),
        ride_height=round(ride, 4),
        wheel_radius=round(wheel, 4),
        tire_width=round(float(rng.uniform(0.19, 0.27)), 4),
        rim_ratio=round(float(rng.uniform(0.55, 0.72)), 4),
        spokes=spokes,
        nose_height=round(nose, 4),
        hood_height=round(hood, 4),
        deck_height=round(deck, 4),
        tail_height=round(tail, 4),
        cabin_offset=round(float(cabin), 4),
        windshield_run=round(vary("ws", 0.10), 4),
        roof_length=round(mean["roof"] * scale * (1 + spread * 0.1 * rng.uniform(-1, 1)), 4),
        rear_run=round(vary("rear", 0.15), 4),
        tumblehome=round(vary("tumble", 0.03), 4),
        nose_round=round(vary("nose_round", 0.15), 4),
        tail_round=round(vary("tail_round", 0.15), 4),
        doors=1
        if style is BodyStyle.coupe or (style is BodyStyle.pickup and rng.uniform() < 0.3)
        else 2,
        paint=paint_colour,
        finish=finish,
        roof_paint=roof_paint,
        trim=trim,
        glass=glass,
        rim=rim,
        headlight=_jitter_colour(rng, (0.85, 0.88, 0.92), 0.08),
        taillight=_jitter_colour(rng, (0.75, 0.05, 0.05), 0.15),
        plate=(0.92, 0.92, 0.88) if rng.uniform() < 0.8 else (0.95, 0.80, 0.10),
        running_boards=style in (BodyStyle.suv, BodyStyle.pickup) and rng.uniform() < 0.6,
    )


def is_hatch_like(style: BodyStyle) -> bool:
    """Hatchback, SUV and van: the roof runs to the tail and the rear is one lifting hatch."""
    return style in _HATCH_LIKE
