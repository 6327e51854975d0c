"""`annotate simulate`: a simulated LabelMe annotator for when no human is at hand.

A segmenter (a predictor callable) labels generator samples; each predicted part map becomes
LabelMe polygons the way a person draws them: one polygon per connected region, fewer vertices
(Douglas-Peucker, `simplify` px), every vertex jittered (Gaussian, `vertex_noise` px), specks
smaller than `min_area` pixels skipped, parts in front drawn last. Keypoints become points
(jittered by `keypoint_noise` px; occluded ones flagged). The files then go through the same
LabelMe import as a human's (importer.py), so what the interpreter learns from has passed the
real import path. docs/annotate.md says what this measures and what it does not.

The segmenter is pluggable: a factory `(checkpoint path, device) -> Predictor`, named on the
command line as `module:function` or found from the checkpoint's `assetgan_kind` in PREDICTORS.
`assetgan segment train` makes such a checkpoint (kind `downstream_segmenter`, docs/segment.md);
assetgan/assets/segmenter64/ holds one trained on CarWorld.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINTS
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json
from assetgan.pipeline.annotate import export, labelme
from assetgan.pipeline.annotate.export import AnnotateExportConfig, ExportManifest
from assetgan.pipeline.annotate.importer import ImportConfig, ImportFormat, import_set
from assetgan.pipeline.annotate.raster import RasterRule, mask_to_polygons, simplify_polygon
from assetgan.pipeline.annotations import AnnotationSet

# images [N, H, W, 3] uint8 -> (part ids [N, H, W] uint8 car_20, keypoints [N, 12, 3] (x, y, v))
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
PredictorFactory = Callable[[Path, str], Predictor]  # (checkpoint, device) -> predictor
# checkpoint `assetgan_kind` -> "module:function" of its PredictorFactory
PREDICTORS: dict[str, str] = {
    "downstream_segmenter": "assetgan.pipeline.downstream.predict:predictor_factory",
}


@dataclass(frozen=True)
class SimulateConfig:
    """How the simulated annotator draws."""

    vertex_noise: float = 0.25  # px, std of the jitter of every polygon vertex (docs/annotate.md)
    simplify: float = 0.5  # px, Douglas-Peucker tolerance (a person clicks fewer vertices)
    min_area: int = 2  # regions with fewer pixels are not drawn (a person skips specks)
    keypoint_noise: float = 0.5  # px, std of the keypoint jitter (keypoints are placed less
    # precisely than edges: there is no boundary to snap to)
    seed: int = 0  # seeds the jitter
    rule: RasterRule = RasterRule.centre  # rasterisation on import (raster.py)

    def validate(self) -> SimulateConfig:
        if min(self.vertex_noise, self.simplify, self.keypoint_noise) < 0 or self.min_area < 0:
            raise AssetganError("noise, simplify and min_area must be >= 0")
        return self


def load_factory(spec: str) -> PredictorFactory:
    """`package.module:function` -> the function (AssetganError if it cannot be imported)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AssetganError(f"--predictor {spec!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise AssetganError(
            f"--predictor {spec!r}: cannot import {module_name} ({error})"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise AssetganError(f"--predictor {spec!r}: {module_name} has no function {attribute}")
    return factory


def load_predictor(checkpoint: Path, device: str, spec: str | None = None) -> Predictor:
    """The predictor of a segmenter checkpoint, by `spec` or by the checkpoint's kind."""
    if not checkpoint.is_file():
        raise AssetganError(f"{checkpoint}: no such segmenter checkpoint")
    if spec is None:
        kind = _checkpoint_kind(checkpoint)
        if kind not in PREDICTORS:
            raise AssetganError(
                f"{checkpoint}: no predictor is registered for checkpoint kind {kind!r}; use a "
                f"checkpoint from `assetgan segment train` or pass "
                f"--predictor package.module:function"
            )
        spec = PREDICTORS[kind]
    return load_factory(spec)(checkpoint, device)


def _checkpoint_kind(path: Path) -> str | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("assetgan_kind")
    except (SafetensorError, OSError, ValueError):
        return None


def draw_like_a_person(
    part_ids: np.ndarray,  # [H, W] uint8 car_20 ids (255 = ignore)
    keypoints_xyv: np.ndarray,  # [12, 3]
    config: SimulateConfig,
    rng: np.random.Generator,
) -> list[dict]:
    """LabelMe shapes for one predicted label map, in draw order (module docstring)."""
    height, width = part_ids.shape
    shapes = []
    drawn_foreground = False
    for label, polygon in mask_to_polygons(part_ids):
        if label == 0 and not drawn_foreground:
            continue  # background under everything is the canvas; only holes need drawing
        area = _pixel_area(polygon)
        if area < config.min_area:
            continue
        points = simplify_polygon(polygon, config.simplify)
        if config.vertex_noise > 0:
            points = points + rng.normal(0.0, config.vertex_noise, points.shape)
        points = np.clip(points, 0, [width, height])
        name = "__ignore__" if label == IGNORE_ID else CAR_20[label]
        shapes.append(labelme.polygon_shape(name, points))
        drawn_foreground = drawn_foreground or label != 0
    for index, (x, y, visibility) in enumerate(np.asarray(keypoints_xyv, dtype=np.float64)):
        if visibility <= 0:
            continue
        jitter = rng.normal(0.0, config.keypoint_noise, 2) if config.keypoint_noise > 0 else 0
        x, y = np.clip(np.array([x, y]) + jitter, 0, [width, height])
        shapes.append(labelme.point_shape(KEYPOINTS[index], x, y, occluded=visibility == 1))
    return shapes


def _pixel_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(0.5 * (x * np.roll(y, -1) - np.roll(x, -1) * y).sum()))


def run_simulate(
    export_config: AnnotateExportConfig,  # which samples to label (its `out` is ignored)
    predictor: Predictor,  # the segmenter
    out: str | Path,  # annotation set folder; the LabelMe files go to out/simulated/
    config: SimulateConfig = SimulateConfig(),
) -> tuple[AnnotationSet, dict]:
    """Export samples, label them with `predictor`, write LabelMe files, import them.

    Returns the annotation set and a report: per sample the agreement (pixel accuracy and mean
    IoU over the classes present) of the imported labels with the predictor's own masks, i.e.
    how much the polygon drawing changed the labels."""
    config.validate()
    out = Path(out)
    export.run(dataclasses.replace(export_config, out=out / "simulated"))
    manifest = ExportManifest.load(out / "simulated")
    images = np.stack([manifest.image(name) for name in manifest.names()])  # [N, H, W, 3]
    part_ids, keypoints = predictor(images)
    part_ids, keypoints = np.asarray(part_ids), np.asarray(keypoints, dtype=np.float32)
    if part_ids.shape != images.shape[:3] or keypoints.shape != (len(images), len(KEYPOINTS), 3):
        raise AssetganError(
            f"the predictor returned part ids {part_ids.shape} and keypoints {keypoints.shape}; "
            f"expected {images.shape[:3]} and {(len(images), len(KEYPOINTS), 3)}"
        )
    rng = np.random.default_rng(config.seed)
    for index, sample in enumerate(manifest.samples):
        shapes = draw_like_a_person(part_ids[index].astype(np.uint8), keypoints[index], config, rng)
        height, width = manifest.image_size
        document = labelme.skeleton(f"{sample['name']}.png", height, width, shapes)
        atomic_write_json(out / "simulated" / sample["labelme"], document)
    import_config = ImportConfig(
        out / "simulated" / "images", out, ImportFormat.labelme, out / "simulated", config.rule
    )
    annotation_set, _ = import_set(import_config)
    report = {"config": {**asdict(config), "rule": config.rule.value}, "samples": []}
    for index, sample in enumerate(annotation_set.samples):
        report["samples"].append(
            {"name": sample.name, **agreement(sample.part_ids, part_ids[index])}
        )
    report["mean_pixel_accuracy"] = float(np.mean([s["pixel_accuracy"] for s in report["samples"]]))
    report["mean_iou"] = float(np.mean([s["mean_iou"] for s in report["samples"]]))
    atomic_write_json(out / "simulate.json", report)
    return annotation_set, report


def agreement(labels: np.ndarray, reference: np.ndarray) -> dict:
    """Pixel accuracy and mean IoU over the classes present in either map."""
    classes = np.union1d(np.unique(labels), np.unique(reference))
    ious = []
    for label in classes:
        a, b = labels == label, reference == label
        ious.append((a & b).sum() / max(1, (a | b).sum()))
    return {"pixel_accuracy": float((labels == reference).mean()), "mean_iou": float(np.mean(ious))}
