"""run(DatasetViewConfig) -> DatasetViewResult: a static HTML gallery of a generated dataset
(image, part overlay, keypoints, uncertainty).

Writes `out` (HTML) and `<out stem>_files/` (overlay and uncertainty PNGs); images are
referenced relative to `out`, keypoints drawn as SVG in image pixel coordinates. Cards carry
their score and seed; buttons sort them (no server, no dependencies).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from assetgan.assets.taxonomy import PALETTE_20, SKELETON
from assetgan.core.errors import AssetganError
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_text
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.datasets.layout import GeneratedDataset

_HEAT = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], float)


def heat_colors(values: np.ndarray) -> np.ndarray:
    """[...] in [0, 1] -> [..., 3] uint8 on an inferno-like ramp."""
    stops = np.linspace(0, 1, len(_HEAT))
    channels = [np.interp(values, stops, _HEAT[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def overlay(image: np.ndarray, part_ids: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """[H, W, 3] uint8: part colours blended over the image (background left as is)."""
    colours = PALETTE_20[np.minimum(part_ids, len(PALETTE_20) - 1)].astype(np.float32)
    mixed = image.astype(np.float32) * (1 - alpha) + colours * alpha
    return np.where(part_ids[..., None] > 0, mixed, image).round().astype(np.uint8)


def _keypoint_svg(xyv: list[list[float]], names: list[str], width: int, height: int) -> str:
    shapes = []
    radius = max(width, height) / 80
    for a, b in SKELETON:
        if a < len(xyv) and b < len(xyv) and xyv[a][2] > 0 and xyv[b][2] > 0:
            shapes.append(
                f'<line x1="{xyv[a][0]}" y1="{xyv[a][1]}" x2="{xyv[b][0]}" y2="{xyv[b][1]}" '
                f'stroke="#0f0" stroke-width="{radius / 2:.3f}" opacity="0.6"/>'
            )
    for k, (x, y, v) in enumerate(xyv):
        if v > 0:
            fill = "#0f0" if v == 2 else "#ff0"
            label = html.escape(names[k] if k < len(names) else str(k))
            shapes.append(
                f'<circle cx="{x}" cy="{y}" r="{radius:.3f}" fill="{fill}" stroke="#000" '
                f'stroke-width="{radius / 3:.3f}"><title>{label} v={int(v)}</title></circle>'
            )
    return f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none">{"".join(shapes)}</svg>'


@dataclass(frozen=True)
class DatasetViewConfig:
    """One gallery of a finished generated dataset."""

    dataset: Path  # generated dataset directory (`assetgan dataset generate`)
    out: Path  # the HTML file; its PNGs go to `<out stem>_files/` beside it
    limit: int | None = None  # show only the LIMIT most uncertain samples; None = all

    def validate(self) -> DatasetViewConfig:
        if self.limit is not None and self.limit < 1:
            raise AssetganError(f"--limit must be >= 1, got {self.limit}")
        return self


@dataclass(frozen=True)
class DatasetViewResult:
    """What `run` wrote."""

    gallery: Path  # the HTML page
    files_dir: Path  # its overlay and uncertainty PNGs (two per sample shown)
    shown: int  # samples on the page, most uncertain first
    kept: int  # samples of the dataset kept in coco.json


def run(config: DatasetViewConfig, progress: Progress | None = None) -> DatasetViewResult:
    """Write the gallery of `config.dataset`; progress counts the samples drawn."""
    config = config.validate()
    out = Path(config.out)
    dataset = GeneratedDataset.load(config.dataset)
    records = sorted(dataset.records(), key=lambda r: (-r["score"], r["seed"]))
    records = records[: config.limit] if config.limit is not None else records
    root = dataset.root
    files_dir = out.parent / f"{out.stem}_files"
    height, width = dataset.image_size
    names = list(dataset.keypoint_names)
    rel_dataset = os.path.relpath(root, out.parent)
    cards = []
    for index, record in enumerate(records):
        image = np.asarray(Image.open(root / record["image"]).convert("RGB"))
        parts = np.asarray(Image.open(root / record["parts"]))
        js = np.asarray(Image.open(root / record["uncertainty"]), dtype=np.float64) / 65535
        atomic_write_png(files_dir / f"{record['id']}_overlay.png", overlay(image, parts))
        atomic_write_png(files_dir / f"{record['id']}_js.png", heat_colors(np.sqrt(js)))
        meta = dataset.sample_meta(record["seed"])
        svg = _keypoint_svg(meta["keypoints"]["xyv"], names, width, height)
        image_src = html.escape(f"{rel_dataset}/{record['image']}")
        stem = html.escape(f"{files_dir.name}/{record['id']}")
        status = "kept" if record["kept"] else "dropped"
        cards.append(
            f'<div class="card {status}" data-score="{record["score"]:.6g}" '
            f'data-seed="{record["seed"]}">'
            f'<div class="row"><img src="{image_src}" title="image">'
            f'<div class="kp"><img src="{stem}_overlay.png" title="parts + keypoints">{svg}</div>'
            f'<img src="{stem}_js.png" title="uncertainty (JS)"></div>'
            f'<div class="cap">seed {record["seed"]} &middot; score {record["score"]:.4g} '
            f"&middot; {status}</div></div>"
        )
        emit(progress, index + 1, len(records), task="samples")
    kept = int(dataset.kept or 0)
    page = _PAGE.format(
        title=html.escape(f"assetgan dataset {root.name}"),
        summary=html.escape(
            f"{len(records)} samples shown, {kept} kept in coco.json; image, part overlay with "
            f"keypoints (green visible, yellow occluded), per-pixel JS uncertainty "
            f"(sqrt(JS / ln {dataset.members}) on an inferno ramp)"
        ),
        aspect=f"{width} / {height}",
        cards="\n".join(cards),
    )
    atomic_write_text(out, page)
    return DatasetViewResult(out, files_dir, len(records), kept)


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; background: #222; color: #ddd; margin: 16px; }}
button {{ margin-right: 8px; }}
#grid {{ display: flex; flex-wrap: wrap; gap: 12px; margin-top: 12px; }}
.card {{ background: #333; padding: 6px; border-radius: 4px; }}
.card.dropped {{ outline: 2px solid #c33; }}
.row {{ display: flex; gap: 4px; }}
.row img, .kp {{ width: 160px; aspect-ratio: {aspect}; image-rendering: pixelated; display: block; }}
.kp {{ position: relative; }}
.kp img, .kp svg {{ position: absolute; inset: 0; width: 100%; height: 100%; }}
.cap {{ font-size: 12px; margin-top: 4px; }}
</style></head>
<body>
<h2>{title}</h2><p>{summary}</p>
<button onclick="sortBy('score', -1)">most uncertain first</button>
<button onclick="sortBy('score', 1)">least uncertain first</button>
<button onclick="sortBy('seed', 1)">by seed</button>
<div id="grid">
{cards}
</div>
<script>
function sortBy(key, direction) {{
  const grid = document.getElementById('grid');
  const cards = Array.from(grid.children);
  cards.sort((a, b) => direction * (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key])));
  cards.forEach(card => grid.appendChild(card));
}}
</script>
</body></html>
"""
