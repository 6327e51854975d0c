"""`annotate select`: which generator samples to annotate (DatasetGAN paper, Table 6).

Candidates are the samples of seeds seed .. seed + candidates - 1. Methods:
- random: k candidates drawn uniformly (the paper's baseline).
- coreset: k-center greedy on generator features pooled per image, which spreads the k samples
  over the candidates' feature space (viewpoints, shapes, colours) instead of leaving it to luck.
- uncertainty: the paper's active learning, ensemble JS uncertainty + coreset: the
  `pool_factor * k` candidates with the highest Style-Interpreter image score (mean of the top
  10% pixel JS values) form the pool, and k-center greedy picks k of them. It needs an
  interpreter trained on a first round of annotations (`assetgan interpreter train`).

Embedding of a sample: for every synthesis tap except the sample-independent `b4.const`, the
map average-pooled to a grid x grid layout (2 x 2 keeps where things are, e.g. the viewpoint),
flattened and scaled to unit length, so every tap weighs the same; the taps are concatenated and
divided by sqrt(taps), giving unit-length rows. Distances are Euclidean.

`run` chooses and then exports the chosen samples like `annotate export` (export.py), with the
choice recorded in export.json `selection`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotate.export import (
    AnnotateExportConfig,
    AnnotateExportResult,
    write_export,
)
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import ws_from_seeds

ScoreFn = Callable[[torch.Tensor], np.ndarray]  # ws [N, num_ws, w_dim] -> image scores [N]


class SelectMethod(StrEnum):
    random = "random"  # uniform draw
    coreset = "coreset"  # k-center greedy on pooled generator features
    uncertainty = "uncertainty"  # ensemble JS uncertainty, then coreset within the uncertain pool


@dataclass(frozen=True)
class SelectConfig:
    """What `annotate select` chooses from, how, and where it exports the choice."""

    generator: Path  # generator checkpoint (.safetensors)
    out: Path  # the export directory of the chosen samples (export.py)
    method: SelectMethod = SelectMethod.coreset  # random | coreset | uncertainty
    candidates: int = 200  # candidate seeds: seed .. seed + candidates - 1
    k: int = 16  # samples to choose
    seed: int = 0  # first candidate seed; also seeds the random draw
    psi: float = 0.7  # truncation psi of the candidates (as in `annotate export`)
    cutoff: int | None = None  # truncation cutoff (None = all ws)
    grid: int = 2  # each tap is average-pooled to grid x grid before comparing
    pool_factor: int = 4  # uncertainty: k-center among the pool_factor * k most uncertain
    batch: int = 16  # candidates per generator forward
    interpreter: Path | None = None  # interpreter checkpoint scoring uncertainty (that method)
    device: Device = Device.auto  # where the generator and interpreter run

    def validate(self) -> SelectConfig:
        if self.k < 1 or self.candidates < self.k:
            raise AssetganError(
                f"need 1 <= --k <= --candidates, got --k {self.k} and --candidates {self.candidates}"
            )
        if self.grid < 1 or self.pool_factor < 1 or self.batch < 1:
            raise AssetganError("grid, pool_factor and batch must be at least 1")
        if self.method == SelectMethod.uncertainty and self.interpreter is None:
            raise AssetganError(
                "--method uncertainty needs a trained interpreter (--interpreter CKPT) to score "
                "the candidates; use --method coreset or random for the first round"
            )
        return self


@dataclass(frozen=True)
class Selection:
    """The chosen samples and figures to judge the choice by."""

    seeds: tuple[int, ...]  # chosen seeds, in selection order
    indices: tuple[int, ...]  # their candidate indices
    covering_radius: float  # max over candidates of the distance to the nearest chosen sample
    mean_distance: float  # mean over candidates of that distance
    scores: tuple[float, ...] | None  # uncertainty image scores of the chosen samples

    def to_json(self, config: SelectConfig) -> dict:
        return {
            "method": config.method.value,
            "candidates": config.candidates,
            "first_seed": config.seed,
            "k": config.k,
            "grid": config.grid,
            "covering_radius": self.covering_radius,
            "mean_distance": self.mean_distance,
            "scores": None if self.scores is None else list(self.scores),
        }


@dataclass(frozen=True)
class SelectResult:
    """What `annotate select` chose and wrote."""

    selection: Selection  # the chosen seeds and the coverage figures
    export: AnnotateExportResult  # the export directory of the chosen samples


@torch.no_grad()
def generator_embeddings(
    generator: Generator,
    ws: torch.Tensor,  # [N, num_ws, w_dim]
    grid: int = 2,
    batch: int = 16,
    progress: Progress | None = None,
) -> np.ndarray:
    """[N, D] float32 unit-length pooled feature embeddings (module docstring)."""
    rows = []
    for start in range(0, ws.shape[0], batch):
        _, features = generator.synthesis(
            ws[start : start + batch], noise_mode="const", return_features=True
        )
        parts = []
        for name, tap in features.items():
            if name == "b4.const":
                continue
            pooled = F.adaptive_avg_pool2d(tap.float(), grid).flatten(1)  # [b, C * grid^2]
            parts.append(F.normalize(pooled, dim=1))
        rows.append(torch.cat(parts, dim=1) / math.sqrt(len(parts)))
        emit(progress, min(start + batch, ws.shape[0]), ws.shape[0], task="embedding candidates")
    return torch.cat(rows).cpu().numpy()


def k_center_greedy(
    embeddings: np.ndarray,  # [N, D]
    k: int,
    start: int | None = None,  # first pick; None = the candidate nearest the mean
) -> list[int]:
    """Farthest-first traversal: each pick maximises the distance to the picks so far."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if start is None:
        start = int(np.argmin(((embeddings - embeddings.mean(0)) ** 2).sum(1)))
    picks = [start]
    nearest = np.sqrt(((embeddings - embeddings[start]) ** 2).sum(1))  # [N]
    while len(picks) < k:
        best = int(np.argmax(nearest))
        picks.append(best)
        nearest = np.minimum(nearest, np.sqrt(((embeddings - embeddings[best]) ** 2).sum(1)))
    return picks


def coverage(embeddings: np.ndarray, picks: list[int]) -> tuple[float, float]:
    """(max, mean) over all rows of the distance to the nearest pick."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    chosen = embeddings[picks]  # [k, D]
    squared = ((embeddings[:, None, :] - chosen[None]) ** 2).sum(-1)  # [N, k]
    nearest = np.sqrt(squared.min(1))
    return float(nearest.max()), float(nearest.mean())


def run(config: SelectConfig, progress: Progress | None = None) -> SelectResult:
    """Choose `config.k` of the candidates and export them to `config.out` (module docstring)."""
    config.validate()
    device = resolve_device(config.device)
    emit(progress, 0, config.candidates, task="loading generator")
    generator = load_generator(config.generator, device)
    scores = None
    if config.interpreter is not None and config.method == SelectMethod.uncertainty:
        sha = file_sha256(config.generator)
        scores = interpreter_scores(
            config.interpreter, generator, sha, device, generator_path=config.generator
        )
    selection = select(config, generator, scores, progress)
    export_config = AnnotateExportConfig(
        config.generator, config.out, selection.seeds, config.psi, config.cutoff, config.device
    )
    written = write_export(export_config, generator, device, selection.to_json(config), progress)
    return SelectResult(selection, written)


def select(
    config: SelectConfig,
    generator: Generator,
    scores: ScoreFn | None = None,  # uncertainty image scores (method uncertainty only)
    progress: Progress | None = None,  # task "embedding candidates"
) -> Selection:
    """Choose `config.k` of the candidate seeds by `config.method` (nothing is written)."""
    config.validate()
    seeds = list(range(config.seed, config.seed + config.candidates))
    ws = ws_from_seeds(generator, seeds, config.psi, config.cutoff)
    embeddings = generator_embeddings(generator, ws, config.grid, config.batch, progress)
    chosen_scores = None
    if config.method == SelectMethod.random:
        picks = np.random.default_rng(config.seed).choice(len(seeds), config.k, replace=False)
        picks = [int(i) for i in picks]
    elif config.method == SelectMethod.coreset:
        picks = k_center_greedy(embeddings, config.k)
    else:
        if scores is None:
            raise AssetganError("select: method uncertainty needs the interpreter's scores")
        image_scores = np.asarray(scores(ws), dtype=np.float64)  # [N]
        if image_scores.shape != (len(seeds),):
            raise AssetganError(
                f"uncertainty scores have shape {image_scores.shape}, expected {len(seeds)}"
            )
        pool = np.argsort(-image_scores, kind="stable")[: config.pool_factor * config.k]
        local = k_center_greedy(embeddings[pool], config.k, start=0)  # the most uncertain first
        picks = [int(pool[i]) for i in local]
        chosen_scores = tuple(float(image_scores[i]) for i in picks)
    radius, mean_distance = coverage(embeddings, picks)
    return Selection(
        seeds=tuple(seeds[i] for i in picks),
        indices=tuple(picks),
        covering_radius=radius,
        mean_distance=mean_distance,
        scores=chosen_scores,
    )


def interpreter_scores(
    path: str | Path,  # interpreter checkpoint (assetgan interpreter train)
    generator: Generator,
    generator_sha256: str,  # file_sha256 of the generator checkpoint
    device: str = "cpu",
    batch: int = 16,  # latents per interpreter forward
    generator_path: str | Path = "the given generator",  # for messages
) -> ScoreFn:
    """Image uncertainty scores (mean of the top 10% pixel JS values of the interpreter
    ensemble, assetgan/pipeline/interpreter/predict.py) as a ScoreFn."""
    from assetgan.pipeline.interpreter.checkpoint import load_interpreter
    from assetgan.pipeline.interpreter.checks import check_generator_match
    from assetgan.pipeline.interpreter.predict import image_score, predict

    interpreter = load_interpreter(path, device)
    check_generator_match(interpreter, generator_sha256, path, generator_path)

    def scores(ws: torch.Tensor) -> np.ndarray:
        values = []
        for start in range(0, ws.shape[0], batch):
            prediction = predict(interpreter, generator, ws[start : start + batch])
            values += [image_score(js) for js in prediction.uncertainty]
        return np.asarray(values, dtype=np.float64)

    return scores
