"""The CarWorld split directory (docs/formats.md): its config, per-image files, manifest and COCO.

<split>/split.json        WorldConfig (resolved) + schema_version + summary
<split>/images/ID.png     RGB uint8
<split>/parts/ID.png      car_20 part ids, uint8 (0 = background)
<split>/depth/ID.png      camera-space depth, uint16 millimetres (0 = background)
<split>/meta/ID.json      camera, keypoints, car params, scene, seed, COCO pieces
<split>/meshes/ID.glb     (with --meshes) ground-truth mesh, one node per car_20 part
<split>/manifest.jsonl    one line per image, rebuilt from meta/
<split>/coco.json         parts as RLE + a `car` category with the 12 keypoints
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from assetgan.assets.taxonomy import merge_parts
from assetgan.core.errors import AssetganError
from assetgan.core.fields import known_fields
from assetgan.core.io_utils import atomic_write_json, atomic_write_text, read_json_object
from assetgan.pipeline.carworld.params import Shift
from assetgan.pipeline.carworld.render import SUPPORTED_SIZES
from assetgan.pipeline.coco_format import coco_document
from assetgan.render.camera import Camera

SCHEMA_VERSION = 1
# Bumped whenever the same config would render different pixels; a split rendered by another
# generator is never resumed with this one (splits from before this field are "carworld-1").
GENERATOR = "carworld-3"
SUBDIRS = ("images", "parts", "depth", "meta")


@dataclass(frozen=True)
class WorldConfig:
    """What a split is: the same config always yields byte-identical files."""

    split: str = "train"  # split name; also seeds the images (train and test never coincide)
    n: int = 2600  # number of images (ids 0 .. n-1)
    size: int = 64  # image side in pixels (64, 128 or 256)
    seed: int = 0  # master seed; image i uses a seed derived from (seed, split, i)
    shift: Shift = Shift.none  # distribution shift (docs/carworld.md)
    meshes: bool = False  # also write meshes/ID.glb
    degrade: float = 0.25  # probability scale of blur / noise / JPEG degradations
    supersample: int = 2  # RGB rendered at size * supersample then box-filtered
    chunk: int = 16  # images rendered together; fixed so results never depend on workers
    generator: str = GENERATOR  # version of the car/scene/render code that drew the images

    def validate(self) -> WorldConfig:
        if not self.split or not all(c.isalnum() or c in "-_" for c in self.split):
            raise AssetganError(
                f"--split must be a non-empty name of letters, digits, - or _; got {self.split!r}"
            )
        if self.n < 1:
            raise AssetganError(f"--n must be at least 1, got {self.n}")
        if self.size not in SUPPORTED_SIZES:
            raise AssetganError(f"--size must be one of {SUPPORTED_SIZES}, got {self.size}")
        if self.seed < 0:
            raise AssetganError(f"--seed must be >= 0, got {self.seed}")
        if not 0.0 <= self.degrade <= 1.0:
            raise AssetganError(f"degrade must be in [0, 1], got {self.degrade}")
        if self.supersample not in (1, 2, 3, 4):
            raise AssetganError(f"supersample must be 1..4, got {self.supersample}")
        if not 1 <= self.chunk <= 256:
            raise AssetganError(f"chunk must be in 1..256, got {self.chunk}")
        return self

    def to_dict(self) -> dict:
        """The JSON form written to split.json (shift as its string value)."""
        out = asdict(self)
        out["shift"] = self.shift.value
        return out

    @classmethod
    def from_dict(cls, obj: dict) -> WorldConfig:
        values = known_fields(cls, obj, "split config")
        values.setdefault("generator", "carworld-1")
        if "shift" in values:
            values["shift"] = Shift(values["shift"])
        return cls(**values)


def item_name(index: int) -> str:
    return f"{index:06d}"


def item_paths(root: Path, index: int, meshes: bool) -> dict[str, Path]:
    """Files of one image, in the order they are written (meta last marks completion)."""
    name = item_name(index)
    paths = {
        "image": root / "images" / f"{name}.png",
        "parts": root / "parts" / f"{name}.png",
        "depth": root / "depth" / f"{name}.png",
    }
    if meshes:
        paths["mesh"] = root / "meshes" / f"{name}.glb"
    paths["meta"] = root / "meta" / f"{name}.json"
    return paths


def manifest_line(meta: dict) -> dict:
    """The manifest record of one image (a summary of its meta json)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "id": meta["id"],
        "files": meta["files"],
        "seed": meta["seed"]["item"],
        "style": meta["params"]["style"],
        "azimuth": meta["scene"]["azimuth"],
        "elevation": meta["scene"]["elevation"],
        "background": meta["scene"]["background"],
        "keypoints_xyv": meta["keypoints"]["xyv"],
        "bbox": meta["bbox"],
    }


@dataclass(frozen=True)
class WorldSplit:
    """A rendered split on disk: config plus one manifest record per image."""

    root: Path  # split directory
    config: WorldConfig  # how it was rendered
    records: tuple[dict, ...]  # manifest lines, ordered by id

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def load(cls, root: str | Path) -> WorldSplit:
        root = Path(root)
        config_path, manifest = root / "split.json", root / "manifest.jsonl"
        for path in (config_path, manifest):
            if not path.is_file():
                raise AssetganError(f"{path}: missing; is {root} a finished CarWorld split?")
        info = read_json_object(config_path)
        if info.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(
                f"{config_path}: schema_version {info.get('schema_version')} is not {SCHEMA_VERSION}"
            )
        records = []
        for line_no, line in enumerate(manifest.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise AssetganError(f"{manifest}:{line_no}: bad json ({error})") from error
        return cls(root, WorldConfig.from_dict(info["config"]), tuple(records))

    def save(self, summary: dict | None = None) -> None:
        """Write split.json, manifest.jsonl and coco.json from the per-image meta files."""
        metas = [self.meta(r["id"]) for r in self.records]
        atomic_write_text(
            self.root / "manifest.jsonl",
            "".join(json.dumps(manifest_line(m), sort_keys=True) + "\n" for m in metas),
        )
        atomic_write_json(
            self.root / "coco.json",
            coco_document(
                metas, self.config.size, self.config.size, "CarWorld split", SCHEMA_VERSION
            ),
        )
        write_split_json(self.root, self.config, summary)

    # ---- per-image access -------------------------------------------------------------------
    def _path(self, index: int, key: str) -> Path:
        if not 0 <= index < len(self.records):
            raise AssetganError(f"image {index} is not in {self.root} (0..{len(self.records) - 1})")
        return item_paths(self.root, index, self.config.meshes)[key]

    def meta(self, index: int) -> dict:
        path = self.root / "meta" / f"{item_name(index)}.json"
        if not path.is_file():
            raise AssetganError(f"{path}: missing meta for image {index}")
        return read_json_object(path)

    def image(self, index: int) -> np.ndarray:
        """[S, S, 3] uint8 RGB."""
        return np.asarray(Image.open(self._path(index, "image")).convert("RGB"))

    def parts(self, index: int, taxonomy: str = "car_20") -> np.ndarray:
        """[S, S] uint8 part ids in car_20, car_12 or car_5."""
        return merge_parts(np.asarray(Image.open(self._path(index, "parts"))), taxonomy)

    def depth(self, index: int) -> np.ndarray:
        """[S, S] float32 camera-space depth in metres (0 = background)."""
        return np.asarray(Image.open(self._path(index, "depth")), dtype=np.float32) / 1000.0

    def camera(self, index: int) -> Camera:
        return Camera.from_json(self.meta(index)["camera"])

    def keypoints(self) -> np.ndarray:
        """[N, 12, 3] (x, y, visibility) of every image, pixels with row 0 at the top."""
        return np.array([r["keypoints_xyv"] for r in self.records], dtype=np.float64)


def write_split_json(root: Path, config: WorldConfig, summary: dict | None = None) -> None:
    atomic_write_json(
        root / "split.json",
        {"schema_version": SCHEMA_VERSION, "config": config.to_dict(), "summary": summary or {}},
    )
