"""`assetgan export view`: the page is self-contained (three.js and the car embedded, no network),
and, in headless Chromium, draws the car and turns its wheels between two animation times."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from export_browser import Chromium, find_chromium, serve
from export_fixtures import world_car
from typer.testing import CliRunner

from assetgan.commands import export as export_commands
from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.export.car import AssetExportConfig
from assetgan.inverse_graphics.export.car import run as export_car
from assetgan.inverse_graphics.export.viewer import ViewerConfig, run

CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Path, Path]:
    """(car.glb, car.html) for CarWorld car 6 (light rims: black ones hardly show a turn)."""
    root = tmp_path_factory.mktemp("viewer")
    car = world_car(root, seed=6)
    export_car(AssetExportConfig(car=car.glb, out=root / "car.glb"))
    result = run(ViewerConfig(glb=root / "car.glb", out=root / "car.html"))
    assert result.animations == ("drive", "steer") and "Wheel_FL" in result.nodes
    return root / "car.glb", root / "car.html"


def test_page_is_self_contained(page):
    glb, html = page
    text = html.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    assert "default-src 'none'" in text  # the CSP: the page may fetch nothing
    importmap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', text, re.S)[1])
    assert set(importmap["imports"]) >= {"three", "three-pkg/examples/jsm/loaders/GLTFLoader.js"}
    assert all(
        url.startswith("data:text/javascript;base64,") for url in importmap["imports"].values()
    )
    embedded = re.search(r'<script id="car-glb"[^>]*>(.*?)</script>', text, re.S)[1]
    assert base64.b64decode(embedded) == glb.read_bytes()


def test_viewer_bad_inputs(tmp_path, page):
    glb, _ = page
    (tmp_path / "junk.glb").write_bytes(b"not a gltf at all")
    for source, out, message in (
        (tmp_path / "missing.glb", tmp_path / "a.html", "no such file"),
        (tmp_path / "junk.glb", tmp_path / "b.html", "not a readable glTF"),
        (glb, tmp_path / "c.png", "must end in .html"),
    ):
        with pytest.raises(AssetganError, match=message) as error:
            run(ViewerConfig(glb=source, out=out))
        assert "\n" not in str(error.value) and not out.exists()
    runner = CliRunner()
    done = runner.invoke(export_commands.app, ["view", str(glb), "--out", str(tmp_path / "v.html")])
    assert done.exit_code == 0 and (tmp_path / "v.html").is_file(), done.output
    bad = runner.invoke(
        export_commands.app, ["view", str(tmp_path / "junk.glb"), "--out", "x.html"]
    )
    assert bad.exit_code == 1 and bad.output.strip().startswith("error:")


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
def test_page_draws_the_car_and_turns_the_wheels(page):
    _, html = page
    server = serve(html.parent)
    browser = Chromium(CHROMIUM, width=640, height=400)
    try:
        browser.open(f"http://127.0.0.1:{server.server_address[1]}/{html.name}")
        browser.wait_for(
            "window.assetganViewer && (assetganViewer.ready || !!assetganViewer.error)", 120
        )
        assert browser.evaluate("assetganViewer.error") is None
        assert browser.evaluate("assetganViewer.animations") == ["drive", "steer"]
        browser.evaluate("assetganViewer.orbit(90, 8)")  # the car's left side
        browser.evaluate("assetganViewer.pose('drive', 0.0)")
        first = browser.screenshot()
        browser.evaluate("assetganViewer.pose('drive', 0.1)")  # 36 degrees later
        second = browser.screenshot()
        boxes = browser.evaluate("assetganViewer.wheelBoxes()")
        browser.evaluate("assetganViewer.showCar(false)")
        empty = browser.screenshot()
        browser.evaluate("assetganViewer.showCar(true); assetganViewer.partColours(true)")
        parts = browser.screenshot()
    finally:
        browser.close()
        server.shutdown()
    height, width, _ = first.shape
    centre = (slice(height // 4, 3 * height // 4), slice(width // 4, 3 * width // 4))
    car_pixels = np.abs(first.astype(int) - empty.astype(int)).sum(-1) > 30
    assert car_pixels[centre].mean() > 0.15  # the car covers the middle of the picture
    moved = np.abs(second.astype(int) - first.astype(int)).sum(-1) > 30
    in_wheels = np.zeros_like(moved)
    for box in boxes:
        rows = slice(max(int(box["y0"]) - 2, 0), int(box["y1"]) + 3)
        cols = slice(max(int(box["x0"]) - 2, 0), int(box["x1"]) + 3)
        in_wheels[rows, cols] = True
    assert moved[in_wheels].sum() > 100  # the wheels turned
    assert moved[~in_wheels].sum() == 0  # nothing else moved
    recoloured = np.abs(parts.astype(int) - first.astype(int)).sum(-1) > 30
    assert recoloured[car_pixels].mean() > 0.3  # the part-colour toggle recolours the car
