"""COCO json <-> LabeledImage: part masks as polygons or RLE (pycocotools), keypoints [x, y, v].

Reading: part categories are named by car_20 names (plus `__ignore__`); a category that carries a
`keypoints` list (e.g. CarWorld's `car`) gives the keypoints, named by the 12 PASCAL3D+ names, and
its segmentation is not painted (it is the whole object). Part annotations are painted in file
order, later over earlier. `file_name` must stay inside the json's folder; when that file exists
it must be a readable image of the declared size.
Writing (`to_coco`): one RLE annotation per present part and one keypointed `car` annotation per
image, the layout CarWorld's coco.json uses (assetgan/pipeline/coco_format.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from assetgan.assets.taxonomy import KEYPOINTS
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
from assetgan.pipeline.coco_format import (
    CAR_CATEGORY_ID,
    categories,
    keypoint_fields,
    part_annotations,
)


def read_coco(
    path: Path,  # the COCO json
    expected_size: tuple[int, int] | None = None,  # (H, W) of the exported images, if known
) -> list[LabeledImage]:
    """Every image of a COCO file as a LabeledImage (images without annotations included)."""
    where = str(path)
    document = read_json_object(path)
    for key in ("images", "annotations", "categories"):
        if not isinstance(document.get(key), list):
            raise AssetganError(f"{where}: '{key}' is missing or not a list")
    part_of: dict[int, int] = {}  # category id -> part id
    keypoint_rows: dict[int, list[int]] = {}  # category id -> keypoint index per COCO slot
    for index, category in enumerate(document["categories"]):
        spot = f"{where}: categories[{index}]"
        cid, name = category.get("id"), category.get("name")
        if not isinstance(cid, int) or not isinstance(name, str):
            raise AssetganError(f"{spot}: needs an integer id and a string name")
        if category.get("keypoints"):
            rows = []
            for slot, kp_name in enumerate(category["keypoints"]):
                kid = keypoint_index(kp_name) if isinstance(kp_name, str) else None
                if kid is None:
                    raise AssetganError(
                        f"{spot}: unknown keypoint name {kp_name!r} at slot {slot}; allowed "
                        f"labels are {allowed_labels_text()}"
                    )
                rows.append(kid)
            keypoint_rows[cid] = rows
            continue
        pid = part_id(name)
        if pid is None:
            raise AssetganError(
                f"{spot}: unknown label {name!r}; allowed labels are {allowed_labels_text()}"
            )
        part_of[cid] = pid

    root = path.parent
    images: dict[int, dict[str, Any]] = {}
    for index, image in enumerate(document["images"]):
        spot = f"{where}: images[{index}]"
        iid, height, width = image.get("id"), image.get("height"), image.get("width")
        if not all(isinstance(v, int) for v in (iid, height, width)):
            raise AssetganError(f"{spot}: needs integer id, height and width")
        file_path = resolve_inside(root, image.get("file_name") or "", spot, "file_name")
        if file_path.exists():
            got = read_image_size(file_path, spot)
            if got != (height, width):
                raise AssetganError(
                    f"{spot}: declared {width}x{height} (WxH) but {file_path.name} is "
                    f"{got[1]}x{got[0]}"
                )
        check_size((height, width), expected_size, spot, f"image {file_path.name}")
        images[iid] = {
            "name": file_path.stem,
            "parts": np.zeros((height, width), dtype=np.uint8),
            "keypoints": empty_keypoints(),
            "annotated": False,
        }

    for index, annotation in enumerate(document["annotations"]):
        spot = f"{where}: annotations[{index}]"
        iid, cid = annotation.get("image_id"), annotation.get("category_id")
        if iid not in images:
            raise AssetganError(f"{spot}: image_id {iid!r} is not in images")
        target = images[iid]
        target["annotated"] = True
        height, width = target["parts"].shape
        if cid in keypoint_rows:
            _read_keypoints(
                annotation, keypoint_rows[cid], target["keypoints"], height, width, spot
            )
            continue
        if cid not in part_of:
            raise AssetganError(f"{spot}: category_id {cid!r} is not in categories")
        region = _decode_segmentation(annotation.get("segmentation"), height, width, spot)
        target["parts"][region] = part_of[cid]

    return [
        LabeledImage(
            t["name"], f"{where} (image {iid})", t["parts"], t["keypoints"], t["annotated"]
        )
        for iid, t in images.items()
    ]


def _decode_segmentation(segmentation: Any, height: int, width: int, spot: str) -> np.ndarray:
    """[H, W] bool from COCO polygons ([[x0, y0, x1, y1, ...], ...]) or RLE ({size, counts})."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        if list(size or []) != [height, width]:
            raise AssetganError(
                f"{spot}: RLE size {size} does not match the image's [height, width] "
                f"[{height}, {width}]"
            )
        rle = dict(segmentation)
        if isinstance(rle.get("counts"), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(rle, height, width)
        elif isinstance(rle.get("counts"), str):
            rle["counts"] = rle["counts"].encode("ascii")
        else:
            raise AssetganError(f"{spot}: RLE counts must be a string or a list of integers")
        try:
            return mask_utils.decode(rle).astype(bool)
        except (ValueError, TypeError) as error:
            raise AssetganError(f"{spot}: RLE cannot be decoded ({error})") from None
    if isinstance(segmentation, list) and segmentation:
        polygons = []
        for ring_index, ring in enumerate(segmentation):
            coords = np.asarray(ring, dtype=np.float64) if isinstance(ring, list) else None
            if coords is None or coords.ndim != 1 or len(coords) < 6 or len(coords) % 2:
                raise AssetganError(
                    f"{spot}: segmentation[{ring_index}] must be a flat list of at least "
                    f"3 x, y pairs"
                )
            points = coords.reshape(-1, 2)
            check_points_inside(points, height, width, f"{spot}: segmentation[{ring_index}]")
            polygons.append(coords.tolist())
        rles = mask_utils.frPyObjects(polygons, height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    raise AssetganError(f"{spot}: segmentation must be polygons or an RLE object")


def _read_keypoints(
    annotation: dict[str, Any],
    rows: list[int],
    keypoints: np.ndarray,  # [12, 3] filled in place
    height: int,
    width: int,
    spot: str,
) -> None:
    flat = annotation.get("keypoints")
    if not isinstance(flat, list) or len(flat) != 3 * len(rows):
        raise AssetganError(
            f"{spot}: keypoints must be a flat list of {3 * len(rows)} numbers (x, y, v for "
            f"each of the category's {len(rows)} keypoints)"
        )
    triples = np.asarray(flat, dtype=np.float64).reshape(-1, 3)
    for slot, (x, y, v) in enumerate(triples):
        if v == 0:
            continue
        if v not in (1, 2):
            raise AssetganError(f"{spot}: keypoint {slot} has visibility {v:g}; use 0, 1 or 2")
        check_points_inside(
            np.array([[x, y]]), height, width, f"{spot}: keypoint {KEYPOINTS[rows[slot]]}"
        )
        if keypoints[rows[slot], 2] > 0:
            raise AssetganError(f"{spot}: keypoint {KEYPOINTS[rows[slot]]} is labeled twice")
        keypoints[rows[slot]] = (x, y, v)


def to_coco(labeled: list[LabeledImage], file_names: list[str]) -> dict[str, Any]:
    """A COCO document: car_20 part categories (RLE masks; 255 = ignore is left out) and a
    keypointed `car` category per image."""
    if len(labeled) != len(file_names):
        raise AssetganError("to_coco: one file name per labeled image is needed")
    images, annotations = [], []
    for image_id, (item, file_name) in enumerate(zip(labeled, file_names, strict=True), 1):
        height, width = item.size
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        car = {
            "category_id": CAR_CATEGORY_ID,
            **keypoint_fields(item.keypoints_xyv, 4),
            "iscrowd": 0,
        }
        for piece in [*part_annotations(item.part_ids), car]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **piece})
    return {"images": images, "annotations": annotations, "categories": categories()}
