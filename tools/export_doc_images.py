"""Draw docs/export.md's pictures and print its node tree and validator report.

Usage (repository root, after `npm ci && node tools/bundle_viewer.mjs` and with chromium):
    assetgan world render --split demo --n 4 --size 64 --seed 0 --meshes --out /tmp/exp_world
    OMP_NUM_THREADS=1 .venv/bin/python tools/export_doc_images.py /tmp/exp_world/meshes/000000.glb

Writes docs/img/export_{turntable,animation,stand_in,viewer}.png and prints markdown to paste.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the Chromium driver and the stand-in live with the tests

from export_browser import Chromium, find_chromium, serve  # noqa: E402
from export_fixtures import blob_car  # noqa: E402

from assetgan.core.images import atomic_write_png, contact_sheet  # noqa: E402
from assetgan.inverse_graphics.export.car import AssetExportConfig, run  # noqa: E402
from assetgan.inverse_graphics.export.posing import load_gltf, posed_mesh  # noqa: E402
from assetgan.inverse_graphics.export.sources import load_car  # noqa: E402
from assetgan.inverse_graphics.export.validator import issue_counts, validate_gltf  # noqa: E402
from assetgan.inverse_graphics.export.viewer import ViewerConfig  # noqa: E402
from assetgan.inverse_graphics.export.viewer import run as run_viewer  # noqa: E402
from assetgan.render.camera import orbit_camera  # noqa: E402
from assetgan.render.scene import render_shaded  # noqa: E402
from assetgan.render.shading import to_image  # noqa: E402

IMG = ROOT / "docs" / "img"


def views(mesh, azimuths, elevation, size, distance=10.0, target=(0.0, 0.7, 0.0), fov=30.0):
    """Shaded pictures of `mesh` from each azimuth (degrees)."""
    out = []
    for azimuth in azimuths:
        camera = orbit_camera(
            azimuth, elevation, distance, fov_y_deg=fov, size=(size, size), target=target,
            near=0.5, far=30.0,
        )  # fmt: skip
        rgb, _ = render_shaded(mesh, [camera], flat=False)
        out.append(to_image(rgb[0]))
    return out


def node_tree(path: Path) -> str:
    gltf = load_gltf(path)
    lines = []

    def walk(index: int, depth: int) -> None:
        node = gltf.nodes[index]
        what = []
        if node.mesh is not None:
            mesh = gltf.meshes[node.mesh]
            materials = [gltf.materials[p.material].name for p in mesh.primitives]
            what.append(f"mesh {mesh.name} [{', '.join(materials)}]")
        if node.translation and any(abs(c) > 1e-9 for c in node.translation):
            what.append("t=(" + ", ".join(f"{c:.3f}" for c in node.translation) + ")")
        if node.extensions:
            what.append(", ".join(sorted(node.extensions)))
        lines.append("    " * depth + f"{node.name}" + (f"  ({'; '.join(what)})" if what else ""))
        for child in node.children or []:
            walk(child, depth + 1)

    for root in gltf.scenes[gltf.scene or 0].nodes:
        walk(root, 0)
    return "\n".join(lines)


def main(ground_truth: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="export-docs-"))
    car_glb = work / "car.glb"
    result = run(AssetExportConfig(car=ground_truth, out=car_glb))
    print(result.summary())
    gltf = load_gltf(car_glb)
    truth = load_car(ground_truth).to_mesh()
    truth = truth.with_vertices(truth.vertices - torch_tensor(result.origin))
    azimuths = (30, 90, 150, 210, 270, 330)
    rows = views(truth, azimuths, 15, 200) + views(posed_mesh(gltf), azimuths, 15, 200)
    atomic_write_png(IMG / "export_turntable.png", contact_sheet(rows, columns=len(azimuths)))

    frames = []
    for t in (0.0, 0.0625, 0.125, 0.1875):  # drive: 0, 22.5, 45, 67.5 degrees (close on FL)
        frames += views(posed_mesh(gltf, "drive", t), [90], 0, 200, distance=1.6,
                        target=tuple(result.wheels[0]["centre"]))  # fmt: skip
    for t in (0.0, 0.5, 1.5, 2.0):  # steer: rest, full left, full right, rest (from below)
        frames += views(posed_mesh(gltf, "steer", t), [0], -89, 200, distance=9.0,
                        target=(0.0, 0.3, 0.0))  # fmt: skip
    atomic_write_png(IMG / "export_animation.png", contact_sheet(frames, columns=4))

    stand_in = work / "stand_in"
    blob_car().save(stand_in)
    blob_glb = work / "stand_in.glb"
    blob_result = run(AssetExportConfig(car=stand_in, out=blob_glb))
    print(blob_result.summary())
    before = load_car(stand_in).to_mesh()
    before = before.with_vertices(before.vertices - torch_tensor(blob_result.origin))
    pictures = views(before, (40, 140), 20, 200) + views(
        posed_mesh(load_gltf(blob_glb)), (40, 140), 20, 200
    )
    atomic_write_png(IMG / "export_stand_in.png", contact_sheet(pictures, columns=4))

    page = work / "car.html"
    run_viewer(ViewerConfig(glb=car_glb, out=page))
    server = serve(work)
    browser = Chromium(find_chromium(), width=640, height=400)
    try:  # ?env=on: the reflections a GPU browser shows (slow on SwiftShader, fine here)
        browser.open(f"http://127.0.0.1:{server.server_address[1]}/car.html?env=on")
        browser.wait_for("window.assetganViewer && assetganViewer.ready", 300)
        shots = [browser.screenshot()]
        browser.evaluate("assetganViewer.partColours(true)")
        shots.append(browser.screenshot())
    finally:
        browser.close()
        server.shutdown()
    atomic_write_png(IMG / "export_viewer.png", contact_sheet(shots, columns=2))

    report = validate_gltf(car_glb)
    print("\n## node tree\n" + node_tree(car_glb))
    print(
        "\n## validator\n"
        + json.dumps({**issue_counts(report), "validator": report["validatorVersion"]})
    )
    info = report.get("info", {})
    print(
        json.dumps(
            {
                k: info.get(k)
                for k in (
                    "version",
                    "generator",
                    "extensionsUsed",
                    "animationCount",
                    "materialCount",
                    "totalVertexCount",
                    "totalTriangleCount",
                    "drawCallCount",
                )
            }
        )
    )


def torch_tensor(values):
    import torch

    return torch.tensor(np.asarray(values, dtype=np.float32))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
