"""run(PaperReportConfig) -> PaperReportResult: DatasetGAN's comparison on CarWorld (issue 13).

Rows (one segmenter recipe, protocol.py): few (real labeled renders), full (many real labeled
renders), ours-DatasetGAN (simulated annotations of generator samples -> interpreter -> generated
pairs), ours-HandsOff (the few row's images inverted -> interpreter -> generated pairs).
Ablations: Table 3 (generated pairs), Table 4 (filtering ratio), Table 6 (annotations, random vs
active JS + coreset selection) and Figure 6. Evidence for missed targets: the interpreters'
labels on inverted held-out renders beside the segmenters' on the same renders, and a look at
the generated keypoints. Every step lives in OUT/steps/<name>/ (steps.py); report.md,
report.json and the PNG figures are rewritten from the steps at the end of every run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from assetgan.core.progress import Progress
from assetgan.core.steps import StepRunner
from assetgan.pipeline.downstream.checkpoint import load_segmenter
from assetgan.pipeline.downstream.data import load_labeled
from assetgan.pipeline.paper.config import PaperReportConfig, PaperReportResult
from assetgan.pipeline.paper.evidence import keypoint_probe
from assetgan.pipeline.paper.experiments import Experiments
from assetgan.pipeline.paper.protocol import fold_scores
from assetgan.pipeline.paper.writing import write_report

METHODS = {"random": "random", "active": "uncertainty"}  # Table 6 row -> select method


def planned_steps(config: PaperReportConfig) -> int:
    """Roughly how many steps a run has (the progress total)."""
    sizes = config.sizes
    splits = sum(p is None for p in (config.train, config.test, config.test_shifted))
    ablations = len(sizes.dataset_sizes) + len(sizes.drop_ratios)
    table6 = 5 * 2 * len(sizes.annotation_counts)
    return splits + 2 + 4 + 4 + ablations + table6 + 5


def run(config: PaperReportConfig, progress: Progress | None = None) -> PaperReportResult:
    """Run (or finish) every step of the report, then write report.md, report.json and plots."""
    config = config.validate()
    started = time.perf_counter()
    out = Path(config.out)
    runner = StepRunner(out / "steps", progress, planned_steps(config))
    lab = Experiments(config, runner)
    sizes, seed = config.sizes, config.seed
    train, test, _shifted = lab.splits()
    rows: dict[str, Any] = {}

    # -- Table 1 rows
    rows["few"] = lab.real_row("seg_few", train, sizes.few_images)
    rows["full"] = lab.real_row("seg_full", train, sizes.full_images)
    annotation_seeds = tuple(range(seed, seed + sizes.annotations))
    simulated = lab.simulated(f"annotate_simulated{sizes.annotations}", annotation_seeds)
    interp_simulated = lab.interpreter(f"interpreter_simulated{sizes.annotations}", simulated)
    largest = max(sizes.pairs, *sizes.dataset_sizes)
    pairs_simulated = lab.dataset("dataset_simulated", interp_simulated, largest)

    def generated(dataset_name: str, dataset: Path, count: int, drop: float) -> dict[str, Any]:
        name = f"seg_{dataset_name}_n{count}_drop{round(drop * 100)}"
        return lab.generated_row(name, dataset, count, drop)

    rows["ours_datasetgan"] = generated("simulated", pairs_simulated, sizes.pairs, sizes.drop)
    handsoff = lab.inverted(f"annotate_handsoff{sizes.few_images}", train, sizes.few_images)
    interp_handsoff = lab.interpreter(f"interpreter_handsoff{sizes.few_images}", handsoff)
    pairs_handsoff = lab.dataset("dataset_handsoff", interp_handsoff, sizes.pairs)
    rows["ours_handsoff"] = generated("handsoff", pairs_handsoff, sizes.pairs, sizes.drop)

    # -- Table 3 (pairs) and Table 4 (filtering ratio), from the simulated interpreter's pairs
    table3 = {
        n: generated("simulated", pairs_simulated, n, sizes.drop) for n in sizes.dataset_sizes
    }
    table4 = {r: generated("simulated", pairs_simulated, sizes.pairs, r) for r in sizes.drop_ratios}

    # -- Table 6 / Figure 6: annotations chosen at random or by JS uncertainty + coreset
    table6: dict[str, dict[int, Any]] = {row: {} for row in METHODS}
    for row, method in METHODS.items():
        for count in sizes.annotation_counts:
            tag = f"{row}{count}"
            scorer = interp_simulated if method == "uncertainty" else None
            seeds = lab.selection(f"select_{tag}", method, count, scorer)
            annotations = lab.simulated(f"annotate_{tag}", seeds)
            interpreter = lab.interpreter(f"interpreter_{tag}", annotations)
            pairs = lab.dataset(f"dataset_{tag}", interpreter, sizes.annotation_pairs)
            table6[row][count] = generated(tag, pairs, sizes.annotation_pairs, sizes.drop)

    # -- evidence: the interpreters on inverted held-out renders, the segmenters on the same
    held_out = lab.inverted("annotate_heldout", test, sizes.label_eval_images)
    evidence = {
        "interpreter_simulated": lab.interpreter_scores(
            "eval_interpreter_simulated", interp_simulated, held_out
        ),
        "interpreter_handsoff": lab.interpreter_scores(
            "eval_interpreter_handsoff", interp_handsoff, held_out
        ),
        "segmenters": segmenters_on_first(lab, test, sizes.label_eval_images, rows),
        "keypoints": keypoint_probe(config, interp_simulated, pairs_simulated, train),
        "annotations_mean_iou": runner.records[simulated.parent.name]["summary"]["mean_iou"],
    }

    results = {"rows": rows, "table3": table3, "table4": table4, "table6": table6}
    plots, report_md, report_json = write_report(config, runner, results, evidence)
    return PaperReportResult(
        out=out,
        report_md=report_md,
        report_json=report_json,
        plots=plots,
        steps_run=tuple(runner.ran),
        steps_skipped=tuple(runner.skipped),
        steps_replaced=tuple(runner.replaced),
        seconds=round(time.perf_counter() - started, 2),
    )


def segmenters_on_first(
    lab: Experiments, test: Path, count: int, rows: dict[str, Any]
) -> dict[str, Any]:
    """Each Table 1 row's chosen (in-domain) snapshot on the first `count` in-domain test renders
    (the renders the interpreters are scored on through their inversions)."""
    first = load_labeled(test, limit=count)
    out = {}
    for row, summary in rows.items():
        step = summary["protocol"]["in_domain"]["snapshot"]
        folder = lab.steps.path(summary["step"])
        model, _ = load_segmenter(folder / f"segmenter_step{step}.safetensors")
        out[row] = fold_scores(model, first, 1)[0]
    return out
