"""Labeled images for the downstream segmenter, read into memory, and the x-flip augmentation.

Two directory formats are read (docs/formats.md):
- a CarWorld split (`assetgan world render`): split.json + manifest.jsonl, images/ and parts/
  PNGs, keypoints (x, y, v) in the manifest;
- a generated dataset (`assetgan dataset generate`): dataset.json + manifest.jsonl, the samples
  marked `kept` only (the JS-filtered set DatasetGAN trains on), keypoints from meta/ID.json.
Keypoint coordinates follow docs/conventions.md (pixel (r, c) has centre (c + 0.5, r + 0.5)).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINT_FLIP, KEYPOINTS
from assetgan.core.errors import AssetganError
from assetgan.core.progress import Progress, emit


@dataclass(frozen=True)
class LabeledArrays:
    """A whole labeled set in memory."""

    root: Path  # directory it was read from
    kind: str  # "carworld_split" or "generated_dataset"
    names: tuple[str, ...]  # per-image ids
    images: np.ndarray  # [N, H, W, 3] uint8 RGB
    part_ids: np.ndarray  # [N, H, W] uint8 car_20 ids (IGNORE_ID = unlabeled)
    keypoints_xyv: np.ndarray  # [N, K, 3] float32 (x, y, v), v: 0 absent, 1 occluded, 2 visible

    def __len__(self) -> int:
        return len(self.names)


def _read_png(path: Path, mode: str | None) -> np.ndarray:
    try:
        with Image.open(path) as picture:
            return np.asarray(picture.convert(mode) if mode else picture)
    except (OSError, ValueError) as error:
        raise AssetganError(f"{path}: not a readable PNG ({error})") from None


def detect_kind(root: str | Path) -> str:
    """'carworld_split' or 'generated_dataset'; AssetganError for anything else."""
    root = Path(root)
    if not root.is_dir():
        raise AssetganError(f"{root}: no such directory (expected a CarWorld split or dataset)")
    if (root / "split.json").is_file():
        return "carworld_split"
    if (root / "dataset.json").is_file():
        return "generated_dataset"
    raise AssetganError(
        f"{root}: neither a CarWorld split (split.json) nor a generated dataset (dataset.json); "
        f"make one with `assetgan world render` or `assetgan dataset generate`"
    )


def load_labeled(
    root: str | Path, limit: int | None = None, progress: Progress | None = None
) -> LabeledArrays:
    """Read a CarWorld split or a generated dataset (first `limit` images) into memory."""
    root = Path(root)
    kind = detect_kind(root)
    if kind == "carworld_split":
        from assetgan.pipeline.carworld.split import WorldSplit

        split = WorldSplit.load(root)
        records = [
            {"name": f"{r['id']:06d}", **r["files"], "keypoints_xyv": r["keypoints_xyv"]}
            for r in split.records
        ]
    else:
        from assetgan.pipeline.datasets.layout import GeneratedDataset

        dataset = GeneratedDataset.load(root)
        kept = [r for r in dataset.records() if r.get("kept", True)][: limit or None]
        records = [
            {
                "name": r["id"],
                "image": r["image"],
                "parts": r["parts"],
                "keypoints_xyv": dataset.sample_meta(r["seed"])["keypoints"]["xyv"],
            }
            for r in kept
        ]
    records = records[:limit] if limit else records
    if not records:
        raise AssetganError(f"{root}: no labeled images to read")
    images, parts, keypoints = [], [], []
    for index, record in enumerate(records):
        image = _read_png(root / record["image"], "RGB")
        part_ids = _read_png(root / record["parts"], None)
        if part_ids.shape != image.shape[:2] or part_ids.dtype != np.uint8:
            raise AssetganError(
                f"{root / record['parts']}: expected uint8 {image.shape[:2]}, "
                f"got {part_ids.dtype} {part_ids.shape}"
            )
        if images and image.shape != images[0].shape:
            raise AssetganError(
                f"{root / record['image']}: size {image.shape[:2]} differs from the first "
                f"image's {images[0].shape[:2]}; a set must have one size"
            )
        xyv = np.asarray(record["keypoints_xyv"], dtype=np.float32).reshape(-1, 3)
        if xyv.shape[0] != len(KEYPOINTS):
            raise AssetganError(f"{root}: image {record['name']} has {xyv.shape[0]} keypoints")
        images.append(image)
        parts.append(part_ids)
        keypoints.append(xyv)
        if (index + 1) % 256 == 0:
            emit(progress, index + 1, len(records), task=f"reading {root.name}")
    part_array = np.stack(parts)
    bad = (part_array >= len(CAR_20)) & (part_array != IGNORE_ID)
    if bad.any():
        raise AssetganError(f"{root}: part ids {sorted(set(part_array[bad].tolist()))} not car_20")
    emit(progress, len(records), len(records), task=f"reading {root.name}")
    return LabeledArrays(
        root,
        kind,
        tuple(r["name"] for r in records),
        np.stack(images),
        part_array,
        np.stack(keypoints),
    )


def flip_x(
    images: np.ndarray,  # [N, H, W, 3]
    part_ids: np.ndarray,  # [N, H, W]
    keypoints_xyv: np.ndarray,  # [N, K, 3] in taxonomy.KEYPOINTS order
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mirror left-right: pixels flip, x -> W - x, and left/right keypoints swap names
    (taxonomy.KEYPOINT_FLIP; car_20 parts have no sides, so part ids stay)."""
    width = images.shape[2]
    flipped = keypoints_xyv[:, list(KEYPOINT_FLIP)].copy()
    flipped[..., 0] = np.where(flipped[..., 2] > 0, width - flipped[..., 0], flipped[..., 0])
    return images[:, :, ::-1].copy(), part_ids[:, :, ::-1].copy(), flipped


def gaussian_heatmaps(
    keypoints_xyv: np.ndarray,  # [N, K, 3]
    height: int,
    width: int,
    sigma: float,  # px
) -> np.ndarray:
    """[N, K, H, W] float32 targets: a unit Gaussian at every visible (v = 2) keypoint, else 0."""
    xs = np.arange(width, dtype=np.float32) + 0.5  # pixel centres
    ys = np.arange(height, dtype=np.float32) + 0.5
    x, y, v = (keypoints_xyv[..., i].astype(np.float32) for i in range(3))
    gx = np.exp(-((xs[None, None, :] - x[..., None]) ** 2) / (2 * sigma**2))  # [N, K, W]
    gy = np.exp(-((ys[None, None, :] - y[..., None]) ** 2) / (2 * sigma**2))  # [N, K, H]
    maps = gy[..., :, None] * gx[..., None, :]
    return (maps * (v == 2)[..., None, None]).astype(np.float32)
