"""LabelMe JSON: write skeletons for an annotator, read annotated files into LabeledImage.

A LabelMe file (ANCHORS.md "2D dataset formats") holds version, flags, shapes, imagePath,
imageData, imageHeight, imageWidth. Shapes are painted in file order (later shapes cover earlier
ones, as in LabelMe's own label export), so occlusion is expressed by drawing the occluder last.
Part labels take polygon, rectangle, circle or mask shapes; keypoint labels take point shapes
(visibility 2, or 1 when the shape's flags say `occluded: true` or its description says
`occluded`). Unpainted pixels are background (0); `__ignore__` paints 255.

`imageData` is null (we export with --nodata) or LabelMe's base64 copy of the image. When it is
present it must decode to an image, and when the imagePath file exists too, to that same image:
same size and same pixels (compared as RGBA after the file's EXIF rotation, as LabelMe applies
it; when either side is a JPEG, which LabelMe re-encodes, a mean absolute difference of up to
JPEG_TOLERANCE levels counts as the same). A file holding one image and naming another is
refused, since nobody can tell which one was labeled.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import read_json_object
from assetgan.pipeline.annotate.labeled import (
    LabeledImage,
    check_points_inside,
    check_size,
    empty_keypoints,
    read_image_size,
    resolve_inside,
)
from assetgan.pipeline.annotate.labels import allowed_labels_text, keypoint_index, part_id
from assetgan.pipeline.annotate.raster import (
    RasterRule,
    circle_mask,
    polygon_mask,
    rectangle_mask,
)

LABELME_VERSION = "5.4.1"  # the LabelMe file version we write (and test against)
PART_SHAPES = {"polygon": 3, "rectangle": 2, "circle": 2, "mask": 2}  # type -> points needed
KEYPOINT_SHAPES = {"point": 1}
JPEG_TOLERANCE = 10.0  # mean |difference| (0..255 levels) allowed when either copy is a JPEG


def skeleton(
    image_name: str,  # file name of the image, relative to the JSON's folder
    height: int,
    width: int,
    shapes: list[dict[str, Any]] | None = None,  # LabelMe shapes (None = nothing annotated yet)
) -> dict[str, Any]:
    """A LabelMe document for one image (imageData null: LabelMe loads imagePath)."""
    return {
        "version": LABELME_VERSION,
        "flags": {},
        "shapes": shapes or [],
        "imagePath": image_name,
        "imageData": None,
        "imageHeight": int(height),
        "imageWidth": int(width),
    }


def polygon_shape(label: str, points: np.ndarray) -> dict[str, Any]:
    """A LabelMe polygon shape from [P, 2] (x, y) vertices."""
    return _shape(label, "polygon", [[round(float(x), 3), round(float(y), 3)] for x, y in points])


def point_shape(label: str, x: float, y: float, occluded: bool = False) -> dict[str, Any]:
    """A LabelMe point shape (a keypoint); `occluded` sets flags.occluded."""
    shape = _shape(label, "point", [[round(float(x), 3), round(float(y), 3)]])
    if occluded:
        shape["flags"] = {"occluded": True}
    return shape


def _shape(label: str, shape_type: str, points: list[list[float]]) -> dict[str, Any]:
    return {
        "label": label,
        "points": points,
        "group_id": None,
        "description": "",
        "shape_type": shape_type,
        "flags": {},
        "mask": None,
    }


def is_annotated(document: dict[str, Any]) -> bool:
    """True when a LabelMe document has at least one shape (skeletons have none)."""
    return bool(document.get("shapes"))


def read_labelme(
    path: Path,  # the LabelMe JSON file
    root: Path,  # the annotation folder; imagePath must stay inside it
    expected_size: tuple[int, int] | None = None,  # (H, W) of the exported images, if known
    rule: RasterRule = RasterRule.centre,  # how shapes become pixels (raster.py)
    document: dict[str, Any] | None = None,  # already parsed content of `path`
) -> LabeledImage:
    """Paint one LabelMe file into part ids and keypoints, checking everything a user can get
    wrong: unknown labels, shape types, points outside the image, sizes, the image file."""
    where = str(path)
    document = read_json_object(path) if document is None else document
    height, width = (
        _field_int(document, "imageHeight", where),
        _field_int(document, "imageWidth", where),
    )
    image_path = document.get("imagePath")
    if not isinstance(image_path, str):
        raise AssetganError(f"{where}: imagePath is missing or not a string")
    image_file = resolve_inside(root, image_path, where)
    embedded = _image_data(document.get("imageData"), where)  # None when imageData is null
    if image_file.is_file() or embedded is None:
        image_size = read_image_size(image_file, where)
        if embedded is not None:
            _check_same_image(embedded, image_file, where)
    else:
        image_size = (embedded.height, embedded.width)
    if image_size != (height, width):
        raise AssetganError(
            f"{where}: imageHeight x imageWidth is {height}x{width} but {image_file.name} is "
            f"{image_size[0]}x{image_size[1]}; re-open the image in LabelMe and save again"
        )
    check_size(image_size, expected_size, where, f"image {image_file.name}")
    shapes = document.get("shapes")
    if not isinstance(shapes, list):
        raise AssetganError(f"{where}: shapes must be a list")

    part_ids = np.zeros((height, width), dtype=np.uint8)
    keypoints = empty_keypoints()
    for index, shape in enumerate(shapes):
        spot = f"{where}: shapes[{index}]"
        if not isinstance(shape, dict):
            raise AssetganError(f"{spot}: expected an object")
        label = shape.get("label")
        shape_type = shape.get("shape_type") or "polygon"
        points = _points(shape, spot)
        if not isinstance(label, str):
            raise AssetganError(f"{spot}: label is missing or not a string")
        check_points_inside(points, height, width, f"{spot} ({label})")
        pid, kid = part_id(label), keypoint_index(label)
        if pid is None and kid is None:
            raise AssetganError(
                f"{spot}: unknown label {label!r}; allowed labels are {allowed_labels_text()}"
            )
        if kid is not None:
            _need(shape_type, KEYPOINT_SHAPES, points, f"{spot} ({label})", "keypoint")
            if keypoints[kid, 2] > 0:
                raise AssetganError(f"{spot}: keypoint {label!r} is labeled twice; keep one point")
            keypoints[kid] = (points[0, 0], points[0, 1], 1 if _occluded(shape) else 2)
            continue
        _need(shape_type, PART_SHAPES, points, f"{spot} ({label})", "part")
        region = _region(shape, shape_type, points, height, width, rule, spot)
        part_ids[region] = pid
    return LabeledImage(image_file.stem, where, part_ids, keypoints)


def _field_int(document: dict[str, Any], name: str, where: str) -> int:
    value = document.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AssetganError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def _image_data(data: Any, where: str) -> Image.Image | None:
    """The decoded (loaded) imageData, None when it is null; AssetganError when it is not
    base64 or not an image."""
    if data is None:
        return None
    if not isinstance(data, str):
        raise AssetganError(
            f"{where}: imageData must be a base64 string or null, got {type(data).__name__}"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise AssetganError(
            f"{where}: imageData is not valid base64 ({error}); set it to null to use imagePath"
        ) from None
    try:
        picture = Image.open(io.BytesIO(raw))
        picture.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise AssetganError(
            f"{where}: imageData decodes to {len(raw)} bytes that are not an image ({error}); "
            "set it to null to use imagePath"
        ) from None
    return picture


def _check_same_image(embedded: Image.Image, image_file: Path, where: str) -> None:
    """AssetganError when imageData holds another image than the imagePath file."""
    with Image.open(image_file) as on_disk:
        file_format = (on_disk.format or "").upper()
        upright = ImageOps.exif_transpose(on_disk)  # as LabelMe shows (and embeds) it
        disk_pixels = np.asarray(upright.convert("RGBA"), dtype=np.int16)  # [H, W, 4]
    data_pixels = np.asarray(embedded.convert("RGBA"), dtype=np.int16)  # [H, W, 4]
    if data_pixels.shape != disk_pixels.shape:
        raise AssetganError(
            f"{where}: imageData holds a {data_pixels.shape[1]}x{data_pixels.shape[0]} image "
            f"but imagePath {image_file.name} is {disk_pixels.shape[1]}x{disk_pixels.shape[0]}; "
            "they must be the same image (set imageData to null to use imagePath)"
        )
    difference = np.abs(data_pixels - disk_pixels)
    lossy = "JPEG" in (file_format, (embedded.format or "").upper())
    if (lossy and difference.mean() > JPEG_TOLERANCE) or (not lossy and difference.any()):
        changed = int(difference.any(axis=-1).sum())
        raise AssetganError(
            f"{where}: imageData is a different image from imagePath {image_file.name} "
            f"({changed} of {difference.shape[0] * difference.shape[1]} pixels differ); they "
            "must be the same image (set imageData to null to use imagePath)"
        )


def _points(shape: dict[str, Any], spot: str) -> np.ndarray:
    raw = shape.get("points")
    try:
        points = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        points = None
    if points is None or points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise AssetganError(f"{spot}: points must be a list of [x, y] pairs, got {raw!r}"[:300])
    if not np.isfinite(points).all():
        raise AssetganError(f"{spot}: points contain NaN or infinity")
    return points


def _need(
    shape_type: str, allowed: dict[str, int], points: np.ndarray, spot: str, kind: str
) -> None:
    if shape_type not in allowed:
        raise AssetganError(
            f"{spot}: shape_type {shape_type!r} cannot carry a {kind} label; use "
            f"{' or '.join(sorted(allowed))}"
        )
    need = allowed[shape_type]
    ok = len(points) >= need if shape_type == "polygon" else len(points) == need
    if not ok:
        raise AssetganError(
            f"{spot}: a {shape_type} needs {'at least ' if shape_type == 'polygon' else ''}"
            f"{need} points, got {len(points)}"
        )


def _occluded(shape: dict[str, Any]) -> bool:
    flags = shape.get("flags") or {}
    description = str(shape.get("description") or "")
    return bool(flags.get("occluded")) or "occluded" in description.lower()


def _region(
    shape: dict[str, Any],
    shape_type: str,
    points: np.ndarray,
    height: int,
    width: int,
    rule: RasterRule,
    spot: str,
) -> np.ndarray:
    """[H, W] bool pixels of one part shape."""
    if shape_type == "polygon":
        return polygon_mask(points, height, width, rule)
    if shape_type == "rectangle":
        return rectangle_mask(points, height, width, rule)
    if shape_type == "circle":
        return circle_mask(points, height, width, rule)
    return _mask_shape(shape, points, height, width, spot)


def _mask_shape(
    shape: dict[str, Any], points: np.ndarray, height: int, width: int, spot: str
) -> np.ndarray:
    """LabelMe 5 `mask` shapes: a base64 PNG placed with its top-left at points[0]."""
    try:
        raw = base64.b64decode(shape.get("mask") or "", validate=True)
        with Image.open(io.BytesIO(raw)) as picture:
            patch = np.asarray(picture.convert("L")) > 0
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise AssetganError(f"{spot}: mask is not a base64 PNG ({error})") from None
    left, top = (math.floor(v) for v in points.min(axis=0))
    if top + patch.shape[0] > height or left + patch.shape[1] > width:
        raise AssetganError(
            f"{spot}: the {patch.shape[1]}x{patch.shape[0]} mask placed at ({left}, {top}) "
            f"runs outside the {width}x{height} image"
        )
    region = np.zeros((height, width), dtype=bool)
    region[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return region
