"""The demo's 3D steps (steps.DemoSteps runs each in OUT/steps/<step>/): reconstructions of test
cars of the world split, scored in their input view against the split's ground truth, then
rigged GLBs of them and of ground-truth CarWorld cars, each with its three.js viewer page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from assetgan.assets.taxonomy import IGNORE_ID
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.images import atomic_write_png, contact_sheet
from assetgan.core.progress import Progress, emit
from assetgan.demo.config import DemoConfig
from assetgan.demo.steps import DemoSteps, read_png

TURNTABLE_VIEWS = 4  # views of the exported car's grey turntable in the report
TURNTABLE_SIZE = 128  # its tile side (px)


def car_names(count: int) -> list[str]:
    """Names (stems) of the first `count` images of the world split (ids 0 .. count-1)."""
    return [f"{index:06d}" for index in range(count)]


# ---- 6. reconstructions -------------------------------------------------------------------


def reconstruct(steps: DemoSteps, config: DemoConfig, split: Path) -> Path | None:
    """`reconstruct image` on the first test cars of the split, scored in the input view (its
    PnP camera) against the split's labels; None (and a line in `steps.missing`) without a
    network file."""
    from assetgan.inverse_graphics.reconstruct import image as reconstruct_image

    model = Path(config.reconstructor)
    count = config.sizes.reconstructions
    if count == 0:
        return None
    if not model.is_file():
        reason = (
            f"reconstruct: no reconstruction network at {model} (none is shipped yet); train "
            "one with `assetgan reconstruct train` and pass --reconstructor RUN/model.safetensors"
            "; the reconstructions and their exports are left out"
        )
        steps.missing.append(reason)
        emit(steps.progress, 0, steps.total, task="reconstruct", message=reason)
        return None
    names = car_names(count)

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        result = reconstruct_image.run(
            reconstruct_image.ReconstructImageConfig(
                images=tuple(split / "images" / f"{name}.png" for name in names),
                out=folder / "cars",
                model=model,
                segmenter=Path(config.segmenter),
                device=config.device,
            ),
            progress,
        )
        figures = input_view_scores(split, result.cars)
        write_reconstruction_sheet(folder / "sheet.png", split, result.cars)
        sources = [read_camera_source(car) for car in result.cars]
        return {"cars": names, "camera_sources": sources, **figures}

    settings = {
        "world": steps.digest("world"),
        "model": file_sha256(model),
        "segmenter": file_sha256(config.segmenter),
        "cars": names,
    }
    return steps.run("reconstruct", settings, body) / "cars"


def read_camera_source(car: Path) -> str:
    return json.loads((car / "keypoints.json").read_text(encoding="utf-8"))["camera"]["source"]


def input_view_scores(split: Path, cars: tuple[Path, ...]) -> dict[str, Any]:
    """Silhouette IoU, part mIoU (car_20 / 12 / 5) and PCK@0.1 of the reconstructions rendered
    in their own (PnP) input camera against the split's labels (reconstruct.evaluate.ViewScores,
    the figures of docs/reconstruct.md)."""
    from assetgan.inverse_graphics.reconstruct.evaluate import ViewScores
    from assetgan.pipeline.downstream.data import load_labeled

    truth = load_labeled(split, limit=len(cars))
    predicted_parts = np.stack([read_png(car / "parts.png") for car in cars])  # [N, H, W]
    predicted_xy = np.stack(
        [
            np.asarray(json.loads((car / "keypoints.json").read_text("utf-8"))["xyv"])[:, :2]
            for car in cars
        ]
    )  # [N, 12, 2] pixels
    masks = (truth.part_ids > 0) & (truth.part_ids != IGNORE_ID)
    scores = ViewScores()
    scores.add(
        predicted_parts > 0,
        masks,
        predicted_parts,
        truth.part_ids,
        predicted_xy,
        truth.keypoints_xyv,
    )
    return scores.figures()


def write_reconstruction_sheet(path: Path, split: Path, cars: tuple[Path, ...]) -> None:
    """Columns per car: input image over its reconstruction's part colours in the input view."""
    inputs = [
        np.asarray(Image.open(split / "images" / f"{c.name}.png").convert("RGB")) for c in cars
    ]
    parts = [np.asarray(Image.open(c / "parts_colour.png").convert("RGB")) for c in cars]
    atomic_write_png(path, contact_sheet(inputs + parts, len(cars)))


# ---- 7. rigged exports and their viewer pages -----------------------------------------------


def export(steps: DemoSteps, config: DemoConfig, split: Path, cars: Path | None) -> Path:
    """Rigged GLB + three.js viewer page + grey turntable of each reconstruction and of the
    first ground-truth CarWorld cars (meshes/ID.glb). A car the exporter refuses (e.g. wheels it
    cannot fit) is listed with the reason, and its unrigged part mesh gets the viewer instead."""
    sources: dict[str, Path] = {}
    if cars is not None:
        for name in car_names(config.sizes.reconstructions):
            sources[f"recon_{name}"] = cars / name
    for name in car_names(config.sizes.ground_truth_exports):
        sources[f"truth_{name}"] = split / "meshes" / f"{name}.glb"

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        exported, refused = [], []
        for index, (name, source) in enumerate(sources.items()):
            emit(progress, index, len(sources), task=name)
            try:
                exported.append(export_one(name, source, folder))
            except AssetganError as error:
                message = str(error).replace(str(folder), str(steps.runner.path("export")))
                unrigged = source / "mesh.glb" if source.is_dir() else source
                shown = view_one(f"{name}_unrigged", unrigged, folder)
                refused.append({"name": name, "error": message, **shown})
        emit(progress, len(sources), len(sources), task="cars")
        return {"exported": exported, "refused": refused, "asked": len(sources)}

    settings = {
        "version": 2,  # 2: refused cars get an unrigged viewer
        "world": steps.digest("world"),
        "reconstruct": steps.digest("reconstruct") if cars is not None else None,
        "cars": list(sources),
    }
    return steps.run("export", settings, body)


def export_one(name: str, source: Path, folder: Path) -> dict[str, Any]:
    """NAME.glb, NAME.html (viewer) and NAME.png (turntable of the GLB) in `folder`."""
    from assetgan.inverse_graphics.export import car as export_car

    glb = folder / f"{name}.glb"
    result = export_car.run(export_car.AssetExportConfig(car=source, out=glb))
    return {
        "name": name,
        "glb": glb.name,
        **view_one(name, glb, folder),
        "vertices": result.vertices,
        "faces": result.faces,
        "length_m": result.length_m,
        "wheel_radii_m": [round(float(w["radius"]), 3) for w in result.wheels],
        "animations": list(result.animations),
    }


def view_one(name: str, glb: Path, folder: Path) -> dict[str, str]:
    """NAME.html (three.js viewer page of `glb`) and NAME.png (its grey turntable) in `folder`."""
    from assetgan.inverse_graphics.export import viewer as export_viewer
    from assetgan.render.mesh import load_mesh
    from assetgan.render.scene import turntable_sheet

    page = export_viewer.run(
        export_viewer.ViewerConfig(glb=glb, out=folder / f"{name}.html", title=name)
    )
    sheet = turntable_sheet(
        load_mesh(glb), views=TURNTABLE_VIEWS, size=TURNTABLE_SIZE, columns=TURNTABLE_VIEWS
    )
    atomic_write_png(folder / f"{name}.png", sheet)
    return {"viewer": Path(page.out).name, "turntable": f"{name}.png"}
