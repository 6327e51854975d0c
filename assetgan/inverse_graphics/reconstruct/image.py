"""run(ReconstructImageConfig) -> ReconstructImageResult: reconstruct cars from single images
(`assetgan reconstruct image`, docs/reconstruct.md).

Any RGB image works: it is centre-cropped to a square and resized to the network's input size
(so the car should be roughly centred and fill most of the frame, as in CarWorld renders and
generator samples). The input view's camera (pose.py) is by default PnP of the keypoints the
shipped CarWorld segmenter detects in the image against the reconstruction's own 3D keypoints
(`--camera pnp`; the head's camera where PnP finds none), or the network's camera head
(`--camera head`); keypoints.json says which. Per image, in OUT/<image stem>/:

    asset.json, asset.safetensors, texture.png   the CarAsset directory (`assetgan export` reads it)
    mesh.glb                                     one node per car_20 part, face colours
    mesh.obj, mesh.mtl                           textured OBJ (texture.png), one group per part
    parts.png                                    car_20 ids rendered in the input view at the
                                                 input's size (8-bit grayscale, 0 = background)
    parts_colour.png                             the same in the part palette
    keypoints.json                               3D keypoints, their 2D re-projection, the camera
    turntable.png                                8 views: texture rows, then part-colour rows
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from assetgan.assets.taxonomy import KEYPOINTS, colorize
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_bytes, atomic_write_json, atomic_write_text
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.reconstruct.asset_files import obj_files, reconstruction_asset
from assetgan.inverse_graphics.reconstruct.evaluate import rendered_part_ids
from assetgan.inverse_graphics.reconstruct.model import (
    CAMERA_FIELDS,
    ReconstructNet,
    load_reconstructor,
)
from assetgan.inverse_graphics.reconstruct.pose import (
    SHIPPED_SEGMENTER,
    CameraSource,
    detect_keypoints,
    input_cameras,
    resized,
)
from assetgan.inverse_graphics.reconstruct.render import render_reconstruction
from assetgan.inverse_graphics.reconstruct.sheet import turntable
from assetgan.render.asset import part_glb
from assetgan.render.camera import Camera

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "assets/reconstruct64/model.safetensors"
# Keypoint visibility: visible when no rendered surface is nearer than this (metres).
OCCLUSION_TOLERANCE_M = 0.15


@dataclass(frozen=True)
class ReconstructImageConfig:
    """One `reconstruct image` run."""

    images: tuple[Path, ...]  # image files and/or folders of images
    out: Path  # OUT/<image stem>/ per image
    model: Path = DEFAULT_MODEL  # reconstruction network checkpoint (kind reconstruct_net)
    views: int = 8  # turntable views
    view_size: int = 128  # turntable tile side in pixels
    device: Device = Device.auto  # where the network runs
    camera: CameraSource = CameraSource.pnp  # the input view's camera (pose.py)
    segmenter: Path = SHIPPED_SEGMENTER  # keypoint detector for `camera = pnp`

    def validate(self) -> ReconstructImageConfig:
        if not self.images:
            raise AssetganError("give at least one image or folder")
        if not 1 <= self.views <= 36 or self.view_size < 16:
            raise AssetganError("--views must be in 1..36 and the view size >= 16 px")
        if not self.model.is_file():
            raise AssetganError(
                f"{self.model}: no such reconstruction network; pass --model RUN/model.safetensors "
                "(a `reconstruct train` run) or reinstall the package (the shipped network is "
                "assets/reconstruct64/model.safetensors)"
            )
        if self.camera is CameraSource.pnp and not self.segmenter.exists():
            raise AssetganError(f"{self.segmenter}: no such segmenter (needed by --camera pnp)")
        return self


@dataclass(frozen=True)
class ReconstructImageResult:
    """What `reconstruct image` wrote."""

    out: Path  # the output directory
    cars: tuple[Path, ...]  # OUT/<stem> per image, in input order

    def summary(self) -> str:
        return f"wrote {len(self.cars)} reconstruction(s) to {self.out}"


def find_images(inputs: tuple[Path, ...]) -> list[Path]:
    """Image files of `inputs` (folders: their image files, sorted); AssetganError for a missing
    path, a folder without images, or two inputs with the same stem."""
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                raise AssetganError(
                    f"{path}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})"
                )
            found += inside
        elif path.is_file():
            found.append(path)
        else:
            raise AssetganError(f"{path}: no such file or folder")
    stems = [p.stem for p in found]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise AssetganError(f"two inputs share the name {twice[0]!r}; outputs go to OUT/<stem>/")
    return found


def read_rgb(path: Path) -> np.ndarray:
    """[H, W, 3] uint8 from an RGB(A) or palette image; AssetganError for anything else."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("RGB", "RGBA", "P"):
                return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise AssetganError(f"{path}: unreadable image ({error})") from None
    raise AssetganError(
        f"{path}: image mode {mode} has the wrong channels; give an RGB (or RGBA) colour image"
    )


def square_input(image: np.ndarray, size: int) -> tuple[np.ndarray, int, int, int]:
    """(the centre square resized to size x size, its side, top, left) of image [H, W, 3]."""
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = Image.fromarray(image[top : top + side, left : left + side])
    resized = np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))
    return resized, side, top, left


@torch.no_grad()
def reconstruct_one(
    model: ReconstructNet, path: Path, config: ReconstructImageConfig, device: str
) -> Path:
    """Write OUT/<stem>/ for one image (module docstring)."""
    image = read_rgb(path)
    height, width = image.shape[:2]
    size = model.config.image_size
    square, side, top, left = square_input(image, size)
    pixels = torch.from_numpy(square.copy()).permute(2, 0, 1)[None].float().to(device) / 255.0
    reconstruction = model(pixels)
    template = model.template_tables(device)
    detected = None
    if config.camera is CameraSource.pnp:
        detected = detect_keypoints(square[None], config.segmenter)
    cameras, sources = input_cameras(
        config.camera, reconstruction.camera, reconstruction.keypoints, detected, size
    )
    camera = resized(cameras[0], side)
    mvp = camera.mvp[None].to(device)
    rendered = render_reconstruction(reconstruction, template, mvp, (side, side), True)
    part_ids = np.zeros((height, width), np.uint8)
    part_ids[top : top + side, left : left + side] = rendered_part_ids(rendered)[0].cpu().numpy()
    directory = config.out / path.stem
    asset = reconstruction_asset(reconstruction, 0, template, str(path))
    asset.save(directory)
    atomic_write_bytes(directory / "mesh.glb", part_glb(asset))
    obj, mtl = obj_files(asset)
    atomic_write_text(directory / "mesh.obj", obj)
    atomic_write_text(directory / "mesh.mtl", mtl)
    atomic_write_png(directory / "parts.png", part_ids)
    atomic_write_png(directory / "parts_colour.png", colorize(part_ids))
    atomic_write_json(
        directory / "keypoints.json",
        keypoint_record(
            reconstruction.keypoints[0].cpu(),
            reconstruction.camera[0].cpu().tolist(),
            sources[0],
            camera,
            rendered.depth[0].cpu().numpy(),
            (top, left, side),
        ),
    )
    atomic_write_png(
        directory / "turntable.png",
        turntable(reconstruction, 0, template, config.views, config.view_size),
    )
    return directory


def keypoint_record(
    keypoints: torch.Tensor,  # [12, 3] metres
    orbit: list[float],  # the camera head's parameters (CAMERA_FIELDS)
    source: str,  # where `camera` came from (pose.input_cameras)
    camera: Camera,  # the input view's camera, for the side x side crop
    surface_depth: np.ndarray,  # [side, side] camera depth of the rendered surface, 0 = empty
    crop: tuple[int, int, int],  # (top, left, side) of the crop in the input image
) -> dict[str, Any]:
    """keypoints.json: 3D keypoints (metres), their projection into the input image (pixels,
    docs/conventions.md) with v = 2 visible, 1 hidden by the car itself, 0 outside; the camera
    (its source, the head's orbit parameters, the crop, the matrices)."""
    top, left, side = crop
    xy, depth = camera.project(keypoints)
    xyv = []
    for (x, y), z in zip(xy.tolist(), depth.tolist(), strict=True):
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < side and 0 <= row < side) or z <= 0:
            visibility = 0
        else:
            nearest = float(surface_depth[row, col])
            visibility = 1 if 0 < nearest < z - OCCLUSION_TOLERANCE_M else 2
        xyv.append([x + left, y + top, visibility])
    return {
        "names": list(KEYPOINTS),
        "world": keypoints.tolist(),
        "xyv": xyv,
        "camera": {
            "source": source,
            "head": dict(zip(CAMERA_FIELDS, orbit, strict=True)),
            "crop": {"top": top, "left": left, "side": side},
            **camera.to_json(),
        },
    }


def run(config: ReconstructImageConfig, progress: Progress | None = None) -> ReconstructImageResult:
    """Reconstruct every image of `config.images`."""
    config.validate()
    paths = find_images(config.images)
    for path in paths:  # check every input before writing anything
        read_rgb(path)
    device = resolve_device(config.device)
    model, _ = load_reconstructor(config.model, device)
    cars = []
    for index, path in enumerate(paths):
        cars.append(reconstruct_one(model, path, config, device))
        emit(progress, index + 1, len(paths), task="images")
    return ReconstructImageResult(config.out, tuple(cars))
