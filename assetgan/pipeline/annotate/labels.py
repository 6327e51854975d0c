"""The label names an annotator may use, and what each becomes (docs/annotate.md).

Part labels are the car_20 names (assetgan/assets/taxonomy.py); `background` (alias
`_background_`, LabelMe's spelling) is id 0 and `__ignore__` marks pixels left out of training
(id IGNORE_ID = 255). Keypoint labels are the 12 PASCAL3D+ names, given as LabelMe points or COCO
keypoints.
"""

from __future__ import annotations

from assetgan.assets.taxonomy import CAR_20, IGNORE_ID, KEYPOINTS, PART_ID

NUM_KEYPOINTS = len(KEYPOINTS)

# LabelMe's own spellings of background / ignore (labelme2voc's labels.txt convention).
PART_ALIASES = {"_background_": 0, "__ignore__": IGNORE_ID}


def part_id(label: str) -> int | None:
    """car_20 id of a part label (255 for __ignore__), None if the label is not a part."""
    if label in PART_ID:
        return PART_ID[label]
    return PART_ALIASES.get(label)


def keypoint_index(label: str) -> int | None:
    """Index 0..11 of a keypoint label, None if the label is not a keypoint."""
    return KEYPOINTS.index(label) if label in KEYPOINTS else None


def allowed_labels_text() -> str:
    """One-line list for error messages."""
    parts = ", ".join([*CAR_20, *PART_ALIASES])
    return f"parts: {parts}; keypoints (points only): {', '.join(KEYPOINTS)}"


def labels_txt() -> str:
    """labels.txt for `labelme --labels labels.txt` (labelme2voc order: ignore, background,
    then the parts, then the keypoints)."""
    names = ["__ignore__", "_background_", *CAR_20[1:], *KEYPOINTS]
    return "\n".join(names) + "\n"
