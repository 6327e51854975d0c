"""What the reconstruction network trains on: a small protocol any source implements.

Two sources (docs/reconstruct.md "Data"):
- (b) a CarWorld split (`load_carworld`): images, car_20 part maps, 12 keypoints with
  visibility and the ground-truth camera of every image (docs/formats.md "CarWorld split").
  Every image is its own content: single-view.
- (a) a GAN multi-view set (`assetgan multiview sample`, `load_multiview`): the kept images
  with the interpreter's labels (car_20 parts, keypoints) and the view code's mean PnP camera
  (GANverse3D's per-view-code cameras), `content` = the content code (several views of one
  car: the multi-view loss renders in another of them) and `view` = the view code.

Images, masks and part maps are in the usual image layout (row 0 at the top); keypoints are
pixel coordinates (docs/conventions.md); cameras are model-view-projection matrices of the car
frame (metres).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from assetgan.assets.taxonomy import IGNORE_ID, KEYPOINT_FLIP, KEYPOINTS
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import read_json_object
from assetgan.core.progress import Progress, emit

_MIRROR_X = np.diag([-1.0, 1.0, 1.0, 1.0]).astype(np.float32)  # x -> -x (clip or car frame)


@dataclass(frozen=True)
class ReconstructBatch:
    """One training batch (torch, CPU; the trainer moves it to the device)."""

    images: torch.Tensor  # [B, 3, H, W] float32 in [0, 1]
    masks: torch.Tensor  # [B, H, W] float32 in {0, 1}: the car
    part_ids: torch.Tensor | None  # [B, H, W] int64 car_20 ids, IGNORE_ID = unlabeled; or None
    keypoints_xyv: torch.Tensor | None  # [B, 12, 3] (x, y, v) pixels, v > 0 labeled; or None
    mvp: torch.Tensor  # [B, 4, 4] float32 camera of each image (car frame -> clip)
    content: torch.Tensor  # [B] int64: equal values show the same car
    view: torch.Tensor  # [B] int64 view-code index (-1: none), for per-view camera corrections
    camera_params: torch.Tensor | None = None  # [B, 7] model.CAMERA_FIELDS of `mvp`, or None
    flipped: torch.Tensor | None = None  # [B] bool: mirrored by the augmentation, or None

    def to(self, device: torch.device | str) -> ReconstructBatch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return ReconstructBatch(
            move(self.images),
            move(self.masks),
            move(self.part_ids),
            move(self.keypoints_xyv),
            move(self.mvp),
            move(self.content),
            move(self.view),
            move(self.camera_params),
            move(self.flipped),
        )


class ReconstructData(Protocol):
    """A training source: indexable images with labels and cameras."""

    image_size: int  # square images of this side

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray, flip: np.ndarray) -> ReconstructBatch:
        """Images `indices` [B]; those with flip[i] mirrored left-right (image, labels, camera)."""
        ...

    def partners(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """[B] index of another image of the same content for each index, -1 where none
        (single-view data returns all -1): the multi-view loss renders there."""
        ...


@dataclass(frozen=True)
class ArrayData:
    """An in-memory `ReconstructData` (every source is loaded into one of these)."""

    images: np.ndarray  # [N, H, W, 3] uint8
    masks: np.ndarray  # [N, H, W] bool
    part_ids: np.ndarray | None  # [N, H, W] uint8 car_20 ids (IGNORE_ID unlabeled) or None
    keypoints_xyv: np.ndarray | None  # [N, 12, 3] float32 pixels or None
    mvp: np.ndarray  # [N, 4, 4] float32
    content: np.ndarray  # [N] int64
    view: np.ndarray  # [N] int64 (-1: no view code)
    camera_params: np.ndarray | None = None  # [N, 7] float32 orbit parameters (CAMERA_FIELDS)
    source: str = ""  # for messages

    def __post_init__(self) -> None:
        n = len(self.images)
        where = self.source or "reconstruction data"
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise AssetganError(f"{where}: images must be uint8 [N, H, W, 3]")
        if n == 0:
            raise AssetganError(f"{where}: no images")
        height, width = self.images.shape[1:3]
        if height != width:
            raise AssetganError(f"{where}: images must be square, got {height}x{width}")
        expected = {
            "masks": (n, height, width),
            "mvp": (n, 4, 4),
            "content": (n,),
            "view": (n,),
            "part_ids": (n, height, width),
            "keypoints_xyv": (n, len(KEYPOINTS), 3),
            "camera_params": (n, 7),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is not None and value.shape != shape:
                raise AssetganError(f"{where}: {name} has shape {value.shape}, expected {shape}")
        if not np.isfinite(self.mvp).all():
            raise AssetganError(f"{where}: a camera holds NaN or infinite values")

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return len(self.images)

    @property
    def view_codes(self) -> int:
        """Number of view codes (max view id + 1; 0 for single-view data)."""
        return int(self.view.max()) + 1 if len(self.view) else 0

    def batch(self, indices: np.ndarray, flip: np.ndarray) -> ReconstructBatch:
        images = self.images[indices].astype(np.float32) / 255.0
        masks = self.masks[indices].astype(np.float32)
        parts = None if self.part_ids is None else self.part_ids[indices].astype(np.int64)
        keypoints = None if self.keypoints_xyv is None else self.keypoints_xyv[indices].copy()
        mvp = self.mvp[indices].copy()
        camera = None if self.camera_params is None else self.camera_params[indices].copy()
        if flip.any():
            images[flip] = images[flip][:, :, ::-1]
            masks[flip] = masks[flip][:, :, ::-1]
            if parts is not None:
                parts[flip] = parts[flip][:, :, ::-1]
            if keypoints is not None:
                mirrored = keypoints[flip][:, list(KEYPOINT_FLIP)]
                mirrored[..., 0] = np.where(
                    mirrored[..., 2] > 0, self.image_size - mirrored[..., 0], 0.0
                )
                keypoints[flip] = mirrored
            # The mirrored camera (orbit azimuth -> 360 - azimuth): it sees the mirrored car, whose
            # left keypoint is the original right one, as the swapped labels say. (Mirroring in
            # clip space alone, M @ mvp, renders the same pixels for a symmetric car but keeps
            # each keypoint's side: with swapped labels every keypoint was pulled to its twin
            # and the wheels collapsed onto the symmetry plane.)
            mvp[flip] = _MIRROR_X @ mvp[flip] @ _MIRROR_X
            if camera is not None:  # = the car seen by the mirrored camera
                camera[flip, 0] = (360.0 - camera[flip, 0]) % 360.0
                camera[flip, 4] = -camera[flip, 4]
        return ReconstructBatch(
            images=torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2),
            masks=torch.from_numpy(np.ascontiguousarray(masks)),
            part_ids=None if parts is None else torch.from_numpy(np.ascontiguousarray(parts)),
            keypoints_xyv=None if keypoints is None else torch.from_numpy(keypoints).float(),
            mvp=torch.from_numpy(mvp).float(),
            content=torch.from_numpy(self.content[indices].astype(np.int64)),
            view=torch.from_numpy(self.view[indices].astype(np.int64)),
            camera_params=None if camera is None else torch.from_numpy(camera).float(),
            flipped=torch.from_numpy(np.asarray(flip, dtype=bool).copy()),
        )

    def partners(self, indices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        groups: dict[int, list[int]] = {}
        for index, content in enumerate(self.content.tolist()):
            groups.setdefault(content, []).append(index)
        out = np.full(len(indices), -1, dtype=np.int64)
        for slot, index in enumerate(indices.tolist()):
            others = [j for j in groups[int(self.content[index])] if j != index]
            if others:
                out[slot] = others[int(rng.integers(len(others)))]
        return out

    def subset(self, indices: np.ndarray) -> ArrayData:
        """The images `indices` only (labels and cameras alike)."""

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[indices]

        return ArrayData(
            self.images[indices],
            self.masks[indices],
            pick(self.part_ids),
            pick(self.keypoints_xyv),
            self.mvp[indices],
            self.content[indices],
            self.view[indices],
            pick(self.camera_params),
            self.source,
        )


def labelled_arrays(
    images: list[np.ndarray],  # [H, W, 3] uint8 each
    parts: list[np.ndarray],  # [H, W] car_20 ids each; the car mask is every part
    keypoints: list[np.ndarray],  # [12, 3] each
    mvp: list[np.ndarray],  # [4, 4] each
    camera_params: list[list[float]],  # CAMERA_FIELDS each
    codes: tuple[np.ndarray, np.ndarray],  # (content [N], view [N])
    source: str,
) -> ArrayData:
    """An ArrayData from per-image lists (the loaders' common last step)."""
    part_ids = np.stack(parts)
    return ArrayData(
        images=np.stack(images),
        masks=(part_ids > 0) & (part_ids != IGNORE_ID),
        part_ids=part_ids,
        keypoints_xyv=np.stack(keypoints).astype(np.float32),
        mvp=np.stack(mvp).astype(np.float32),
        content=codes[0].astype(np.int64),
        view=codes[1].astype(np.int64),
        camera_params=np.asarray(camera_params, dtype=np.float32),
        source=source,
    )


def load_carworld(
    root: str | Path, limit: int | None = None, progress: Progress | None = None
) -> ArrayData:
    """The first `limit` images (all when None) of a CarWorld split with ground-truth cameras."""
    from assetgan.pipeline.carworld.split import WorldSplit
    from assetgan.render.camera import Camera

    split = WorldSplit.load(root)
    count = len(split) if limit is None else min(limit, len(split))
    if count < 1:
        raise AssetganError(f"{root}: the split has no images")
    images, parts, keypoints, mvp, orbits = [], [], [], [], []
    for index in range(count):
        meta = split.meta(index)
        camera = Camera.from_json(meta["camera"])
        images.append(split.image(index))
        parts.append(split.parts(index))
        keypoints.append(np.asarray(meta["keypoints"]["xyv"], dtype=np.float32))
        mvp.append(camera.mvp.numpy())
        scene = meta["scene"]
        orbit = [scene["azimuth"], scene["elevation"], scene["distance"], scene["fov_y"]]
        orbits.append(orbit + list(scene["target"]))
        emit(progress, index + 1, count, task="loading")
    single_view = (np.arange(count), np.full(count, -1))
    return labelled_arrays(images, parts, keypoints, mvp, orbits, single_view, str(root))


def load_multiview(
    root: str | Path, limit: int | None = None, progress: Progress | None = None
) -> ArrayData:
    """The kept images of a finished multi-view set (the first `limit` in manifest order), each
    with its view code's mean camera from cameras.json (images of a view code without a camera
    are left out)."""
    from PIL import Image

    from assetgan.pipeline.multiview.sample import MultiviewSet, content_files

    multiview = MultiviewSet.load(root)
    if not multiview.finished:
        raise AssetganError(f"{root}: the multi-view set is not finished (run every shard)")
    settings = multiview.settings
    height, width = multiview.image_size
    orbits = multiview.cameras()
    records = [r for r in multiview.manifest() if r["kept"] and r["view"] in orbits]
    records = records[:limit] if limit is not None else records
    if not records:
        raise AssetganError(f"{root}: no kept image has a camera; nothing to train on")
    metas: dict[int, dict] = {}
    images, parts, keypoints, mvp, params = [], [], [], [], []
    for index, record in enumerate(records):
        content, view = int(record["content"]), int(record["view"])
        if content not in metas:
            path = Path(root) / content_files(content, settings.views)["meta"]
            metas[content] = read_json_object(path)
        orbit = orbits[view]
        images.append(np.asarray(Image.open(Path(root) / record["image"]).convert("RGB")))
        parts.append(np.asarray(Image.open(Path(root) / record["parts"])))
        keypoints.append(np.asarray(metas[content]["views"][view]["keypoints"]["xyv"], np.float32))
        mvp.append(orbit.camera(settings.fov_y, (height, width)).mvp.numpy())
        params.append(
            [orbit.azimuth, orbit.elevation, orbit.distance, settings.fov_y, *orbit.target]
        )
        emit(progress, index + 1, len(records), task="loading")
    codes = (np.array([r["content"] for r in records]), np.array([r["view"] for r in records]))
    return labelled_arrays(images, parts, keypoints, mvp, params, codes, str(root))


def load_training_data(
    root: str | Path, limit: int | None = None, progress: Progress | None = None
) -> ArrayData:
    """A multi-view set (multiview.json) or a CarWorld split (split.json), by what `root` holds."""
    root = Path(root)
    if (root / "multiview.json").is_file():
        return load_multiview(root, limit, progress)
    if (root / "split.json").is_file():
        return load_carworld(root, limit, progress)
    raise AssetganError(
        f"{root}: neither a CarWorld split (split.json) nor a multi-view set (multiview.json)"
    )
