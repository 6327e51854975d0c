"""Why keypoints learned from generated pairs fail (issue 13: PCK 0.012): the interpreter's
heatmaps on generated images against the annotator (the CarWorld segmenter that drew the
simulated annotations) on the same images, decoded at the interpreter's visibility threshold
and at lower ones; and how many keypoints the generated pairs mark visible against real renders.

If the peaks sit at the right places (high PCK against the annotator when every peak counts) but
below the threshold, the visibility threshold is what drops the keypoints; if they sit elsewhere
the heatmaps themselves are wrong; if the annotator marks few keypoints on generated images, the
annotations already lack them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from assetgan.core.device import resolve_device
from assetgan.core.metrics import keypoint_hits, share
from assetgan.pipeline.datasets.layout import GeneratedDataset
from assetgan.pipeline.downstream.checkpoint import load_segmenter
from assetgan.pipeline.downstream.data import load_labeled
from assetgan.pipeline.downstream.evaluate import car_bbox_sizes
from assetgan.pipeline.downstream.predict import predict as segment
from assetgan.pipeline.interpreter.checkpoint import load_interpreter
from assetgan.pipeline.interpreter.evaluate import visibility_thresholds
from assetgan.pipeline.interpreter.predict import decode_keypoints, predict
from assetgan.pipeline.paper.config import PaperReportConfig
from assetgan.pipeline.stylegan.checkpoint import load_generator

PROBE_IMAGES = 64  # generated pairs looked at (the first ones by seed)
LOWER_THRESHOLDS = (0.3, 0.0)  # heatmap peaks decoded as visible besides the interpreter's own


def keypoint_probe(
    config: PaperReportConfig,
    interpreter_path: Path,  # the ours-DatasetGAN interpreter
    dataset: Path,  # its generated pairs
    train: Path,  # real labeled renders (their visible keypoints per image)
) -> dict[str, Any]:
    """Figures for the keypoint question (module docstring)."""
    device = resolve_device(config.device)
    generated = GeneratedDataset.load(dataset)
    records = generated.records()[:PROBE_IMAGES]
    metas = [generated.sample_meta(r["seed"]) for r in records]
    marked = np.array([[k[2] == 2 for k in m["keypoints"]["xyv"]] for m in metas])  # [N, K]
    real = load_labeled(train, limit=len(records)).keypoints_xyv[..., 2] == 2
    generator = load_generator(config.generator, device)
    interpreter = load_interpreter(interpreter_path, device=device)
    ws = torch.from_numpy(np.stack([np.load(dataset / r["w"]) for r in records]))
    heatmaps, images = [], []
    for start in range(0, len(ws), 8):
        prediction = predict(interpreter, generator, ws[start : start + 8])
        heatmaps.append(prediction.heatmaps)
        images.append(prediction.images)
    heat, pictures = np.concatenate(heatmaps), np.concatenate(images)  # [N, K, H, W], [N, H, W, 3]
    annotator, _ = load_segmenter(config.segmenter, device)
    parts, truth = segment(annotator, pictures)  # the annotator's labels of the same images
    annotator_visible = truth[..., 2] == 2
    peaks = heat.reshape(*heat.shape[:2], -1).max(-1)  # [N, K]
    visible_min, _ = visibility_thresholds(interpreter)
    out: dict[str, Any] = {
        "images": len(records),
        "generated_visible_per_image": float(marked.sum(1).mean()),
        "real_visible_per_image": float(real.sum(1).mean()),
        "generated_images_without_visible": float((marked.sum(1) == 0).mean()),
        "annotator_visible_per_image": float(annotator_visible.sum(1).mean()),
        "interpreter_visible_threshold": visible_min,
        "peak_where_annotator_visible_median": _median(peaks[annotator_visible]),
        "peak_where_annotator_not_visible_median": _median(peaks[~annotator_visible]),
        "decoded": {},
    }
    sizes = car_bbox_sizes(parts)
    for threshold in (visible_min, *LOWER_THRESHOLDS):
        decoded = np.stack([decode_keypoints(h, threshold, threshold)[:, :3] for h in heat])
        hit, counted = keypoint_hits(truth, decoded, 0.1 * sizes, 2)
        out["decoded"][f"{threshold:g}"] = {
            "visible_per_image": float((decoded[..., 2] == 2).sum(1).mean()),
            "pck@0.1_vs_annotator": share(hit, counted),
            "visibility_accuracy": float(((decoded[..., 2] == 2) == annotator_visible).mean()),
        }
    return out


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None
