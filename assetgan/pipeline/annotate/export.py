"""`annotate export`: generator samples for a human annotator, and the export directory format.

    <dir>/export.json          ExportManifest: generator (path, sha256), psi, cutoff, samples
    <dir>/latents.safetensors  one float32 [num_ws, w_dim] w+ per sample (truncation applied)
    <dir>/images/NAME.png      the sample, RGB uint8, NAME = seed{seed:06d}
    <dir>/images/NAME.json     LabelMe skeleton (shapes = [], imagePath = NAME.png)
    <dir>/labels.txt           the allowed label names (labelme --labels labels.txt)
    <dir>/README.md            how to annotate and import
    <dir>/config.json          the AnnotateExportConfig, device resolved (to_dict)

`G.synthesis(ws[None], noise_mode="const")` reproduces each PNG, so the import pairs the labels
with the latent that made the annotated pixels (docs/annotate.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file

from assetgan.core.checkpoint import save_tensors
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_json, atomic_write_text, read_json_object
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotate import labelme
from assetgan.pipeline.annotate.labels import labels_txt
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import synthesize_uint8, ws_from_seeds

SCHEMA_VERSION = 1
KIND = "assetgan_annotation_export"
BATCH = 16  # samples per generator forward


def sample_name(seed: int) -> str:
    """File stem of the sample drawn from `seed`."""
    return f"seed{seed:06d}"


@dataclass(frozen=True)
class AnnotateExportConfig:
    """What `annotate export` samples and where it writes them."""

    generator: Path  # generator checkpoint (.safetensors)
    out: Path  # the export directory (module docstring)
    seeds: tuple[int, ...]  # one sample per seed (docs/stylegan.md "Sampling")
    psi: float = 0.7  # truncation psi (DatasetGAN samples cars at 0.7)
    cutoff: int | None = None  # truncate ws[:, :cutoff] only; None = every layer
    device: Device = Device.auto  # where the generator runs

    def validate(self) -> AnnotateExportConfig:
        if not self.seeds:
            raise AssetganError("export: no seeds to sample; use --n 1 or more")
        if len(set(self.seeds)) != len(self.seeds):
            raise AssetganError("export: seeds repeat; every sample needs its own seed")
        if not 0.0 <= self.psi <= 1.0:
            raise AssetganError(f"--psi must be in [0, 1], got {self.psi}")
        if self.cutoff is not None and self.cutoff < 1:
            raise AssetganError(f"--cutoff must be at least 1, got {self.cutoff}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (config.json of the export directory)."""
        data = dataclasses.asdict(self)
        data.update(generator=str(self.generator), out=str(self.out), seeds=list(self.seeds))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnnotateExportConfig:
        try:
            return cls(
                generator=Path(data["generator"]),
                out=Path(data["out"]),
                seeds=tuple(int(s) for s in data["seeds"]),
                psi=float(data["psi"]),
                cutoff=None if data["cutoff"] is None else int(data["cutoff"]),
                device=Device(data["device"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(f"export config: missing or malformed field ({error!r})") from None


@dataclass(frozen=True)
class AnnotateExportResult:
    """What `annotate export` wrote."""

    out: Path  # the export directory
    names: tuple[str, ...]  # sample names (file stems), in export order
    seeds: tuple[int, ...]  # their seeds
    image_size: tuple[int, int]  # (H, W) of every exported image

    @property
    def labelme_command(self) -> str:
        """The LabelMe command line that opens the samples for annotation."""
        return (
            f"labelme {self.out / 'images'} --labels {self.out / 'labels.txt'} --nodata --autosave"
        )


@dataclass
class ExportManifest:
    """export.json: which generator, truncation and seeds made the exported samples."""

    root: Path  # the export directory
    generator_path: str  # generator checkpoint as given by the user
    generator_sha256: str  # SHA-256 of its bytes
    psi: float  # truncation psi
    cutoff: int | None  # truncation cutoff (None = all ws)
    image_size: tuple[int, int]  # (H, W) of every exported image
    samples: list[dict[str, Any]]  # {name, seed, image, labelme}, in export order
    selection: dict[str, Any] = field(default_factory=dict)  # `annotate select` details

    def names(self) -> list[str]:
        return [s["name"] for s in self.samples]

    def latents(self) -> dict[str, np.ndarray]:
        """name -> [num_ws, w_dim] float32."""
        path = self.root / "latents.safetensors"
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise AssetganError(f"{path}: cannot read exported latents ({error})") from None
        missing = [n for n in self.names() if n not in tensors]
        if missing:
            raise AssetganError(f"{path}: no latent for samples {missing[:5]}")
        return {n: tensors[n].to(torch.float32).numpy() for n in self.names()}

    def image(self, name: str) -> np.ndarray:
        """[H, W, 3] uint8 exported image."""
        path = self.root / "images" / f"{name}.png"
        try:
            with Image.open(path) as picture:
                return np.asarray(picture.convert("RGB"))
        except (OSError, ValueError) as error:
            raise AssetganError(
                f"{path}: the exported image is missing or unreadable ({error}); the export "
                "folder must keep its images/ as `annotate export` wrote them"
            ) from None

    def save(self) -> Path:
        document = {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "generator": {"path": self.generator_path, "sha256": self.generator_sha256},
            "psi": self.psi,
            "cutoff": self.cutoff,
            "image_size": list(self.image_size),
            "samples": self.samples,
            "selection": self.selection,
        }
        return atomic_write_json(self.root / "export.json", document)

    @classmethod
    def load(cls, root: str | Path) -> ExportManifest:
        root = Path(root)
        path = root / "export.json"
        if not path.is_file():
            raise AssetganError(
                f"{root}: not an annotation export (no export.json); pass the folder "
                f"`annotate export` wrote with --export"
            )
        document = read_json_object(path)
        if document.get("kind") != KIND or document.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(
                f"{path}: not an assetgan export of schema_version {SCHEMA_VERSION} "
                f"(kind {document.get('kind')!r}, schema_version {document.get('schema_version')!r})"
            )
        try:
            return cls(
                root=root,
                generator_path=str(document["generator"]["path"]),
                generator_sha256=str(document["generator"]["sha256"]),
                psi=float(document["psi"]),
                cutoff=document["cutoff"],
                image_size=(int(document["image_size"][0]), int(document["image_size"][1])),
                samples=list(document["samples"]),
                selection=dict(document.get("selection") or {}),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise AssetganError(f"{path}: missing or malformed field ({error!r})") from None


def run(config: AnnotateExportConfig, progress: Progress | None = None) -> AnnotateExportResult:
    """Sample one image per seed and write the export directory (module docstring)."""
    config.validate()
    device = resolve_device(config.device)
    emit(progress, 0, len(config.seeds), task="loading generator")
    generator = load_generator(config.generator, device)
    return write_export(config, generator, device, progress=progress)


def write_export(
    config: AnnotateExportConfig,
    generator: Generator,  # `config.generator`, loaded on `device`
    device: str,  # the resolved torch device (recorded in config.json)
    selection: dict[str, Any] | None = None,  # recorded in export.json (annotate select)
    progress: Progress | None = None,  # task "sampling", done = samples written
) -> AnnotateExportResult:
    """`run` with the generator already loaded (`annotate select` has it in hand)."""
    config.validate()
    out = Path(config.out)
    seeds = list(config.seeds)
    ws = ws_from_seeds(generator, seeds, config.psi, config.cutoff)  # [N, num_ws, w_dim]
    images_dir = out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    samples, latents = [], {}
    for start in range(0, len(seeds), BATCH):
        pictures = synthesize_uint8(generator, ws[start : start + BATCH])  # [b, H, W, 3]
        for offset, picture in enumerate(pictures):
            seed = seeds[start + offset]
            name = sample_name(seed)
            atomic_write_png(images_dir / f"{name}.png", picture)
            height, width = picture.shape[:2]
            atomic_write_json(
                images_dir / f"{name}.json", labelme.skeleton(f"{name}.png", height, width)
            )
            latents[name] = ws[start + offset].detach().cpu().float().contiguous()
            samples.append(
                {
                    "name": name,
                    "seed": seed,
                    "image": f"images/{name}.png",
                    "labelme": f"images/{name}.json",
                }
            )
        emit(progress, min(start + BATCH, len(seeds)), len(seeds), task="sampling")
    save_tensors(out / "latents.safetensors", latents)
    atomic_write_text(out / "labels.txt", labels_txt())
    atomic_write_text(out / "README.md", _readme(out))
    image_size = (int(pictures.shape[1]), int(pictures.shape[2]))
    manifest = ExportManifest(
        root=out,
        generator_path=str(config.generator),
        generator_sha256=file_sha256(config.generator),
        psi=config.psi,
        cutoff=config.cutoff,
        image_size=image_size,
        samples=samples,
        selection=selection or {},
    )
    manifest.save()
    resolved = dataclasses.replace(config, device=Device(device))
    atomic_write_json(out / "config.json", resolved.to_dict())
    return AnnotateExportResult(out, tuple(manifest.names()), tuple(seeds), image_size)


def _readme(out: Path) -> str:
    return f"""# Samples to annotate

Each `images/seedNNNNNN.png` is a generator sample; `images/seedNNNNNN.json` is its empty
LabelMe file. Annotate them with LabelMe, keeping the files where they are:

    labelme {out / "images"} --labels {out / "labels.txt"} --nodata --autosave

Allowed labels (labels.txt):
- parts: polygons (or rectangles, circles) named by car_20 part names; draw the parts in front
  last, since later shapes cover earlier ones. `__ignore__` marks pixels to leave out, and
  unpainted pixels are background.
- keypoints: single points named by the 12 keypoint names; tick the `occluded` flag (or write
  `occluded` in the description) when the point is hidden but you can place it.

Then import the labels paired with these samples' latents:

    assetgan annotate import {out / "images"} --format labelme --out ANNOTATION_SET

Files with no shapes count as not annotated and are skipped. See docs/annotate.md.
"""
