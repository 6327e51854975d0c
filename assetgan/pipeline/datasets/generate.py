"""run(DatasetGenerateConfig) -> GeneratedDataset: N labeled pairs with JS-uncertainty filtering
(DatasetGAN).

Per seed: w+ from the seed (NVIDIA's draw, truncation), the image, part ids by the majority vote
of the N members, the per-pixel JS map and the image score, keypoints from the ensemble-mean
heatmaps. Seeds are computed in batches aligned to `seed_start`, so a sample's bytes never depend
on the shard or on where a previous run was killed. Every file is written atomically and
meta/ID.json last; a rerun skips samples whose meta exists. When every sample is present the
final step ranks all scores, drops the most uncertain share and writes manifest.jsonl and coco.json.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_bytes, atomic_write_json
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.datasets.layout import (
    DatasetConfig,
    GeneratedDataset,
    done_seeds,
    finalize,
    sample_files,
)
from assetgan.pipeline.interpreter.checkpoint import load_interpreter
from assetgan.pipeline.interpreter.checks import check_generator_match
from assetgan.pipeline.interpreter.evaluate import visibility_thresholds
from assetgan.pipeline.interpreter.model import Interpreter
from assetgan.pipeline.interpreter.predict import Prediction, decode_keypoints, image_score, predict
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import ws_from_seeds


@dataclass(frozen=True)
class DatasetGenerateConfig:
    """One `dataset generate` run: which models, where, which shard; `dataset` is the identity."""

    generator: Path  # generator checkpoint (.safetensors) the interpreter was trained on
    interpreter: Path  # Style Interpreter checkpoint (`assetgan interpreter train`)
    out: Path  # the dataset directory (shards of one dataset share it)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)  # what the dataset is
    shard: tuple[int, int] = (0, 1)  # (index, count): this run writes the seeds of shard `index`
    device: Device = Device.auto  # where the generator and interpreter run

    def validate(self) -> DatasetGenerateConfig:
        self.dataset.validate()
        index, count = self.shard
        if not 0 <= index < count:
            raise AssetganError(f"shard {index}/{count}: need 0 <= index < count")
        return self


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def uncertainty_png(js: np.ndarray, members: int) -> np.ndarray:
    """[H, W] uint16: round(65535 * JS / ln(members)), JS clipped to its maximum ln(members)."""
    scale = math.log(max(members, 2))
    return np.round(np.clip(js / scale, 0.0, 1.0) * 65535).astype(np.uint16)


def write_sample(
    root: Path,
    seed: int,
    ws: np.ndarray,  # [num_ws, w_dim] float32
    prediction: Prediction,
    index: int,  # position of the sample in `prediction`
    interpreter: Interpreter,
    config: DatasetConfig,
) -> dict[str, Any]:
    """Write one sample's files (meta last) and return its meta."""
    from assetgan.pipeline.coco_format import image_annotations as coco_pieces

    files = sample_files(seed)
    part_ids = prediction.part_ids[index]
    js = prediction.uncertainty[index]
    atomic_write_png(root / files["image"], np.ascontiguousarray(prediction.images[index]))
    atomic_write_png(root / files["parts"], np.ascontiguousarray(part_ids))
    atomic_write_png(root / files["uncertainty"], uncertainty_png(js, interpreter.config.members))
    atomic_write_bytes(root / files["w"], _npy_bytes(ws.astype(np.float32)))
    keypoints = np.zeros((len(interpreter.config.keypoint_names), 4), np.float32)
    if prediction.heatmaps is not None:
        keypoints = decode_keypoints(
            prediction.heatmaps[index], *visibility_thresholds(interpreter)
        )
    xyv = keypoints[:, :3].astype(np.float64)
    meta = {
        "seed": seed,
        "score": image_score(js, config.top_fraction),
        "files": files,
        "keypoints": {
            "xyv": [[round(float(x), 3), round(float(y), 3), int(v)] for x, y, v in xyv],
            "peak": [round(float(p), 4) for p in keypoints[:, 3]],
        },
        "coco": coco_pieces(part_ids, xyv),
    }
    atomic_write_json(root / files["meta"], meta)
    return meta


def load_models(
    generator_path: Path, interpreter_path: Path, device: str
) -> tuple[Generator, Interpreter, str, str]:
    """(generator, interpreter, generator sha256, interpreter sha256); checks they belong together."""
    interpreter = load_interpreter(interpreter_path, device=device)
    generator = load_generator(generator_path, device=device)
    generator_sha = file_sha256(generator_path)
    check_generator_match(interpreter, generator_sha, interpreter_path, generator_path)
    return generator, interpreter, generator_sha, file_sha256(interpreter_path)


def run(config: DatasetGenerateConfig, progress: Progress | None = None) -> GeneratedDataset:
    """Generate (the missing samples of) a shard; finalize when every sample is present.
    Progress: samples written by this run out of the samples it will write."""
    config = config.validate()
    settings, root = config.dataset, Path(config.out)
    generator, interpreter, generator_sha, interpreter_sha = load_models(
        Path(config.generator), Path(config.interpreter), resolve_device(config.device)
    )
    root.mkdir(parents=True, exist_ok=True)
    GeneratedDataset(
        root=root,
        config=settings,
        generator_sha256=generator_sha,
        interpreter_sha256=interpreter_sha,
        taxonomy=interpreter.config.taxonomy,
        class_names=tuple(interpreter.config.class_names),
        keypoint_names=tuple(interpreter.config.keypoint_names),
        image_size=tuple(interpreter.config.geometry.image_size),
        members=interpreter.config.members,
    ).save()
    mine = settings.shard_seeds(config.shard)
    todo = sorted(set(mine) - done_seeds(root, mine))
    batches: dict[int, list[int]] = {}
    for seed in todo:
        batches.setdefault(settings.batch_of(seed).start, []).append(seed)
    written = 0
    emit(progress, 0, len(todo), task="samples")
    for start, wanted in batches.items():
        batch_seeds = list(settings.batch_of(start))
        with torch.no_grad():
            ws = ws_from_seeds(generator, batch_seeds, settings.psi, settings.truncation_cutoff)
            prediction = predict(interpreter, generator, ws, band_rows=settings.band_rows)
        ws_np = ws.cpu().numpy()
        for seed in wanted:
            index = batch_seeds.index(seed)
            write_sample(root, seed, ws_np[index], prediction, index, interpreter, settings)
            written += 1
            emit(progress, written, len(todo), task="samples")
    if len(done_seeds(root, settings.seeds)) == settings.n:
        finalize(root)
    return replace(GeneratedDataset.load(root), written=written)
