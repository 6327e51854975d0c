"""Grouped bar charts as PNG without a plotting library (PIL), for the demo report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from assetgan.core.images import atomic_write_png

COLOURS = ((31, 119, 180), (214, 39, 40), (120, 120, 120), (44, 160, 44), (148, 103, 189))
HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 360, 60, 20, 56, 90


def bar_chart(
    path: Path,
    title: str,
    categories: Sequence[str],  # groups along x, left to right
    series: Mapping[str, Sequence[float | None]],  # bar name -> value per group (None = no bar)
    y_max: float | None = None,  # top of the y axis; None = the largest value (+ 10 %)
    bar_width: int = 14,  # px per bar
) -> Path:
    """Write the chart to `path` (PNG): one group of bars per category, a legend on top, values
    written above bars when there is room; returns `path`."""
    values = [v for ys in series.values() for v in ys if v is not None]
    top = y_max if y_max is not None else (max(values) * 1.1 if values else 1.0)
    top = top if top > 0 else 1.0
    group = bar_width * max(1, len(series)) + 12
    width = max(640, LEFT + RIGHT + group * len(categories))
    picture = Image.new("RGB", (width, HEIGHT), "white")
    draw = ImageDraw.Draw(picture)
    plot_h = HEIGHT - TOP - BOTTOM
    draw.text((LEFT, 8), title, fill=(0, 0, 0))
    draw.line((LEFT, TOP, LEFT, TOP + plot_h, width - RIGHT, TOP + plot_h), fill=(0, 0, 0))
    for tick in np.linspace(0, top, 5):
        y = TOP + plot_h * (1 - tick / top)
        draw.line((LEFT - 4, y, width - RIGHT, y), fill=(225, 225, 225))
        draw.text((6, y - 6), f"{tick:.3g}", fill=(0, 0, 0))
    legend_x = LEFT
    for number, name in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        draw.rectangle((legend_x, 26, legend_x + 10, 36), fill=colour)
        draw.text((legend_x + 14, 25), name, fill=(0, 0, 0))
        legend_x += 24 + int(draw.textlength(name))
    for index, label in enumerate(categories):
        left = LEFT + 6 + index * group
        for number, ys in enumerate(series.values()):
            value = ys[index]
            if value is None:
                continue
            x = left + number * bar_width
            y = TOP + plot_h * (1 - min(value, top) / top)
            draw.rectangle(
                (x, y, x + bar_width - 2, TOP + plot_h), fill=COLOURS[number % len(COLOURS)]
            )
        text = Image.new("RGB", (BOTTOM - 6, 12), "white")  # the label, turned 90 degrees
        ImageDraw.Draw(text).text((0, 0), label[: (BOTTOM - 6) // 6], fill=(0, 0, 0))
        turned = text.rotate(90, expand=True)
        picture.paste(turned, (left + group // 2 - 12, TOP + plot_h + 4))
    atomic_write_png(path, np.asarray(picture))
    return Path(path)
