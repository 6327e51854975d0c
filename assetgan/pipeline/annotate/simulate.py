"""`annotate simulate`: a simulated LabelMe annotator for when no human is at hand.

A segmenter (a Predictor, predictor.py) labels generator samples; each predicted part map becomes
LabelMe polygons the way a person draws them: one polygon per connected region, fewer vertices
(Douglas-Peucker, `simplify` px), every vertex jittered (Gaussian, `vertex_noise` px), specks
smaller than `min_area` pixels skipped, parts in front drawn last. Keypoints become points
(jittered by `keypoint_noise` px; occluded ones flagged). The files then go through the same
LabelMe import as a human's (importer.py), so what the interpreter learns from has passed the
real import path. docs/annotate.md says what this measures and what it does not.

    <out>/simulated/           the export (export.py) with the simulated LabelMe files
    <out>/annotations.json ... the annotation set imported from them (import.json too)
    <out>/simulate.json        the drawing settings and, per sample, the agreement of the
                               imported labels with the segmenter's own masks
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINTS
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotate import export, labelme
from assetgan.pipeline.annotate.export import AnnotateExportConfig, ExportManifest
from assetgan.pipeline.annotate.importer import ImportConfig, ImportFormat, import_set
from assetgan.pipeline.annotate.predictor import Predictor, load_predictor
from assetgan.pipeline.annotate.raster import RasterRule, mask_to_polygons, simplify_polygon

__all__ = [
    "DrawingSettings",
    "Predictor",
    "SimulateConfig",
    "SimulateResult",
    "load_predictor",
    "run",
]


@dataclass(frozen=True)
class DrawingSettings:
    """How the simulated annotator draws; written as `config` into simulate.json."""

    vertex_noise: float = 0.25  # px, std of the jitter of every polygon vertex (docs/annotate.md)
    simplify: float = 0.5  # px, Douglas-Peucker tolerance (a person clicks fewer vertices)
    min_area: int = 2  # regions with fewer pixels are not drawn (a person skips specks)
    keypoint_noise: float = 0.5  # px, std of the keypoint jitter (keypoints are placed less
    # precisely than edges: there is no boundary to snap to)
    seed: int = 0  # seeds the jitter
    rule: RasterRule = RasterRule.centre  # rasterisation on import (raster.py)

    def validate(self) -> DrawingSettings:
        if min(self.vertex_noise, self.simplify, self.keypoint_noise) < 0 or self.min_area < 0:
            raise AssetganError("noise, simplify and min_area must be >= 0")
        return self


@dataclass(frozen=True)
class SimulateConfig:
    """What `annotate simulate` samples, who labels them, how, and where it writes."""

    generator: Path  # generator checkpoint (.safetensors)
    segmenter: Path  # checkpoint of the segmenter that labels the samples
    out: Path  # the annotation set folder (module docstring)
    seeds: tuple[int, ...]  # one sample per seed, as `annotate export`
    psi: float = 0.7  # truncation psi of the samples
    cutoff: int | None = None  # truncation cutoff (None = all ws)
    predictor: str | None = None  # "module:function" PredictorFactory; None = by checkpoint kind
    drawing: DrawingSettings = field(default_factory=DrawingSettings)  # the annotator's hand
    device: Device = Device.auto  # where the generator and the segmenter run

    def validate(self) -> SimulateConfig:
        self.drawing.validate()
        AnnotateExportConfig(self.generator, self.out, self.seeds, self.psi, self.cutoff).validate()
        return self


@dataclass(frozen=True)
class SimulateResult:
    """What `annotate simulate` wrote."""

    out: Path  # the annotation set folder
    labelme: Path  # the folder of the simulated LabelMe files (out/simulated/images)
    names: tuple[str, ...]  # sample names in the set
    mean_pixel_accuracy: float  # imported labels vs the segmenter's masks, mean over samples
    mean_iou: float  # the same as mean IoU over the classes present
    report: Path  # simulate.json


def draw_like_a_person(
    part_ids: np.ndarray,  # [H, W] uint8 car_20 ids (255 = ignore)
    keypoints_xyv: np.ndarray,  # [12, 3]
    config: DrawingSettings,
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


def run(config: SimulateConfig, progress: Progress | None = None) -> SimulateResult:
    """Export samples, label them with the segmenter, write LabelMe files, import them; the
    report (simulate.json) scores how much the polygon drawing changed the labels."""
    config.validate()
    predictor = load_predictor(
        Path(config.segmenter), resolve_device(config.device), config.predictor
    )
    return label_and_import(config, predictor, progress)


def label_and_import(
    config: SimulateConfig,
    predictor: Predictor,  # the segmenter (config.segmenter and config.predictor are not read)
    progress: Progress | None = None,
) -> SimulateResult:
    """`run` with the predictor already built."""
    config.validate()
    settings = config.drawing
    out = Path(config.out)
    simulated = out / "simulated"
    export.run(
        AnnotateExportConfig(
            config.generator, simulated, config.seeds, config.psi, config.cutoff, config.device
        ),
        progress,
    )
    manifest = ExportManifest.load(simulated)
    images = np.stack([manifest.image(name) for name in manifest.names()])  # [N, H, W, 3]
    emit(progress, 0, 1, task="labeling")
    part_ids, keypoints = predictor(images)
    emit(progress, 1, 1, task="labeling")
    part_ids, keypoints = np.asarray(part_ids), np.asarray(keypoints, dtype=np.float32)
    if part_ids.shape != images.shape[:3] or keypoints.shape != (len(images), len(KEYPOINTS), 3):
        raise AssetganError(
            f"the predictor returned part ids {part_ids.shape} and keypoints {keypoints.shape}; "
            f"expected {images.shape[:3]} and {(len(images), len(KEYPOINTS), 3)}"
        )
    rng = np.random.default_rng(settings.seed)
    height, width = manifest.image_size
    for index, sample in enumerate(manifest.samples):
        shapes = draw_like_a_person(
            part_ids[index].astype(np.uint8), keypoints[index], settings, rng
        )
        document = labelme.skeleton(f"{sample['name']}.png", height, width, shapes)
        atomic_write_json(simulated / sample["labelme"], document)
        emit(progress, index + 1, len(manifest.samples), task="drawing")
    import_config = ImportConfig(
        simulated / "images", out, ImportFormat.labelme, simulated, settings.rule
    )
    annotation_set, _ = import_set(import_config, progress)
    report = {"config": {**asdict(settings), "rule": settings.rule.value}, "samples": []}
    for index, sample in enumerate(annotation_set.samples):
        report["samples"].append(
            {"name": sample.name, **agreement(sample.part_ids, part_ids[index])}
        )
    report["mean_pixel_accuracy"] = float(np.mean([s["pixel_accuracy"] for s in report["samples"]]))
    report["mean_iou"] = float(np.mean([s["mean_iou"] for s in report["samples"]]))
    atomic_write_json(out / "simulate.json", report)
    return SimulateResult(
        out=out,
        labelme=simulated / "images",
        names=tuple(s.name for s in annotation_set.samples),
        mean_pixel_accuracy=report["mean_pixel_accuracy"],
        mean_iou=report["mean_iou"],
        report=out / "simulate.json",
    )


def agreement(labels: np.ndarray, reference: np.ndarray) -> dict:
    """Pixel accuracy and mean IoU over the classes present in either map."""
    classes = np.union1d(np.unique(labels), np.unique(reference))
    ious = []
    for label in classes:
        a, b = labels == label, reference == label
        ious.append((a & b).sum() / max(1, (a | b).sum()))
    return {"pixel_accuracy": float((labels == reference).mean()), "mean_iou": float(np.mean(ious))}
