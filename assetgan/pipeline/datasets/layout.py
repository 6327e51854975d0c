"""The generated dataset directory (docs/formats.md, "Generated dataset"): `DatasetConfig` (what a
dataset is), `GeneratedDataset` (dataset.json + the manifest), sample files, finalising.

    <dir>/dataset.json            kind, schema_version, resolved DatasetConfig, hashes, names
    <dir>/images/ID.png           RGB uint8 [H, W, 3]
    <dir>/parts/ID.png            part ids (majority vote), 8-bit grayscale [H, W]
    <dir>/uncertainty/ID.png      per-pixel JS, 16-bit grayscale: value = round(65535 * JS / ln N)
    <dir>/latents/ID.npy          float32 [num_ws, w_dim] (the w+ that made the image)
    <dir>/meta/ID.json            seed, score, keypoints, COCO pieces; written last = sample done
    <dir>/manifest.jsonl          one line per sample by seed: files, score, kept (final step)
    <dir>/coco.json               kept samples only: part RLEs + the keypointed car (final step)

ID is the seed as 8+ digits. The final step (`finalize`) runs once every sample's meta exists and
is a pure function of the metas, so it gives the same bytes whoever runs it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import (
    atomic_write_json,
    atomic_write_text,
    check_same_header,
    read_json_object,
)
from assetgan.pipeline.coco_format import coco_document

SCHEMA_VERSION = 1
KIND = "assetgan_generated_dataset"
SUBDIRS = ("images", "parts", "uncertainty", "latents", "meta")


def sample_id(seed: int) -> str:
    return f"{seed:08d}"


def sample_files(seed: int) -> dict[str, str]:
    """Paths of one sample's files, relative to the dataset directory."""
    name = sample_id(seed)
    return {
        "image": f"images/{name}.png",
        "parts": f"parts/{name}.png",
        "uncertainty": f"uncertainty/{name}.png",
        "w": f"latents/{name}.npy",
        "meta": f"meta/{name}.json",
    }


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 0 <= i < n."""
    try:
        index, count = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise AssetganError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise AssetganError(f"--shard {text}: need 0 <= i < n")
    return index, count


@dataclass(frozen=True)
class DatasetConfig:
    """What a generated dataset is: the same config always yields byte-identical files."""

    n: int = 1000  # number of samples: seeds seed_start .. seed_start + n - 1
    seed_start: int = 0  # first seed
    psi: float = 0.7  # truncation psi
    truncation_cutoff: int | None = 8  # truncate ws[:, :cutoff] (DatasetGAN cars: 8), None = all
    drop: float = 0.1  # fraction of samples (most uncertain first) left out of coco.json
    top_fraction: float = 0.1  # image score = mean JS of this top fraction of pixels
    batch: int = 4  # latents per forward; batches are aligned to seed_start (part of identity)
    band_rows: int | None = None  # interpreter rows per band, None = auto (part of identity)

    def validate(self) -> DatasetConfig:
        checks = [
            (self.n >= 1, f"--n must be >= 1, got {self.n}"),
            (
                0 <= self.seed_start and self.seed_start + self.n <= 2**32,
                "seeds must be in [0, 2**32)",
            ),
            (0 <= self.drop < 1, f"--drop must be in [0, 1), got {self.drop}"),
            (0 < self.top_fraction <= 1, "top_fraction must be in (0, 1]"),
            (self.batch >= 1, "batch must be >= 1"),
            (self.band_rows is None or self.band_rows >= 1, "band_rows must be >= 1"),
            (self.truncation_cutoff is None or self.truncation_cutoff >= 0, "cutoff must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise AssetganError(f"dataset config: {message}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """dataset.json's "config": every field determines the files (band sizes change
        rounding), so all of them are the dataset's identity."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "dataset config") -> DatasetConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        if set(obj) != names:
            raise AssetganError(
                f"{where}: expected the fields {sorted(names)}, got {sorted(obj)}; "
                f"regenerate the dataset with this version of assetgan"
            )
        return cls(**obj)

    @property
    def seeds(self) -> range:
        return range(self.seed_start, self.seed_start + self.n)

    def shard_seeds(self, shard: tuple[int, int]) -> range:
        index, count = shard
        return range(
            self.seed_start + index * self.n // count,
            self.seed_start + (index + 1) * self.n // count,
        )

    def batch_of(self, seed: int) -> range:
        """The aligned batch `seed` is computed in (results never depend on shards or resumes)."""
        first = self.seed_start + (seed - self.seed_start) // self.batch * self.batch
        return range(first, min(first + self.batch, self.seed_start + self.n))


@dataclass(frozen=True)
class GeneratedDataset:
    """A generated dataset directory: its header (dataset.json, written by `save`, read by
    `load`) and what the directory holds now (counted by `load`, never saved)."""

    schema_version: ClassVar[int] = SCHEMA_VERSION
    root: Path  # the dataset directory
    config: DatasetConfig  # what the dataset is (dataset.json "config")
    generator_sha256: str  # file_sha256 of the generator checkpoint
    interpreter_sha256: str  # file_sha256 of the interpreter checkpoint
    taxonomy: str  # the interpreter's part taxonomy, e.g. "car_20"
    class_names: tuple[str, ...]  # part names by id
    keypoint_names: tuple[str, ...]  # keypoint names in heatmap order
    image_size: tuple[int, int]  # (H, W) px
    members: int  # interpreter ensemble size N (uncertainty PNGs scale JS by ln N)
    # -- what the directory holds (load() counts it; not part of dataset.json)
    present: int = 0  # samples whose meta/ID.json exists, i.e. complete samples
    kept: int | None = None  # samples in coco.json; None until the final step has run
    dropped: int | None = None  # samples marked `kept: false`; None until the final step
    threshold: float | None = None  # lowest score among the dropped; None if none dropped
    written: int = 0  # samples written by the generate run that returned this; 0 from load()

    @property
    def finished(self) -> bool:
        """True once manifest.jsonl and coco.json are written."""
        return self.kept is not None

    def header(self) -> dict[str, Any]:
        """The dataset.json object (docs/formats.md, "Generated dataset")."""
        return {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "config": self.config.to_dict(),
            "generator_sha256": self.generator_sha256,
            "interpreter_sha256": self.interpreter_sha256,
            "taxonomy": self.taxonomy,
            "class_names": list(self.class_names),
            "keypoint_names": list(self.keypoint_names),
            "image_size": list(self.image_size),
            "members": self.members,
            "uncertainty_png_scale": f"JS = value / 65535 * ln({self.members})",
        }

    def save(self) -> Path:
        """Write root/dataset.json, or check that an existing one describes the same dataset."""
        path = self.root / "dataset.json"
        header = self.header()
        if path.is_file():
            what = "a dataset made with different settings"
            hint = "use a new --out or the original settings"
            check_same_header(path, read_json_object(path), header, what, hint)
            return path
        return atomic_write_json(path, header)

    @classmethod
    def load(cls, root: str | Path) -> GeneratedDataset:
        """Read root/dataset.json and count what the directory holds."""
        root = Path(root)
        path = root / "dataset.json"
        if not path.is_file():
            raise AssetganError(
                f"{root}: not a generated dataset (no dataset.json); make one with "
                f"`assetgan dataset generate`"
            )
        header = read_json_object(path)
        if header.get("kind") != KIND or header.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(f"{path}: not a schema-{SCHEMA_VERSION} {KIND}")
        try:
            config = DatasetConfig.from_dict(header["config"], f"{path}: config")
            dataset = cls(
                root=root,
                config=config,
                generator_sha256=str(header["generator_sha256"]),
                interpreter_sha256=str(header["interpreter_sha256"]),
                taxonomy=str(header["taxonomy"]),
                class_names=tuple(header["class_names"]),
                keypoint_names=tuple(header["keypoint_names"]),
                image_size=(int(header["image_size"][0]), int(header["image_size"][1])),
                members=int(header["members"]),
                present=len(done_seeds(root, config.seeds)),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise AssetganError(f"{path}: malformed header ({error!r})") from None
        if not (root / "manifest.jsonl").is_file():
            return dataset
        try:
            dropped = [r["score"] for r in dataset.records() if not r["kept"]]
        except (KeyError, TypeError) as error:
            raise AssetganError(f"{root}/manifest.jsonl: malformed record ({error!r})") from None
        return dataclasses.replace(
            dataset,
            kept=config.n - len(dropped),
            dropped=len(dropped),
            threshold=min(dropped) if dropped else None,
        )

    def records(self) -> list[dict[str, Any]]:
        """manifest.jsonl: one record per sample by seed (id, seed, score, kept, image, parts,
        uncertainty, w; paths relative to root)."""
        path = self.root / "manifest.jsonl"
        if not path.is_file():
            raise AssetganError(
                f"{path}: missing; the dataset is not finished (run its remaining shards)"
            )
        records = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise AssetganError(f"{path}:{line_no}: bad json ({error})") from None
        if not records:
            raise AssetganError(f"{path}: no samples listed")
        return records

    def sample_meta(self, seed: int) -> dict[str, Any]:
        """meta/ID.json of one sample: seed, score, files, keypoints {xyv, peak}, coco."""
        return read_json_object(self.root / sample_files(seed)["meta"])


def done_seeds(root: Path, seeds: range) -> set[int]:
    """Seeds in `seeds` whose meta file exists (= every file of the sample is complete)."""
    meta = root / "meta"
    if not meta.is_dir():
        return set()
    present = {p.stem for p in meta.glob("*.json")}
    return {s for s in seeds if sample_id(s) in present}


def _coco(metas: list[dict], image_size: tuple[int, int]) -> dict:
    height, width = image_size
    return coco_document(
        [{"id": m["seed"], "files": m["files"], "coco": m["coco"]} for m in metas],
        height,
        width,
        "assetgan generated dataset (DatasetGAN interpreter labels)",
        SCHEMA_VERSION,
    )


def finalize(root: Path) -> None:
    """Rank all samples by score, mark the most uncertain `drop` share as dropped, and write
    manifest.jsonl and coco.json; requires every sample to be present."""
    root = Path(root)
    dataset = GeneratedDataset.load(root)
    config = dataset.config
    missing = [s for s in config.seeds if not (root / sample_files(s)["meta"]).is_file()]
    if missing:
        raise AssetganError(
            f"{root}: {len(missing)} of {config.n} samples are not generated yet (first: seed "
            f"{missing[0]}); run the remaining shards, then `assetgan dataset generate` again"
        )
    for sub in SUBDIRS:  # temp files of killed writers (os.replace never happened)
        for stray in (root / sub).glob(".*.tmp"):
            stray.unlink(missing_ok=True)
    metas = [dataset.sample_meta(seed) for seed in config.seeds]
    dropped_count = math.floor(config.drop * config.n + 0.5)
    ranked = sorted(metas, key=lambda m: (-m["score"], m["seed"]))
    dropped = {m["seed"] for m in ranked[:dropped_count]}
    lines = []
    for meta in metas:
        record = {
            "id": sample_id(meta["seed"]),
            "seed": meta["seed"],
            "score": meta["score"],
            "kept": meta["seed"] not in dropped,
            **{k: v for k, v in meta["files"].items() if k != "meta"},
        }
        lines.append(json.dumps(record, sort_keys=True) + "\n")
    atomic_write_text(root / "manifest.jsonl", "".join(lines))
    kept = [m for m in metas if m["seed"] not in dropped]
    atomic_write_json(root / "coco.json", _coco(kept, dataset.image_size))
