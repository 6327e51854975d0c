"""`assetgan export view car.glb --out car.html`: a self-contained viewer page for a rigged car.

The page embeds three.js (copied from npm `three` into viewer_js/ at build time by
tools/bundle_viewer.mjs, served to the page as an import map of data: URLs) and the GLB (base64),
so it opens from disk or any static server with no network; its content security policy forbids
fetching anything. It shows the car on a ground grid with orbit controls, buttons for the
`drive` and `steer` animations, a car_20 part-colour toggle, and exposes `window.assetganViewer`
(ready flag, pose(name, t), wheelBoxes()) for tests. docs/export.md "Viewer".
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

from assetgan.assets.taxonomy import CAR_20, PALETTE_20
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_text, read_json_object
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.export.posing import load_gltf

VIEWER_JS = Path(__file__).with_name("viewer_js")
TEMPLATE = Path(__file__).with_name("viewer_template.html")
BUNDLE_HINT = "run `npm ci && node tools/bundle_viewer.mjs` in the repository root (make install)"


@dataclass(frozen=True)
class ViewerConfig:
    """What `assetgan export view GLB --out HTML` does."""

    glb: Path  # the car: a .glb / .gltf written by `assetgan export`
    out: Path  # the HTML page to write
    title: str | None = None  # page title; None: the GLB's file name


@dataclass(frozen=True)
class ViewerResult:
    """What the viewer command wrote."""

    out: Path  # the page
    page_bytes: int  # its size
    three_version: str  # the embedded three.js version
    nodes: tuple[str, ...]  # node names of the car
    animations: tuple[str, ...]  # animation names (buttons that do something)

    def summary(self) -> str:
        return (
            f"wrote {self.out} ({self.page_bytes / 1e6:.1f} MB, three.js {self.three_version}, "
            f"{len(self.nodes)} nodes, animations {', '.join(self.animations) or 'none'})"
        )


def import_map() -> tuple[dict, str]:
    """({"imports": specifier -> data: URL}, three.js version) from the bundled modules."""
    index = VIEWER_JS / "modules.json"
    if not index.is_file():
        raise AssetganError(f"{index}: three.js is not bundled into the package; {BUNDLE_HINT}")
    manifest = read_json_object(index)
    imports = {}
    for specifier, name in manifest["modules"].items():
        path = VIEWER_JS / name
        if not path.is_file():
            raise AssetganError(f"{path}: missing from the three.js bundle; {BUNDLE_HINT}")
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        imports[specifier] = f"data:text/javascript;base64,{encoded}"
    return {"imports": imports}, str(manifest.get("three_version", "?"))


def run(config: ViewerConfig, progress: Progress | None = None) -> ViewerResult:
    """Write the viewer page for `config.glb` (nothing is written when the GLB is unreadable)."""
    emit(progress, 0, 2, task="reading")
    glb = Path(config.glb)
    if not glb.is_file():
        raise AssetganError(f"{glb}: no such file")
    if Path(config.out).suffix.lower() not in (".html", ".htm"):
        raise AssetganError(f"{config.out}: the viewer page must end in .html")
    gltf = load_gltf(glb)
    nodes = tuple(node.name or "" for node in gltf.nodes)
    animations = tuple(animation.name or "" for animation in gltf.animations)
    imports, version = import_map()
    emit(progress, 1, 2, task="writing")
    title = config.title or glb.name
    info = f"{glb.name}: {len(nodes)} nodes, animations {', '.join(animations) or 'none'}"
    palette = {"names": list(CAR_20), "colours": PALETTE_20.tolist()}
    page = TEMPLATE.read_text(encoding="utf-8")
    for key, value in (
        ("__IMPORTMAP__", json.dumps(imports)),
        ("__GLB_BASE64__", base64.b64encode(glb.read_bytes()).decode("ascii")),
        ("__PALETTE__", json.dumps(palette)),
        ("__TITLE__", html.escape(title)),
        ("__INFO__", html.escape(info)),
    ):
        page = page.replace(key, value)
    atomic_write_text(config.out, page)
    emit(progress, 2, 2, task="done")
    return ViewerResult(
        out=Path(config.out),
        page_bytes=len(page.encode("utf-8")),
        three_version=version,
        nodes=nodes,
        animations=animations,
    )
