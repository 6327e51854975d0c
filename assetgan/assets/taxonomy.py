"""The car taxonomy every stage shares: car_20 parts, merges to car_12 and car_5, the 12
PASCAL3D+ keypoints with a skeleton, and a colour palette for visualising part maps.

Names and order follow the DatasetGAN car partonomy (docs/carworld.md); conventions are in
docs/conventions.md.
Left means the car's own left (+X in the world frame, docs/conventions.md).
"""

from __future__ import annotations

import numpy as np

from assetgan.core.errors import AssetganError

IGNORE_ID = (
    255  # part id of unlabeled pixels (LabelMe's __ignore__; ignored by losses, metrics, COCO)
)

# car_20: the master part list (index = label id in part PNGs; 0 = background).
CAR_20 = (
    "background",
    "back_bumper",
    "bumper",
    "car_body",
    "car_lights",
    "door",
    "fender",
    "grilles",
    "handles",
    "hoods",
    "licensePlate",
    "mirror",
    "roof",
    "running_boards",
    "tailLight",
    "tire",
    "trunk_lids",
    "wheelhub",
    "window",
    "windshield",
)
PART_ID = {name: index for index, name in enumerate(CAR_20)}

# car_12 (ADE): background, car (any other non-zero car_20 part) and ten named parts.
CAR_12 = (
    "background",
    "car",
    "head light",
    "licence plate",
    "mirror",
    "tail light",
    "wheel",
    "window",
    "wind shield",
    "door",
    "handle",
    "wheelhub",
)
# car_20 name -> car_12 name; every car_20 part not listed here maps to "car".
_CAR20_NAMED_IN_CAR12 = {
    "background": "background",
    "car_lights": "head light",
    "licensePlate": "licence plate",
    "mirror": "mirror",
    "tailLight": "tail light",
    "tire": "wheel",
    "window": "window",
    "windshield": "wind shield",
    "door": "door",
    "handles": "handle",
    "wheelhub": "wheelhub",
}
CAR20_TO_CAR12 = np.array(
    [CAR_12.index(_CAR20_NAMED_IN_CAR12.get(name, "car")) for name in CAR_20], dtype=np.uint8
)

# car_5 (PASCAL-Car-5): body, plate, light, wheel, window + background.
CAR_5 = ("background", "body", "plate", "light", "wheel", "window")
_CAR12_TO_CAR5_NAMES = {
    "background": "background",
    "car": "body",
    "head light": "light",
    "licence plate": "plate",
    "mirror": "body",
    "tail light": "light",
    "wheel": "wheel",
    "window": "window",
    "wind shield": "window",
    "door": "body",
    "handle": "body",
    "wheelhub": "wheel",
}
CAR12_TO_CAR5 = np.array([CAR_5.index(_CAR12_TO_CAR5_NAMES[n]) for n in CAR_12], dtype=np.uint8)
CAR20_TO_CAR5 = CAR12_TO_CAR5[CAR20_TO_CAR12]

TAXONOMIES = {"car_20": CAR_20, "car_12": CAR_12, "car_5": CAR_5}

# The 12 PASCAL3D+ car keypoints, in the order of ANCHORS.md (PASCAL3D+ spellings).
KEYPOINTS = (
    "left_front_wheel",
    "right_front_wheel",
    "left_back_wheel",
    "right_back_wheel",
    "upper_left_windshield",
    "upper_right_windshield",
    "upper_left_rearwindow",
    "upper_right_rearwindow",
    "left_front_light",
    "right_front_light",
    "left_back_trunk",
    "right_back_trunk",
)
KEYPOINT_ID = {name: index for index, name in enumerate(KEYPOINTS)}
# Mirror image of every keypoint (for horizontal-flip augmentation): left <-> right.
KEYPOINT_FLIP = tuple(
    KEYPOINT_ID[name.replace("left", "@").replace("right", "left").replace("@", "right")]
    for name in KEYPOINTS
)
# Skeleton as 0-based index pairs; COCO wants 1-based (see coco_skeleton()).
SKELETON = tuple(
    (KEYPOINT_ID[a], KEYPOINT_ID[b])
    for a, b in (
        ("left_front_wheel", "left_back_wheel"),
        ("right_front_wheel", "right_back_wheel"),
        ("left_front_wheel", "right_front_wheel"),
        ("left_back_wheel", "right_back_wheel"),
        ("left_front_light", "right_front_light"),
        ("left_front_light", "left_front_wheel"),
        ("right_front_light", "right_front_wheel"),
        ("left_front_light", "upper_left_windshield"),
        ("right_front_light", "upper_right_windshield"),
        ("upper_left_windshield", "upper_right_windshield"),
        ("upper_left_windshield", "upper_left_rearwindow"),
        ("upper_right_windshield", "upper_right_rearwindow"),
        ("upper_left_rearwindow", "upper_right_rearwindow"),
        ("upper_left_rearwindow", "left_back_trunk"),
        ("upper_right_rearwindow", "right_back_trunk"),
        ("left_back_trunk", "right_back_trunk"),
        ("left_back_trunk", "left_back_wheel"),
        ("right_back_trunk", "right_back_wheel"),
    )
)

# Visualisation colours (uint8 RGB) of the car_20 parts; background black.
PALETTE_20 = np.array(
    [
        (0, 0, 0),  # background
        (128, 64, 0),  # back_bumper
        (255, 128, 0),  # bumper
        (110, 110, 110),  # car_body
        (255, 255, 120),  # car_lights
        (0, 90, 255),  # door
        (0, 190, 190),  # fender
        (170, 0, 255),  # grilles
        (255, 0, 255),  # handles
        (255, 60, 60),  # hoods
        (255, 255, 255),  # licensePlate
        (0, 255, 0),  # mirror
        (160, 0, 0),  # roof
        (120, 90, 40),  # running_boards
        (200, 0, 100),  # tailLight
        (40, 40, 40),  # tire
        (230, 170, 255),  # trunk_lids
        (200, 200, 0),  # wheelhub
        (90, 200, 255),  # window
        (0, 60, 120),  # windshield
    ],
    dtype=np.uint8,
)


def merge_parts(part_ids: np.ndarray, target: str) -> np.ndarray:
    """Map car_20 label ids (any shape, integer) to `car_12` or `car_5` ids (uint8)."""
    table = {"car_20": None, "car_12": CAR20_TO_CAR12, "car_5": CAR20_TO_CAR5}
    if target not in table:
        raise AssetganError(f"unknown taxonomy {target!r}; choose one of {sorted(table)}")
    part_ids = np.asarray(part_ids)
    if part_ids.size and (part_ids.min() < 0 or part_ids.max() >= len(CAR_20)):
        raise AssetganError(
            f"car_20 label ids must be in 0..{len(CAR_20) - 1}, got "
            f"{int(part_ids.min())}..{int(part_ids.max())}"
        )
    if table[target] is None:
        return part_ids.astype(np.uint8)
    return table[target][part_ids]


def car20_to_car12(part_ids: np.ndarray) -> np.ndarray:
    """car_20 ids -> car_12 (ADE) ids, same shape, uint8."""
    return merge_parts(part_ids, "car_12")


def car12_to_car5(part_ids: np.ndarray) -> np.ndarray:
    """car_12 ids -> car_5 (PASCAL) ids, same shape, uint8."""
    part_ids = np.asarray(part_ids)
    if part_ids.size and (part_ids.min() < 0 or part_ids.max() >= len(CAR_12)):
        raise AssetganError(f"car_12 label ids must be in 0..{len(CAR_12) - 1}")
    return CAR12_TO_CAR5[part_ids]


def car20_to_car5(part_ids: np.ndarray) -> np.ndarray:
    """car_20 ids -> car_5 (PASCAL) ids, same shape, uint8 (= car12_to_car5(car20_to_car12))."""
    return merge_parts(part_ids, "car_5")


def coco_skeleton() -> list[list[int]]:
    """The skeleton as COCO wants it: 1-based keypoint index pairs."""
    return [[a + 1, b + 1] for a, b in SKELETON]


def colorize(part_ids: np.ndarray) -> np.ndarray:
    """[H, W] car_20 ids -> [H, W, 3] uint8 visualisation with PALETTE_20."""
    return PALETTE_20[np.asarray(part_ids)]
