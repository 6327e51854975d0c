"""Contact sheets of CarWorld cars: one row per body style, RGB and part colours per view."""

from __future__ import annotations

import math

import numpy as np

from assetgan.assets.taxonomy import colorize
from assetgan.core.images import contact_sheet
from assetgan.pipeline.carworld.model import build_car
from assetgan.pipeline.carworld.params import BodyStyle, sample_car_params
from assetgan.pipeline.carworld.render import render_batch, single_thread
from assetgan.pipeline.carworld.scene import sample_scene

SHEET_VIEWS = ((35.0, 12.0), (90.0, 5.0), (150.0, 20.0), (215.0, 30.0))  # (azimuth, elevation)


def style_sheet(size: int = 192, seed: int = 0) -> np.ndarray:
    """[H, W, 3] uint8: per style one car in SHEET_VIEWS (RGB), then the part maps (car_20
    palette) of the first and third views."""
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    tiles = []
    for style in BodyStyle:
        params = sample_car_params(rng)
        while params.style is not style:
            params = sample_car_params(rng)
        car = build_car(params)
        base = sample_scene(rng, params, degrade=0.0)
        radius = 0.5 * math.hypot(params.length, params.width)
        distance = radius / (0.85 * math.tan(math.radians(base.fov_y) / 2.0))
        scenes = [
            replace(base, azimuth=az, elevation=el, distance=distance) for az, el in SHEET_VIEWS
        ]
        with single_thread():
            out = render_batch([car] * len(scenes), scenes, size)
        tiles += list(out.rgb)
        tiles += [colorize(out.parts[0]), colorize(out.parts[2])]
    return contact_sheet(tiles, columns=len(SHEET_VIEWS) + 2)
