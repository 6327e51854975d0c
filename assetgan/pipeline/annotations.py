"""The annotation set: the labeled generator samples the Style Interpreter learns from.

Written by `assetgan annotate import|invert`, read by `assetgan interpreter train|eval`. Layout of
a set directory (docs/formats.md, "Annotation set"):

    <set>/annotations.json      schema_version, taxonomy, keypoint names, one entry per sample
    <set>/latents.safetensors   one float32 tensor [num_ws, w_dim] per sample, keyed by its name
    <set>/masks/NAME.png        part ids, uint8 "L" PNG [H, W]; 255 = ignore (unlabeled)
    <set>/images/NAME.png       (optional) the RGB image that was annotated, uint8 [H, W, 3]

Keypoints are [K, 3] float32 rows (x, y, v) in image pixel coordinates (x right, y down, origin
at the top-left corner of the top-left pixel; docs/conventions.md) with COCO visibility
v: 0 = not labeled, 1 = labeled but occluded, 2 = visible. Rows with v = 0 have x = y = 0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file

from assetgan.assets.taxonomy import IGNORE_ID
from assetgan.core.checkpoint import save_tensors
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write, atomic_write_json

SCHEMA_VERSION = 1
SOURCES = ("generator", "inverted")  # how a sample's latent was obtained
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class AnnotatedSample:
    """One annotated generator sample: its latent, part-id mask and keypoints."""

    name: str  # unique id, letters/digits/-/_; file stem under masks/ and images/
    generator_path: str  # generator checkpoint the latent belongs to (as given by the user)
    generator_sha256: str  # SHA-256 of that checkpoint file (file_sha256)
    seed: int | None  # sampling seed; None for latents found by inversion
    ws: np.ndarray  # [num_ws, w_dim] float32 w+ latent (truncation already applied)
    part_ids: np.ndarray  # [H, W] uint8 taxonomy ids, IGNORE_ID = unlabeled
    keypoints_xyv: np.ndarray  # [K, 3] float32 (x, y, v), pixel coords, row 0 at top
    source: str = "generator"  # "generator" (sampled) or "inverted" (HandsOff, real image)
    image: np.ndarray | None = None  # [H, W, 3] uint8 image that was annotated, optional
    meta: dict[str, Any] = field(default_factory=dict)  # JSON extras (psi, inversion error, ...)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the mask and image."""
        return (int(self.part_ids.shape[0]), int(self.part_ids.shape[1]))

    def validate(self, num_classes: int, num_keypoints: int, where: str) -> None:
        """Raise AssetganError naming the field when a sample is malformed."""
        if not _NAME.match(self.name):
            raise AssetganError(
                f"{where}: sample name {self.name!r} must be 1-64 letters, digits, - or _"
            )
        if self.source not in SOURCES:
            raise AssetganError(f"{where}: source must be one of {SOURCES}, got {self.source!r}")
        ws = np.asarray(self.ws)
        if ws.ndim != 2 or ws.dtype != np.float32 or not np.isfinite(ws).all():
            raise AssetganError(
                f"{where}: ws must be finite float32 [num_ws, w_dim], got {ws.dtype} {ws.shape}"
            )
        mask = np.asarray(self.part_ids)
        if mask.ndim != 2 or mask.dtype != np.uint8:
            raise AssetganError(
                f"{where}: part_ids must be uint8 [H, W], got {mask.dtype} {mask.shape}"
            )
        bad = (mask >= num_classes) & (mask != IGNORE_ID)
        if bad.any():
            raise AssetganError(
                f"{where}: part id {int(mask[bad][0])} is outside 0..{num_classes - 1} "
                f"(and not the ignore id {IGNORE_ID})"
            )
        kp = np.asarray(self.keypoints_xyv)
        if kp.shape != (num_keypoints, 3) or kp.dtype != np.float32:
            raise AssetganError(
                f"{where}: keypoints_xyv must be float32 [{num_keypoints}, 3], "
                f"got {kp.dtype} {kp.shape}"
            )
        if not np.isin(kp[:, 2], (0, 1, 2)).all():
            raise AssetganError(f"{where}: keypoint visibility must be 0, 1 or 2")
        height, width = mask.shape
        labeled = kp[:, 2] > 0
        xs, ys = kp[labeled, 0], kp[labeled, 1]
        if ((xs < 0) | (xs > width) | (ys < 0) | (ys > height)).any():
            raise AssetganError(
                f"{where}: a labeled keypoint lies outside the {width}x{height} image"
            )
        if self.image is not None:
            image = np.asarray(self.image)
            if image.shape != (height, width, 3) or image.dtype != np.uint8:
                raise AssetganError(
                    f"{where}: image must be uint8 [{height}, {width}, 3], got {image.dtype} {image.shape}"
                )


@dataclass
class AnnotationSet:
    """A list of annotated samples sharing one taxonomy and keypoint list."""

    taxonomy: str = "car_20"  # part taxonomy name (assets/taxonomy.py TAXONOMIES)
    class_names: tuple[str, ...] = ()  # part names in id order (index = id in masks)
    keypoint_names: tuple[str, ...] = ()  # keypoint names in row order of keypoints_xyv
    samples: list[AnnotatedSample] = field(default_factory=list)  # the annotated samples

    @classmethod
    def empty(cls, taxonomy: str = "car_20") -> AnnotationSet:
        """A set with the project taxonomy's class and keypoint names filled in."""
        from assetgan.assets.taxonomy import KEYPOINTS, TAXONOMIES

        if taxonomy not in TAXONOMIES:
            raise AssetganError(
                f"unknown taxonomy {taxonomy!r}; choose one of {sorted(TAXONOMIES)}"
            )
        return cls(taxonomy, tuple(TAXONOMIES[taxonomy]), tuple(KEYPOINTS), [])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoint_names)

    def validate(self, where: str = "annotation set") -> AnnotationSet:
        """Check every sample and that names are unique and latents/sizes agree."""
        if not self.class_names:
            raise AssetganError(f"{where}: class_names is empty")
        names = [s.name for s in self.samples]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise AssetganError(f"{where}: duplicate sample names {duplicates[:5]}")
        for idx, sample in enumerate(self.samples):
            sample.validate(
                self.num_classes, self.num_keypoints, f"{where}: sample {idx} ({sample.name})"
            )
        if self.samples:
            first = self.samples[0]
            for sample in self.samples[1:]:
                if sample.ws.shape != first.ws.shape or sample.image_size != first.image_size:
                    raise AssetganError(
                        f"{where}: sample {sample.name} has ws {list(sample.ws.shape)} and size "
                        f"{list(sample.image_size)}, but {first.name} has ws "
                        f"{list(first.ws.shape)} and size {list(first.image_size)}"
                    )
        return self

    def save(self, root: str | Path) -> Path:
        """Write the set to directory `root` (created; files written atomically)."""
        root = Path(root)
        self.validate(str(root))
        (root / "masks").mkdir(parents=True, exist_ok=True)
        entries = []
        for sample in self.samples:
            _write_png(root / "masks" / f"{sample.name}.png", sample.part_ids, "L")
            if sample.image is not None:
                _write_png(root / "images" / f"{sample.name}.png", sample.image, "RGB")
            entries.append(
                {
                    "name": sample.name,
                    "generator": {"path": sample.generator_path, "sha256": sample.generator_sha256},
                    "seed": sample.seed,
                    "source": sample.source,
                    "image_size": list(sample.image_size),
                    "ws_shape": list(sample.ws.shape),
                    "mask": f"masks/{sample.name}.png",
                    "image": None if sample.image is None else f"images/{sample.name}.png",
                    "keypoints_xyv": np.asarray(sample.keypoints_xyv, np.float32).tolist(),
                    "meta": sample.meta,
                }
            )
        latents = {s.name: torch.from_numpy(np.ascontiguousarray(s.ws)) for s in self.samples}
        save_tensors(root / "latents.safetensors", latents)
        document = {
            "kind": "assetgan_annotation_set",
            "schema_version": SCHEMA_VERSION,
            "taxonomy": self.taxonomy,
            "class_names": list(self.class_names),
            "keypoint_names": list(self.keypoint_names),
            "ignore_id": IGNORE_ID,
            "samples": entries,
        }
        atomic_write_json(root / "annotations.json", document)
        return root

    @classmethod
    def load(cls, root: str | Path) -> AnnotationSet:
        """Read a set written by `save`; AssetganError names the file and field on problems."""
        root = Path(root)
        doc_path = root / "annotations.json"
        if not doc_path.is_file():
            raise AssetganError(f"{root}: not an annotation set (no annotations.json)")
        try:
            document = json.loads(doc_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise AssetganError(f"{doc_path}: not valid JSON ({error})") from None
        if document.get("kind") != "assetgan_annotation_set":
            raise AssetganError(f"{doc_path}: kind must be 'assetgan_annotation_set'")
        if document.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(
                f"{doc_path}: schema_version {document.get('schema_version')!r} is not supported "
                f"(this assetgan reads {SCHEMA_VERSION})"
            )
        latents_path = root / "latents.safetensors"
        try:
            latents = load_file(str(latents_path))
        except (SafetensorError, OSError, ValueError) as error:
            raise AssetganError(f"{latents_path}: cannot read latents ({error})") from None
        samples = []
        try:
            for idx, entry in enumerate(document["samples"]):
                where = f"{doc_path}: samples[{idx}]"
                name = str(entry["name"])
                if not _NAME.match(name):
                    raise AssetganError(f"{where}: bad sample name {name!r}")
                if name not in latents:
                    raise AssetganError(f"{latents_path}: no latent for sample {name!r}")
                image = None
                if entry.get("image"):
                    image = _read_png(root / "images" / f"{name}.png", "RGB")
                samples.append(
                    AnnotatedSample(
                        name=name,
                        generator_path=str(entry["generator"]["path"]),
                        generator_sha256=str(entry["generator"]["sha256"]),
                        seed=None if entry["seed"] is None else int(entry["seed"]),
                        ws=latents[name].to(torch.float32).numpy(),
                        part_ids=_read_png(root / "masks" / f"{name}.png", "L"),
                        keypoints_xyv=np.asarray(entry["keypoints_xyv"], np.float32).reshape(-1, 3),
                        source=str(entry.get("source", "generator")),
                        image=image,
                        meta=dict(entry.get("meta") or {}),
                    )
                )
            result = cls(
                taxonomy=str(document["taxonomy"]),
                class_names=tuple(document["class_names"]),
                keypoint_names=tuple(document["keypoint_names"]),
                samples=samples,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(f"{doc_path}: missing or malformed field ({error!r})") from None
        return result.validate(str(root))

    def generator_hashes(self) -> set[str]:
        """The SHA-256s of every generator the samples' latents belong to."""
        return {s.generator_sha256 for s in self.samples}


def _write_png(path: Path, array: np.ndarray, mode: str) -> None:
    picture = Image.fromarray(np.ascontiguousarray(array))  # uint8 [H, W] -> L, [H, W, 3] -> RGB
    if picture.mode != mode:
        raise AssetganError(f"{path}: array gives PNG mode {picture.mode}, expected {mode}")
    atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


def _read_png(path: Path, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as picture:
            if picture.mode != mode:
                raise AssetganError(f"{path}: PNG mode is {picture.mode}, expected {mode}")
            return np.asarray(picture, dtype=np.uint8).copy()
    except (OSError, ValueError) as error:
        raise AssetganError(f"{path}: cannot read PNG ({error})") from None
