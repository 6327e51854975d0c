"""The project's COCO layout (docs/formats.md), written in one place for every stage that emits
COCO json (CarWorld splits, generated datasets, `annotate` exports).

Categories: the car_20 parts as ids 1..19 (supercategory `car_part`) and one keypointed `car`
category (id CAR_CATEGORY_ID) with the 12 PASCAL3D+ keypoints and their skeleton. Part masks are
RLE with string counts; keypoints are flat [x0, y0, v0, x1, ...] with absent ones as 0, 0, 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINTS, coco_skeleton

CAR_CATEGORY_ID = 100  # COCO category of the whole car (keypoints); parts use car_20 ids 1..19


def categories() -> list[dict[str, Any]]:
    """The car_20 part categories followed by the keypointed `car` category."""
    parts: list[dict[str, Any]] = [
        {"id": k, "name": name, "supercategory": "car_part"} for k, name in enumerate(CAR_20) if k
    ]
    car = {
        "id": CAR_CATEGORY_ID,
        "name": "car",
        "supercategory": "vehicle",
        "keypoints": list(KEYPOINTS),
        "skeleton": coco_skeleton(),
    }
    return [*parts, car]


def rle_fields(mask: np.ndarray) -> dict[str, Any]:
    """`segmentation` (RLE, string counts), `area` and `bbox` of a [H, W] bool mask."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
    }


def part_annotations(part_ids: np.ndarray) -> list[dict[str, Any]]:
    """One annotation (without `id` / `image_id`) per part present in [H, W] uint8 car_20 ids;
    background (0) and ignore (255) pixels are left out."""
    return [
        {"category_id": int(pid), **rle_fields(part_ids == pid), "iscrowd": 0}
        for pid in np.unique(part_ids)
        if pid not in (0, IGNORE_ID)
    ]


def keypoint_fields(keypoints_xyv: np.ndarray, decimals: int) -> dict[str, Any]:
    """`keypoints` (flat x, y, v; coordinates rounded to `decimals`) and `num_keypoints` of
    [12, 3] (x, y, visibility) keypoints."""
    flat: list[float] = []
    for x, y, v in keypoints_xyv:
        flat += (
            [round(float(x), decimals), round(float(y), decimals), int(v)] if v > 0 else [0, 0, 0]
        )
    return {"keypoints": flat, "num_keypoints": int((keypoints_xyv[:, 2] > 0).sum())}


def image_annotations(part_ids: np.ndarray, keypoints_xyv: np.ndarray) -> list[dict[str, Any]]:
    """COCO annotations (without ids) of one image: one RLE per present part, then the whole
    car (its mask and its keypoints, rounded to 3 decimals)."""
    car = {
        "category_id": CAR_CATEGORY_ID,
        **rle_fields(part_ids > 0),
        "iscrowd": 0,
        **keypoint_fields(keypoints_xyv, 3),
    }
    return [*part_annotations(part_ids), car]


def coco_document(
    metas: list[dict],  # per image: {"id", "files": {"image": path}, "coco": image_annotations}
    height: int,  # image height, pixels
    width: int,  # image width, pixels
    description: str,  # info.description
    schema_version: int,  # info.schema_version (the writer's)
) -> dict[str, Any]:
    """A COCO json: images, car_20 part categories (RLE masks) and the keypointed car category;
    annotation ids count from 1 in the order given."""
    images, annotations = [], []
    for meta in metas:
        image_id = meta["id"]
        images.append(
            {"id": image_id, "file_name": meta["files"]["image"], "width": width, "height": height}
        )
        for piece in meta["coco"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **piece})
    return {
        "info": {"description": description, "schema_version": schema_version},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories(),
    }
