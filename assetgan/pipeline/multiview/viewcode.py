"""Do the coarse w layers hold the viewpoint? A measurement (GANverse3D's view-code observation).

For pairs (view source A, content source B) and every split point K, the mixed latent takes
ws[:K] from A and ws[K:] from B. A segmenter trained on CarWorld ground truth (any Predictor of
annotate/simulate.py) labels A, B and every mix; per pair and K:

- layout: car_12 mIoU (classes present in either map) of mix vs A and of mix vs B. car_12 keeps
  head and tail lights apart, so a front view and a rear view of the same silhouette disagree;
- keypoints: which of the 12 keypoints are visible (Jaccard of the visible sets) vs A and vs B;
- paint: the mean colour of the pixels labelled body (car_5) in each image, Euclidean distance
  in RGB [0, 1], mix vs A and mix vs B; background colour likewise.

`view_held` is the fraction of pairs whose mix is closer in layout to A than to B, `paint_held`
the fraction whose body colour is closer to B than to A. The best K maximises their mean: the
view comes from the coarse code and the appearance from the rest. What it does not measure:
whether the 3D shape (as opposed to the 2D layout) is held, and how good the images are.

`run(ViewCodeConfig)` (`gan viewcode`) loads the generator and the segmenter, measures, and
writes OUT/viewcode.json (the report) and OUT/mix_K<best>.png (a mixing grid at the best K).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from assetgan.assets.taxonomy import CAR_5, CAR_12, car20_to_car5, car20_to_car12
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.metrics import confusion, miou_from_confusion
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotate.predictor import Predictor, load_predictor
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.run_dir import resolve_generator_file
from assetgan.pipeline.stylegan.sampling import (
    crossover,
    mixing_grid,
    synthesize_uint8,
    ws_from_seeds,
)

SEED_STRIDE = 1_000_003  # --seed s: view seeds s * SEED_STRIDE + [0, pairs), content the next
MIX_ROWS, MIX_COLUMNS = 6, 8  # content sources (rows) and view sources (columns) of the grid
BODY_5 = CAR_5.index("body")


@dataclass(frozen=True)
class SplitScore:
    """Averages over the pairs for one split point K (ws[:K] from the view source)."""

    k: int  # number of leading ws taken from the view source A
    layout_vs_view: float  # car_12 mIoU, mix vs A
    layout_vs_content: float  # car_12 mIoU, mix vs B
    keypoints_vs_view: float  # Jaccard of visible keypoint sets, mix vs A
    keypoints_vs_content: float  # same, mix vs B
    paint_vs_view: float  # body colour distance (RGB in [0, 1]), mix vs A
    paint_vs_content: float  # same, mix vs B
    background_vs_content: float  # background colour distance, mix vs B
    view_held: float  # fraction of pairs with layout closer to A than to B
    paint_held: float  # fraction of pairs with body colour closer to B than to A
    score: float  # (view_held + paint_held) / 2


@dataclass(frozen=True)
class ViewCodeReport:
    """The measurement for one generator."""

    num_ws: int  # ws of the generator
    pairs: int  # (A, B) pairs measured
    psi: float  # truncation used for A and B
    baseline_layout: float  # car_12 mIoU of A vs B (unrelated images): the floor
    splits: list[SplitScore]  # one per K = 1 .. num_ws - 1
    best_k: int  # K with the highest score

    def to_dict(self) -> dict:
        """The JSON form written to viewcode.json."""
        return asdict(self)

    def table(self) -> list[str]:
        """The scores per K as text lines, then the best K (what `gan viewcode` prints)."""
        lines = [f"{'K':>3} {'layout A':>9} {'layout B':>9} {'view held':>9} {'paint held':>10}"]
        lines += [
            f"{s.k:>3} {s.layout_vs_view:>9.3f} {s.layout_vs_content:>9.3f} "
            f"{s.view_held:>9.2f} {s.paint_held:>10.2f}"
            for s in self.splits
        ]
        lines.append(f"best K = {self.best_k} (baseline layout A vs B {self.baseline_layout:.3f})")
        return lines


@dataclass(frozen=True)
class ViewCodeConfig:
    """`gan viewcode`: which generator, which segmenter, how many pairs, where to write."""

    generator: Path  # generator .safetensors, a checkpoint directory or a run directory (G_ema)
    segmenter: Path  # CarWorld segmenter checkpoint that labels A, B and the mixes
    out: Path  # output directory: viewcode.json and mix_K<best>.png
    pairs: int = 64  # (view, content) pairs measured
    psi: float = 1.0  # truncation of A and B (1 = none)
    seed: int = 0  # view seeds seed * SEED_STRIDE + [0, pairs), content seeds the next pairs
    predictor: str | None = None  # "module:function" predictor factory; None = by checkpoint kind
    device: Device = Device.auto  # where the generator and the segmenter run


@dataclass(frozen=True)
class ViewCodeResult:
    """What `run` measured and wrote."""

    report: ViewCodeReport  # the measurement
    report_path: Path  # OUT/viewcode.json (report.to_dict())
    mix_grid: Path  # OUT/mix_K<best>.png: top row view sources, left column content sources


def part_miou(a: np.ndarray, b: np.ndarray, classes: int) -> float:
    """Mean IoU over the classes present in either [H, W] id map (1.0 when both are empty)."""
    miou = miou_from_confusion(confusion(a, b, classes, ignore_id=None), tuple(range(classes)))
    return 1.0 if miou["miou"] is None else miou["miou"]


def visible_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard of the visible-keypoint sets of two [12, 3] arrays (1.0 when both see none)."""
    va, vb = a[:, 2] > 0, b[:, 2] > 0
    union = np.logical_or(va, vb).sum()
    return float(np.logical_and(va, vb).sum() / union) if union else 1.0


def mean_colour(image: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """[3] mean RGB in [0, 1] of the masked pixels of an [H, W, 3] uint8 image (None if empty)."""
    if not mask.any():
        return None
    return image[mask].astype(np.float64).mean(axis=0) / 255.0


def _distance(a: np.ndarray | None, b: np.ndarray | None) -> float:
    return float("nan") if a is None or b is None else float(np.linalg.norm(a - b))


@dataclass(frozen=True)
class _Labels:
    images: np.ndarray  # [N, H, W, 3] uint8
    parts12: np.ndarray  # [N, H, W] car_12 ids
    body: np.ndarray  # [N, H, W] bool, car_5 body
    background: np.ndarray  # [N, H, W] bool
    keypoints: np.ndarray  # [N, 12, 3]


def _label(images: np.ndarray, predictor: Predictor) -> _Labels:
    parts20, keypoints = predictor(images)
    if parts20.shape != images.shape[:3] or keypoints.shape != (len(images), 12, 3):
        raise AssetganError(
            f"segmenter returned parts {parts20.shape} and keypoints {keypoints.shape} for "
            f"images {images.shape}; expected [N, H, W] and [N, 12, 3]"
        )
    return _Labels(
        images=images,
        parts12=car20_to_car12(parts20),
        body=car20_to_car5(parts20) == BODY_5,
        background=parts20 == 0,
        keypoints=keypoints,
    )


def _score_split(k: int, view: _Labels, content: _Labels, mix: _Labels) -> SplitScore:
    rows = []
    for i in range(len(mix.images)):
        lay_a = part_miou(mix.parts12[i], view.parts12[i], len(CAR_12))
        lay_b = part_miou(mix.parts12[i], content.parts12[i], len(CAR_12))
        body_mix = mean_colour(mix.images[i], mix.body[i])
        paint_a = _distance(body_mix, mean_colour(view.images[i], view.body[i]))
        paint_b = _distance(body_mix, mean_colour(content.images[i], content.body[i]))
        bg_b = _distance(
            mean_colour(mix.images[i], mix.background[i]),
            mean_colour(content.images[i], content.background[i]),
        )
        rows.append(
            (
                lay_a,
                lay_b,
                visible_jaccard(mix.keypoints[i], view.keypoints[i]),
                visible_jaccard(mix.keypoints[i], content.keypoints[i]),
                paint_a,
                paint_b,
                bg_b,
                float(lay_a > lay_b),
                float(paint_b < paint_a) if np.isfinite(paint_a + paint_b) else np.nan,
            )
        )
    means = np.nanmean(np.array(rows, dtype=np.float64), axis=0)
    view_held, paint_held = float(means[7]), float(means[8])
    return SplitScore(
        k,
        *(float(m) for m in means[:7]),
        view_held=view_held,
        paint_held=paint_held,
        score=(view_held + paint_held) / 2,
    )


@torch.no_grad()
def measure_view_code(
    generator: Generator,
    predictor: Predictor,
    view_seeds: list[int],  # A: give ws[:K]
    content_seeds: list[int],  # B: give ws[K:]; paired with view_seeds one to one
    psi: float = 1.0,
    progress: Progress | None = None,  # task "split points": K done of num_ws - 1
) -> ViewCodeReport:
    """Score every split point K = 1 .. num_ws - 1 (module docstring)."""
    if len(view_seeds) != len(content_seeds) or not view_seeds:
        raise AssetganError("view and content seeds must be non-empty lists of equal length")
    ws_view = ws_from_seeds(generator, view_seeds, psi)
    ws_content = ws_from_seeds(generator, content_seeds, psi)
    view = _label(synthesize_uint8(generator, ws_view), predictor)
    content = _label(synthesize_uint8(generator, ws_content), predictor)
    num_ws = ws_view.shape[1]
    splits = []
    for k in range(1, num_ws):
        mixed = crossover(ws_view, ws_content, k)
        splits.append(
            _score_split(k, view, content, _label(synthesize_uint8(generator, mixed), predictor))
        )
        emit(progress, k, num_ws - 1, task="split points")
    baseline = float(
        np.mean(
            [
                part_miou(view.parts12[i], content.parts12[i], len(CAR_12))
                for i in range(len(view_seeds))
            ]
        )
    )
    best = max(splits, key=lambda s: (s.score, -s.k))
    return ViewCodeReport(
        num_ws=num_ws,
        pairs=len(view_seeds),
        psi=psi,
        baseline_layout=baseline,
        splits=splits,
        best_k=best.k,
    )


def view_and_content_seeds(seed: int, pairs: int) -> tuple[list[int], list[int]]:
    """The A seeds and the B seeds of `--seed seed --pairs pairs` (disjoint ranges)."""
    base = seed * SEED_STRIDE
    return list(range(base, base + pairs)), list(range(base + pairs, base + 2 * pairs))


def run(config: ViewCodeConfig, progress: Progress | None = None) -> ViewCodeResult:
    """Measure the view code of `config.generator` and write viewcode.json and the mixing grid."""
    if config.pairs < 1:
        raise AssetganError(f"--pairs must be at least 1, got {config.pairs}")
    device = resolve_device(config.device)
    generator = load_generator(resolve_generator_file(config.generator), device=device)
    predictor = load_predictor(Path(config.segmenter), device, config.predictor)
    view_seeds, content_seeds = view_and_content_seeds(config.seed, config.pairs)
    report = measure_view_code(
        generator, predictor, view_seeds, content_seeds, psi=config.psi, progress=progress
    )
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    report_path = atomic_write_json(out / "viewcode.json", report.to_dict())
    grid = mixing_grid(
        generator,
        content_seeds[:MIX_ROWS],
        view_seeds[:MIX_COLUMNS],
        list(range(report.best_k)),
        out / f"mix_K{report.best_k}.png",
        psi=config.psi,
    )
    return ViewCodeResult(report=report, report_path=report_path, mix_grid=grid)
