"""What `assetgan export CAR` reads: every input becomes the neutral `CarAsset` (render/asset.py).

- an asset directory (`asset.json` + `asset.safetensors` [+ `texture.png`]): what the
  reconstruction stage writes with `CarAsset.save`, read with `CarAsset.load`;
- a part-node GLB / glTF (one mesh node per car_20 part, named by the part): CarWorld's
  `meshes/ID.glb`; when it sits in a CarWorld split, the 3D keypoints come from `meta/ID.json`;
- a CarWorld car model in memory (`carworld.model.car_asset`, which CarWorld's meshes/ID.glb
  writer uses too).
Layouts: docs/export.md "Inputs".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import read_json_object
from assetgan.render.asset import (
    CarAsset,
    keypoints_from_json,
    read_part_glb,
)

GLTF_SUFFIXES = (".glb", ".gltf")


def split_keypoints(glb_path: Path) -> np.ndarray | None:
    """The world keypoints of a CarWorld split's `meshes/ID.glb` from `meta/ID.json`, or None
    when the file does not sit in a split."""
    meta_path = glb_path.parent.parent / "meta" / f"{glb_path.stem}.json"
    if glb_path.parent.name != "meshes" or not meta_path.is_file():
        return None
    meta = read_json_object(meta_path)
    try:
        world = meta["keypoints"]["world"]
    except (KeyError, TypeError):
        raise AssetganError(f"{meta_path}: no keypoints.world in the CarWorld meta") from None
    return keypoints_from_json(world, str(meta_path))


def load_car(path: str | Path) -> CarAsset:
    """Read CAR (asset directory or part-node GLB/glTF) into a validated CarAsset."""
    path = Path(path)
    if path.is_dir():
        return CarAsset.load(path)
    if not path.exists():
        raise AssetganError(f"{path}: no such file or directory")
    if path.suffix.lower() not in GLTF_SUFFIXES:
        raise AssetganError(
            f"{path}: unsupported input {path.suffix!r}; CAR is a part-labelled .glb/.gltf "
            "(CarWorld meshes/ID.glb) or an asset directory (docs/export.md)"
        )
    return read_part_glb(path, keypoints=split_keypoints(path))
