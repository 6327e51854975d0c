"""Shapes <-> label masks: polygons, rectangles and circles to pixels, and masks back to polygons.

Coordinates follow docs/conventions.md: x right, y down, origin at the top-left corner of the
top-left pixel, so pixel (row r, col c) has its centre at (c + 0.5, r + 0.5). LabelMe's GUI uses
the same continuous coordinates.

Two rasterisation rules (RasterRule):
- `centre` (default): a pixel belongs to a shape when its centre lies inside (polygons: even-odd
  rule, half-open top-left tie rule, so shapes that share an edge never both claim a pixel).
  Exact and resolution-consistent; `mask_to_polygons` inverts it exactly.
- `labelme`: labelme's own `shape_to_mask` (PIL ImageDraw with outline=1 and fill=1 on the raw
  points), for users whose masks must equal what labelme2voc produces. PIL treats integer
  coordinates as pixel centres and includes the outline, so these masks are about half a pixel
  larger on every side than the centre rule's.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


class RasterRule(StrEnum):
    centre = "centre"  # pixel centres inside the shape (exact, docs/conventions.md)
    labelme = "labelme"  # PIL ImageDraw outline+fill on the raw points, as labelme2voc does


# ---- shapes -> pixel masks ---------------------------------------------------------------------


def polygon_mask(
    points: np.ndarray,  # [P, 2] (x, y) vertices, P >= 3
    height: int,
    width: int,
    rule: RasterRule = RasterRule.centre,
) -> np.ndarray:
    """[height, width] bool: pixels inside the polygon."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if rule == RasterRule.labelme:
        return _pil_mask(height, width, lambda draw: draw.polygon(_xy(points), outline=1, fill=1))
    # Scanline fill at the pixel-centre rows y = r + 0.5: intersections of every edge with
    # every row, sorted, filled between pairs (even-odd) with the half-open rule [a, b).
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rows_y = np.arange(height, dtype=np.float64)[:, None] + 0.5  # [H, 1]
    crosses = (y0[None] <= rows_y) != (y1[None] <= rows_y)  # [H, E] half-open in y
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (rows_y - y0[None]) / (y1 - y0)[None]
    xs = np.where(crosses, x0[None] + t * (x1 - x0)[None], np.inf)  # [H, E]
    xs.sort(axis=1)
    # first column whose centre c + 0.5 >= x: ceil(x - 0.5), clipped to the image
    cols = np.clip(np.ceil(xs - 0.5), 0, width).astype(np.int64, copy=False, casting="unsafe")
    cols = np.where(np.isfinite(xs), cols, width)
    counts = crosses.sum(axis=1)  # even for a closed polygon
    edges = np.zeros((height, width + 1), dtype=np.int32)
    for k in range(0, cols.shape[1] - 1, 2):
        valid = counts > k
        r = np.nonzero(valid)[0]
        np.add.at(edges, (r, cols[r, k]), 1)
        np.add.at(edges, (r, cols[r, k + 1]), -1)
    return np.cumsum(edges, axis=1)[:, :width] > 0


def rectangle_mask(
    corners: np.ndarray,  # [2, 2] two opposite corners (x, y)
    height: int,
    width: int,
    rule: RasterRule = RasterRule.centre,
) -> np.ndarray:
    """[height, width] bool: pixels inside the axis-aligned rectangle."""
    (xa, ya), (xb, yb) = np.asarray(corners, dtype=np.float64).reshape(2, 2)
    x_lo, x_hi, y_lo, y_hi = min(xa, xb), max(xa, xb), min(ya, yb), max(ya, yb)
    if rule == RasterRule.labelme:
        box = [(x_lo, y_lo), (x_hi, y_hi)]
        return _pil_mask(height, width, lambda draw: draw.rectangle(box, outline=1, fill=1))
    return polygon_mask(
        np.array([[x_lo, y_lo], [x_hi, y_lo], [x_hi, y_hi], [x_lo, y_hi]]), height, width
    )


def circle_mask(
    points: np.ndarray,  # [2, 2]: the centre, then a point on the circle (LabelMe's circle)
    height: int,
    width: int,
    rule: RasterRule = RasterRule.centre,
) -> np.ndarray:
    """[height, width] bool: pixels inside the circle."""
    (cx, cy), (px, py) = np.asarray(points, dtype=np.float64).reshape(2, 2)
    radius = float(np.hypot(px - cx, py - cy))
    if rule == RasterRule.labelme:
        box = [(cx - radius, cy - radius), (cx + radius, cy + radius)]
        return _pil_mask(height, width, lambda draw: draw.ellipse(box, outline=1, fill=1))
    ys = np.arange(height)[:, None] + 0.5
    xs = np.arange(width)[None, :] + 0.5
    return (xs - cx) ** 2 + (ys - cy) ** 2 < radius**2


def _xy(points: np.ndarray) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in points]


def _pil_mask(height: int, width: int, draw_fn) -> np.ndarray:
    canvas = Image.new("1", (width, height), 0)
    draw_fn(ImageDraw.Draw(canvas))
    return np.asarray(canvas, dtype=bool)


# ---- masks -> polygons -------------------------------------------------------------------------

# Unit steps of the boundary walk: E, S, W, N (y down). Outer boundaries run clockwise on screen
# (interior on the right), so their shoelace area is positive; holes come out negative.
_STEPS = ((1, 0), (0, 1), (-1, 0), (0, -1))


def mask_to_polygons(
    part_ids: np.ndarray,  # [H, W] integer label map
) -> list[tuple[int, np.ndarray]]:
    """Every 4-connected region of every label as (label, [P, 2] polygon), in draw order.

    Each polygon is the region's outer boundary on the pixel-corner grid (collinear vertices
    dropped); holes are left to the regions inside them, which come later because the list is
    sorted by polygon area, largest first. Painting the list in order with the `centre` rule
    reproduces `part_ids` exactly.
    """
    part_ids = np.asarray(part_ids)
    out: list[tuple[float, int, np.ndarray]] = []
    for label in np.unique(part_ids):
        components, count = ndimage.label(part_ids == label)  # 4-connectivity
        for index, window in enumerate(ndimage.find_objects(components), start=1):
            rows, cols = window
            region = components[window] == index
            for loop in _outer_loops(region):
                loop = loop + np.array([cols.start, rows.start])
                out.append((_signed_area(loop), int(label), loop.astype(np.float64)))
        del count
    out.sort(key=lambda item: -item[0])
    return [(label, loop) for _, label, loop in out]


def _outer_loops(region: np.ndarray) -> list[np.ndarray]:
    """Clockwise boundary loops of a bool region as [P, 2] corner coordinates (holes dropped)."""
    padded = np.pad(region, 1)
    inside = padded[1:-1, 1:-1]
    # Directed boundary edges keyed by their start corner (x, y), value = direction index.
    outgoing: dict[tuple[int, int], list[int]] = {}
    for direction, (dr, dc), start in (
        (0, (-1, 0), (0, 0)),  # top edge, walks E from the pixel's top-left corner
        (1, (0, 1), (1, 0)),  # right edge, walks S from the top-right corner
        (2, (1, 0), (1, 1)),  # bottom edge, walks W from the bottom-right corner
        (3, (0, -1), (0, 1)),  # left edge, walks N from the bottom-left corner
    ):
        neighbour = padded[1 + dr : padded.shape[0] - 1 + dr, 1 + dc : padded.shape[1] - 1 + dc]
        rows, cols = np.nonzero(inside & ~neighbour)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            outgoing.setdefault((c + start[0], r + start[1]), []).append(direction)
    loops = []
    while outgoing:
        start = next(iter(outgoing))
        vertex, direction = start, outgoing[start][0]
        path = []
        while True:
            choices = outgoing[vertex]
            choices.remove(direction)
            if not choices:
                del outgoing[vertex]
            path.append(vertex)
            step = _STEPS[direction]
            vertex = (vertex[0] + step[0], vertex[1] + step[1])
            if vertex not in outgoing:
                break
            # Prefer a right turn, then straight, then left: diagonal pinches split apart.
            options = outgoing[vertex]
            for turn in (1, 0, 3):
                if (direction + turn) % 4 in options:
                    direction = (direction + turn) % 4
                    break
        loop = _drop_collinear(np.array(path, dtype=np.int64))
        if _signed_area(loop) > 0:
            loops.append(loop)
    return loops


def _drop_collinear(loop: np.ndarray) -> np.ndarray:
    """Remove vertices where the boundary goes straight on ([P, 2] closed loop)."""
    before = np.roll(loop, 1, axis=0)
    after = np.roll(loop, -1, axis=0)
    cross = (loop - before)[:, 0] * (after - loop)[:, 1] - (loop - before)[:, 1] * (after - loop)[
        :, 0
    ]
    return loop[cross != 0]


def _signed_area(loop: np.ndarray) -> float:
    """Shoelace area; positive for clockwise-on-screen loops (y down)."""
    x, y = loop[:, 0].astype(np.float64), loop[:, 1].astype(np.float64)
    return float(0.5 * (x * np.roll(y, -1) - np.roll(x, -1) * y).sum())


def simplify_polygon(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on a closed loop [P, 2] (keeps at least 3 vertices)."""
    points = np.asarray(points, dtype=np.float64)
    if tolerance <= 0 or len(points) <= 3:
        return points
    # Split the loop at its two mutually farthest-apart-ish vertices: 0 and the farthest from 0.
    far = int(np.argmax(((points - points[0]) ** 2).sum(axis=1)))
    first = _douglas_peucker(points[: far + 1], tolerance)
    second = _douglas_peucker(np.concatenate([points[far:], points[:1]]), tolerance)
    out = np.concatenate([first[:-1], second[:-1]])
    return out if len(out) >= 3 else points[[0, far // 2, far]] if far >= 2 else points


def _douglas_peucker(chain: np.ndarray, tolerance: float) -> np.ndarray:
    """Open chain [P, 2] -> simplified chain keeping both ends."""
    keep = np.zeros(len(chain), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(chain) - 1)]
    while stack:
        lo, hi = stack.pop()
        if hi - lo < 2:
            continue
        a, b = chain[lo], chain[hi]
        seg = b - a
        inner = chain[lo + 1 : hi] - a
        length = float(np.hypot(*seg))
        if length == 0:
            dist = np.hypot(inner[:, 0], inner[:, 1])
        else:
            dist = np.abs(seg[0] * inner[:, 1] - seg[1] * inner[:, 0]) / length
        worst = int(np.argmax(dist))
        if dist[worst] > tolerance:
            mid = lo + 1 + worst
            keep[mid] = True
            stack += [(lo, mid), (mid, hi)]
    return chain[keep]
