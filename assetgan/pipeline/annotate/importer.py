"""`annotate import`: LabelMe / COCO / PNG labels of exported samples -> an annotation set.

Every labeled image is paired by file stem with an exported sample (export.py), whose w+ latent,
seed and generator go into the set (assetgan/pipeline/annotations.py, docs/formats.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json, read_json_object
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotate.coco import read_coco
from assetgan.pipeline.annotate.export import ExportManifest
from assetgan.pipeline.annotate.labeled import LabeledImage
from assetgan.pipeline.annotate.labelme import is_annotated, read_labelme
from assetgan.pipeline.annotate.pngmask import read_png_mask
from assetgan.pipeline.annotate.raster import RasterRule
from assetgan.pipeline.annotations import AnnotatedSample, AnnotationSet


class ImportFormat(StrEnum):
    labelme = "labelme"  # a folder of LabelMe JSON files (one per image)
    coco = "coco"  # one COCO json file
    png = "png"  # a folder of PNG label-id masks named like the exported images


@dataclass(frozen=True)
class ImportConfig:
    """What `annotate import` reads and where it writes the annotation set."""

    source: Path  # LabelMe folder, COCO json file, or PNG mask folder
    out: Path  # the annotation set folder (assetgan/pipeline/annotations.py)
    format: ImportFormat = ImportFormat.labelme  # how `source` is written
    export: Path | None = None  # the `annotate export` folder; None = found next to source
    rule: RasterRule = RasterRule.centre  # how LabelMe shapes become pixels (raster.py)
    keep_images: bool = True  # store the annotated images in the set (images/NAME.png)


@dataclass(frozen=True)
class ImportResult:
    """What `annotate import` wrote (out/import.json holds the same)."""

    out: Path  # the annotation set folder
    imported: tuple[str, ...]  # sample names in the set
    skipped: tuple[str, ...]  # files (or COCO images) with no labels, left out
    export: Path  # the export folder the latents came from


def find_export(source: Path) -> Path:
    """The export folder of `source`: itself, or the nearest parent with an export.json."""
    for folder in (source, *source.parents[:2]):
        if (folder / "export.json").is_file():
            return folder
    raise AssetganError(
        f"{source}: no export.json here or in its parent folders; pass --export with the "
        f"folder `annotate export` wrote"
    )


def read_labels(
    config: ImportConfig, manifest: ExportManifest, progress: Progress | None = None
) -> tuple[list[LabeledImage], list[str]]:
    """(labeled images, skipped files) from `config.source` in `config.format`; progress task
    "reading labels", done = files read."""
    source = config.source
    size = manifest.image_size
    if config.format == ImportFormat.coco:
        if not source.is_file():
            raise AssetganError(f"{source}: no such COCO json file")
        items = read_coco(source, size)
        emit(progress, 1, 1, task="reading labels")
        return [i for i in items if i.annotated], [i.source for i in items if not i.annotated]
    if not source.is_dir():
        raise AssetganError(f"{source}: not a folder; --format {config.format} reads a folder")
    if config.format == ImportFormat.png:
        files = sorted(source.glob("*.png"))
        if not files:
            raise AssetganError(f"{source}: no .png masks found")
        items = []
        for index, path in enumerate(files):
            items.append(read_png_mask(path, size))
            emit(progress, index + 1, len(files), task="reading labels")
        return items, []
    if (source / "export.json").is_file() and (source / "images").is_dir():
        source = source / "images"  # the export folder itself: its LabelMe files are in images/
    files = sorted(source.glob("*.json"))
    if not files:
        raise AssetganError(f"{source}: no LabelMe .json files found")
    items, skipped = [], []
    for index, path in enumerate(files):
        emit(progress, index, len(files), task="reading labels")
        document = read_json_object(path)
        if "shapes" not in document or "imagePath" not in document:
            raise AssetganError(
                f"{path}: not a LabelMe file (no shapes / imagePath); point the import at the "
                f"folder holding the LabelMe files only"
            )
        if not is_annotated(document):
            skipped.append(str(path))
            continue
        items.append(read_labelme(path, source, size, config.rule, document))
    emit(progress, len(files), len(files), task="reading labels")
    return items, skipped


def run(config: ImportConfig, progress: Progress | None = None) -> ImportResult:
    """Read the labels, pair them with the exported latents and write the annotation set
    (nothing is written when any label file is wrong)."""
    return import_set(config, progress)[1]


def import_set(
    config: ImportConfig, progress: Progress | None = None
) -> tuple[AnnotationSet, ImportResult]:
    """`run`, also returning the annotation set it wrote (annotate simulate scores it)."""
    export_dir = config.export or find_export(config.source)
    manifest = ExportManifest.load(export_dir)
    items, skipped = read_labels(config, manifest, progress)
    if not items:
        raise AssetganError(
            f"{config.source}: no annotated images found ({len(skipped)} files without labels)"
        )
    seeds = {s["name"]: s["seed"] for s in manifest.samples}
    latents = manifest.latents()
    seen: dict[str, str] = {}
    annotation_set = AnnotationSet.empty("car_20")
    for item in items:
        if item.name not in seeds:
            example = next(iter(seeds))
            raise AssetganError(
                f"{item.source}: image {item.name!r} is not one of the {len(seeds)} exported "
                f"samples in {export_dir} (names look like {example!r})"
            )
        if item.name in seen:
            raise AssetganError(
                f"{item.source}: image {item.name!r} is labeled again (also in {seen[item.name]})"
            )
        seen[item.name] = item.source
        annotation_set.samples.append(
            AnnotatedSample(
                name=item.name,
                generator_path=manifest.generator_path,
                generator_sha256=manifest.generator_sha256,
                seed=int(seeds[item.name]),
                ws=latents[item.name],
                part_ids=item.part_ids,
                keypoints_xyv=item.keypoints_xyv,
                source="generator",
                image=manifest.image(item.name) if config.keep_images else None,
                meta={
                    "labels": item.source,
                    "format": config.format.value,
                    "psi": manifest.psi,
                    "cutoff": manifest.cutoff,
                },
            )
        )
    out = Path(config.out)
    annotation_set.save(out)
    atomic_write_json(
        out / "import.json",
        {
            "source": str(config.source),
            "format": config.format.value,
            "export": str(export_dir),
            "rule": config.rule.value,
            "imported": [i.name for i in items],
            "skipped": skipped,
        },
    )
    result = ImportResult(out, tuple(i.name for i in items), tuple(skipped), Path(export_dir))
    return annotation_set, result
