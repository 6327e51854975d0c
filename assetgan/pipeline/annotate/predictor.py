"""Predictors: a segmenter as a plain function from images to part ids and keypoints.

The one `Predictor` type of the project (annotate simulate labels generator samples with one,
multiview/viewcode.py measures the view code with one). Segmenters are pluggable: a factory
`(checkpoint path, device) -> Predictor`, named on the command line as `module:function` or found
from the checkpoint's `assetgan_kind` in PREDICTORS. `assetgan segment train` makes such a
checkpoint (kind `downstream_segmenter`, docs/segment.md); assetgan/assets/segmenter64/ holds one
trained on CarWorld.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from assetgan.core.errors import AssetganError

# images [N, H, W, 3] uint8 -> (part ids [N, H, W] uint8 car_20, keypoints [N, 12, 3] (x, y, v))
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
PredictorFactory = Callable[[Path, str], Predictor]  # (checkpoint, device) -> predictor
# checkpoint `assetgan_kind` -> "module:function" of its PredictorFactory
PREDICTORS: dict[str, str] = {
    "downstream_segmenter": "assetgan.pipeline.downstream.predict:predictor_factory",
}


def load_factory(spec: str) -> PredictorFactory:
    """`package.module:function` -> the function (AssetganError if it cannot be imported)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise AssetganError(f"--predictor {spec!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise AssetganError(
            f"--predictor {spec!r}: cannot import {module_name} ({error})"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise AssetganError(f"--predictor {spec!r}: {module_name} has no function {attribute}")
    return factory


def load_predictor(checkpoint: Path, device: str, spec: str | None = None) -> Predictor:
    """The predictor of a segmenter checkpoint, by `spec` or by the checkpoint's kind."""
    if not checkpoint.is_file():
        raise AssetganError(f"{checkpoint}: no such segmenter checkpoint")
    if spec is None:
        kind = _checkpoint_kind(checkpoint)
        if kind not in PREDICTORS:
            raise AssetganError(
                f"{checkpoint}: no predictor is registered for checkpoint kind {kind!r}; use a "
                f"checkpoint from `assetgan segment train` or pass "
                f"--predictor package.module:function"
            )
        spec = PREDICTORS[kind]
    return load_factory(spec)(checkpoint, device)


def _checkpoint_kind(path: Path) -> str | None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("assetgan_kind")
    except (SafetensorError, OSError, ValueError):
        return None
