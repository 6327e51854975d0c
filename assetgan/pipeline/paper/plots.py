"""Line plots as PNG without a plotting library (PIL): categorical x, series with markers,
horizontal reference lines; used for the report's figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from assetgan.core.images import atomic_write_png

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (140, 86, 75))
LINE_COLOURS = ((90, 90, 90), (0, 0, 0), (200, 130, 0))
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 400, 60, 170, 40, 50


def line_plot(
    path: Path,
    title: str,
    x_labels: Sequence[str],  # categorical x positions, left to right
    series: Mapping[str, Sequence[float | None]],  # name -> y per x (None = missing)
    lines: Mapping[str, float | None] | None = None,  # name -> y of a horizontal reference line
    y_label: str = "mIoU",
    note: str = "",  # a second title line: the paper's figure this plot stands beside
) -> Path:
    """Write the plot to `path` (PNG) and return it."""
    lines = {k: v for k, v in (lines or {}).items() if v is not None}
    values = [v for ys in series.values() for v in ys if v is not None] + list(lines.values())
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max(0.02, 0.1 * (high - low))
    low, high = max(0.0, low - pad), min(1.0, high + pad) if high <= 1 else high + pad
    picture = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(picture)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def to_xy(index: float, value: float) -> tuple[float, float]:
        x = LEFT + (index + 0.5) / max(1, len(x_labels)) * plot_w
        y = TOP + (1 - (value - low) / max(high - low, 1e-9)) * plot_h
        return x, y

    draw.rectangle((LEFT, TOP, LEFT + plot_w, TOP + plot_h), outline=(0, 0, 0))
    draw.text((LEFT, 8), title, fill=(0, 0, 0))
    draw.text((LEFT, 22), note, fill=(90, 90, 90))
    draw.text((6, TOP - 16), y_label, fill=(0, 0, 0))
    for tick in np.linspace(low, high, 5):
        _, y = to_xy(0, float(tick))
        draw.line((LEFT - 4, y, LEFT, y), fill=(0, 0, 0))
        draw.text((8, y - 6), f"{tick:.3f}", fill=(0, 0, 0))
    for index, label in enumerate(x_labels):
        x, _ = to_xy(index, low)
        draw.line((x, TOP + plot_h, x, TOP + plot_h + 4), fill=(0, 0, 0))
        draw.text((x - 3 * len(label), TOP + plot_h + 8), label, fill=(0, 0, 0))
    legend_y = TOP
    for number, (name, value) in enumerate(lines.items()):
        colour = LINE_COLOURS[number % len(LINE_COLOURS)]
        _, y = to_xy(0, value)
        for start in range(LEFT, LEFT + plot_w, 12):  # dashed
            draw.line((start, y, min(start + 6, LEFT + plot_w), y), fill=colour, width=2)
        draw.text((LEFT + plot_w + 10, legend_y), f"-- {name} {value:.3f}", fill=colour)
        legend_y += 16
    for number, (name, ys) in enumerate(series.items()):
        colour = COLOURS[number % len(COLOURS)]
        points = [to_xy(i, v) for i, v in enumerate(ys) if v is not None]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=colour)
        draw.text((LEFT + plot_w + 10, legend_y), f"o {name}", fill=colour)
        legend_y += 16
    atomic_write_png(path, np.asarray(picture))
    return Path(path)
