"""`gan import`: foreign StyleGAN2 checkpoints -> our safetensors generator (docs/stylegan_import.md).

One registry entry per format (trimesh-style): a detector on the loaded object and a converter
to `ForeignGenerator`. Files are read without executing anything from them:
- pickles (NVIDIA TF, stylegan2-ada / stylegan3) through `safe_unpickle.RestrictedUnpickler`;
- torch archives (rosinality .pt) through `torch.load(weights_only=True)`, falling back to the
  restricted unpickler only for archives that hold stubbed NVIDIA globals.

    result = run(GanImportConfig(Path("stylegan2-car-config-f.pkl"), Path("G.safetensors")))
"""

from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from assetgan.core.checkpoint import load_state_into
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.stylegan import import_ada, import_rosinality, import_tf
from assetgan.pipeline.stylegan.checkpoint import save_generator
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.import_common import ForeignGenerator, ImportFormat
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.safe_unpickle import (
    ALLOWED_GLOBALS,
    load_pickle,
    load_torch_archive,
    refusal,
)

__all__ = [
    "ForeignGenerator",
    "GanImportConfig",
    "GanImportResult",
    "ImportFormat",
    "build_generator",
    "load_foreign_file",
    "read_foreign_generator",
    "run",
]

ZIP_MAGIC = b"PK\x03\x04"
TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first object of a pre-1.6 torch.save file
CAR_CROP_ROWS = (64, 448)  # the 512x384 LSUN car models live in rows 64:448 of 512x512

Detector = Callable[[Any], bool]
Converter = Callable[[Any, str], ForeignGenerator]
FORMATS: dict[ImportFormat, tuple[Detector, Converter]] = {
    ImportFormat.tf: (import_tf.is_tf, import_tf.convert),
    ImportFormat.ada: (import_ada.is_ada, import_ada.convert),
    ImportFormat.rosinality: (import_rosinality.is_rosinality, import_rosinality.convert),
}


@dataclass(frozen=True)
class GanImportConfig:
    """`gan import`: which foreign file, where to write, how to read and write it."""

    source: Path  # NVIDIA TF .pkl, stylegan2-ada / stylegan3 .pkl or rosinality .pt
    out: Path  # our .safetensors checkpoint (a .json copy of config and info beside it)
    format: ImportFormat = ImportFormat.auto  # source format; auto = detect from the contents
    crop_rows: tuple[int, int] | None = None  # (top, bottom) rows kept in output images
    car_crop: bool = True  # if crop_rows is None: 512-px files named '*car*' get rows 64:448
    fp16: bool = False  # store float16 weights (half the size; loaded back as float32)


@dataclass(frozen=True)
class GanImportResult:
    """What `run` wrote."""

    out: Path  # the .safetensors checkpoint (a .json copy of config and info sits beside it)
    format: ImportFormat  # detected or given source format
    config: GeneratorConfig  # the written generator's config
    num_ws: int  # w vectors the synthesis consumes
    num_params: int  # trainable parameters (buffers excluded)
    notes: tuple[str, ...]  # converter decisions (which network, w_avg source, crop, ...)


def _torch_load_weights_only(path: Path) -> Any:
    """torch.load(weights_only=True); argparse.Namespace (rosinality's `args`) is allowed."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        match = re.search(r"GLOBAL ([\w.]+)", str(error))
        name = match.group(1) if match else None
        if name is not None and name in ALLOWED_GLOBALS and _head(path) == ZIP_MAGIC:
            return load_torch_archive(path)  # e.g. an ada network re-saved with torch.save
        if name is not None:
            raise refusal(str(path), name) from None
        raise AssetganError(f"{path}: unreadable torch file ({error})") from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        raise AssetganError(
            f"{path}: truncated or corrupt torch file ({str(error).splitlines()[0]}); "
            "download the file again"
        ) from None


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4)


def load_foreign_file(path: str | Path) -> Any:
    """Load a foreign checkpoint as data: pickles restricted, torch archives weights-only."""
    path = Path(path)
    if not path.is_file():
        raise AssetganError(f"{path}: no such file")
    head = _head(path)
    if not head:
        raise AssetganError(f"{path}: the file is empty")
    if head.startswith(ZIP_MAGIC):
        return _torch_load_weights_only(path)
    if head[0] == 0x80:  # pickle protocol 2+
        obj = load_pickle(path)
        if isinstance(obj, int) and obj == TORCH_LEGACY_MAGIC:
            return _torch_load_weights_only(path)
        return obj
    raise AssetganError(
        f"{path}: unknown file format (starts with {head!r}); expected an NVIDIA .pkl, a "
        "stylegan2-ada/stylegan3 .pkl or a rosinality .pt"
    )


def _describe(obj: Any) -> str:
    if isinstance(obj, dict):
        return f"a dict with keys {sorted(map(str, obj))[:8]}"
    return f"a {type(obj).__name__}"


def read_foreign_generator(
    path: str | Path, format: ImportFormat | str = ImportFormat.auto
) -> ForeignGenerator:
    """Load `path` and convert its generator to our names (no file is written)."""
    path = Path(path)
    requested = ImportFormat(format)
    obj = load_foreign_file(path)
    detected = [fmt for fmt, (detect, _convert) in FORMATS.items() if detect(obj)]
    if not detected:
        raise AssetganError(
            f"{path}: {_describe(obj)} is not a StyleGAN checkpoint we know "
            f"(formats: {', '.join(f.value for f in FORMATS)})"
        )
    fmt = detected[0]
    if requested not in (ImportFormat.auto, fmt):
        raise AssetganError(f"{path}: --format {requested.value} given but the file is {fmt.value}")
    return FORMATS[fmt][1](obj, str(path))


def build_generator(
    foreign: ForeignGenerator,
    where: str,
    crop_rows: tuple[int, int] | None = None,  # (top, bottom) rows kept in output images
) -> Generator:
    """Generator(config) holding the foreign weights (float32, eval mode)."""
    config = GeneratorConfig(**foreign.config_fields, crop_rows=crop_rows)
    generator = Generator(config)
    # The FIR filter buffers, which TF and rosinality files do not carry, come from the config.
    filters = {k: v for k, v in generator.state_dict().items() if k.endswith("resample_filter")}
    state = {**filters, **foreign.state}
    extra = sorted(set(foreign.state) - set(generator.state_dict()))
    if extra:
        raise AssetganError(f"{where}: tensors {extra[:4]} have no place in the inferred model")
    load_state_into(generator, state, where)
    return generator.eval().requires_grad_(False)


def _crop_rows(config: GanImportConfig, resolution: int) -> tuple[int, int] | None:
    if config.crop_rows is not None:
        return config.crop_rows
    if config.car_crop and resolution == 512 and "car" in Path(config.source).name.lower():
        return CAR_CROP_ROWS
    return None


def run(config: GanImportConfig, progress: Progress | None = None) -> GanImportResult:
    """Convert `config.source` to our checkpoint `config.out` (.safetensors + .json, written
    atomically; nothing is written when the source is refused). progress: task "import",
    steps read / build / write."""
    source, out = Path(config.source), Path(config.out)
    foreign = read_foreign_generator(source, config.format)
    emit(progress, 1, 3, task="import")
    crop = _crop_rows(config, foreign.config_fields["resolution"])
    generator = build_generator(foreign, str(source), crop)
    emit(progress, 2, 3, task="import")
    notes = list(foreign.notes)
    if crop is not None:
        notes.append(f"output images are canvas rows {crop[0]}:{crop[1]}")
    info = {
        "imported_from": source.name,
        "source_format": foreign.format.value,
        "source_sha256": file_sha256(source),
        "notes": notes,
    }
    save_generator(generator, out, fp16=config.fp16, info=info)
    emit(progress, 3, 3, task="import")
    return GanImportResult(
        out=out,
        format=foreign.format,
        config=generator.config,
        num_ws=generator.num_ws,
        num_params=sum(p.numel() for p in generator.parameters()),
        notes=tuple(notes),
    )
