"""report.md, report.json and the PNG figures of the paper report, from the step records."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from assetgan.core.io_utils import atomic_write_json, atomic_write_text
from assetgan.core.steps import StepRunner
from assetgan.pipeline.paper.config import PaperReportConfig, PaperSizes
from assetgan.pipeline.paper.plots import line_plot

ANCHORS = "../shared/reference/ANCHORS.md"
ROW_NAMES = {
    "few": "few (real labeled renders)",
    "full": "full (real labeled renders)",
    "ours_datasetgan": "ours-DatasetGAN (simulated annotations)",
    "ours_handsoff": "ours-HandsOff (inverted real images)",
}
PAPER_ROWS = {  # DatasetGAN Table 1 / 6 figures (ANCHORS.md)
    "ours vs full, in-domain (ADE-Car-5)": "57.71 vs 59.41 (0.97x)",
    "ours vs full, shifted (PASCAL-Car-5)": "55.65 vs 54.31 (1.02x)",
    "ours vs few (ADE-Car-12)": "45.64 vs 24.85 (+20.8)",
    "keypoint PCK@0.1 (Car-20)": "0.67",
}


def _figure(summary: dict[str, Any], split: str, name: str) -> float | None:
    return summary["protocol"][split]["mean"][name]


def _cell(summary: dict[str, Any], split: str, name: str) -> str:
    protocol = summary["protocol"][split]
    mean, std = protocol["mean"][name], protocol["std"][name]
    if mean is None:
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def _table(rows: dict[str, dict[str, Any]], label: str) -> list[str]:
    names = ("miou_car_20", "miou_car_12", "miou_car_5", "pck@0.05", "pck@0.1")
    head = f"| {label} | images | split | snapshot | " + " | ".join(names) + " |"
    lines = [head, "|" + "---|" * (4 + len(names))]
    for row, summary in rows.items():
        for split in ("in_domain", "shifted"):
            snapshot = summary["protocol"][split]["snapshot"]
            cells = " | ".join(_cell(summary, split, n) for n in names)
            lines.append(f"| {row} | {summary['images']} | {split} | {snapshot} | {cells} |")
    return lines


def targets(rows: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with the value reached and the gap."""
    ours, full, few = rows["ours_datasetgan"], rows["full"], rows["few"]

    def ratio(split: str) -> float | None:
        a, b = _figure(ours, split, "miou_car_5"), _figure(full, split, "miou_car_5")
        return None if a is None or not b else a / b

    gain = None
    if _figure(ours, "in_domain", "miou_car_12") is not None:
        gain = _figure(ours, "in_domain", "miou_car_12") - (
            _figure(few, "in_domain", "miou_car_12") or 0.0
        )
    pck = _figure(ours, "in_domain", "pck@0.1")
    found = [
        ("ours / full car_5 mIoU, in-domain", ratio("in_domain"), 0.97),
        ("ours / full car_5 mIoU, shifted", ratio("shifted"), 1.0),
        ("ours - few car_12 mIoU, in-domain (points / 100)", gain, 0.20),
        ("ours keypoint PCK@0.1, in-domain", pck, 0.75),
    ]
    return [
        {
            "target": name,
            "value": value,
            "goal": goal,
            "met": value is not None and value >= goal,
            "missed_by": None if value is None else round(max(0.0, goal - value), 4),
        }
        for name, value, goal in found
    ]


def limiting_stage(rows: dict[str, Any], evidence: dict[str, Any]) -> list[str]:
    """Which stage limits ours, read off the evidence figures (docs/paper.md explains)."""
    lines = []
    interp = evidence["interpreter_simulated"]["miou_car_20"]
    seg = evidence["segmenters"]
    ours, full = seg["ours_datasetgan"]["miou_car_20"], seg["full"]["miou_car_20"]
    if interp is not None and ours is not None:
        lines.append(
            f"- Labels the factory makes for held-out renders (interpreter on their inversions): "
            f"car_20 mIoU {interp:.3f}; the ours-DatasetGAN segmenter on the same renders "
            f"{ours:.3f}; full {full:.3f}."
        )
        if interp < full - 0.1:
            lines.append(
                "- The interpreter's own labels are far below the full segmenter: the labels "
                "(generator features + interpreter) limit ours before any downstream training."
            )
        if interp > ours + 0.05:
            lines.append(
                "- The segmenter trained on generated pairs loses against its own teacher on real "
                "renders: the generated images differ from real ones (generator domain gap)."
            )
    few_full = [_figure(rows[k], "in_domain", "miou_car_20") for k in ("few", "full")]
    if None not in few_full and few_full[1] - few_full[0] < 0.02:
        lines.append(
            f"- full ({few_full[1]:.3f}) is not above few ({few_full[0]:.3f}): the segmenter "
            "recipe is too short to use the full set, so ratios to full mean little at these "
            "sizes (raise segment_steps)."
        )
    annotations = evidence.get("annotations_mean_iou")
    if annotations is not None:
        lines.append(
            f"- The simulated annotations agree with the annotator's masks at mean IoU "
            f"{annotations:.3f} (the polygon drawing's loss)."
        )
    table4 = [s["protocol"]["in_domain"]["mean"]["miou_car_20"] for s in rows.get("t4", [])]
    if table4 and None not in table4:
        lines.append(f"- Filtering moves car_20 mIoU by {max(table4) - min(table4):.3f} at most.")
    probe = evidence["keypoints"]
    decoded = probe["decoded"]
    own = decoded[f"{probe['interpreter_visible_threshold']:g}"]
    lowest = decoded[min(decoded, key=float)]
    lines.append(
        f"- Keypoints: generated pairs mark {probe['generated_visible_per_image']:.2f} keypoints "
        f"visible per image against {probe['real_visible_per_image']:.2f} in real renders "
        f"({100 * probe['generated_images_without_visible']:.0f} % of generated images have "
        f"none); the annotator marks {probe['annotator_visible_per_image']:.2f} on the same "
        f"generated images. Interpreter heatmap peaks where the annotator sees a keypoint: median "
        f"{_f(probe['peak_where_annotator_visible_median'])} (elsewhere "
        f"{_f(probe['peak_where_annotator_not_visible_median'])}); visible needs >= "
        f"{probe['interpreter_visible_threshold']:g}. PCK@0.1 against the annotator: "
        f"{_f(own['pck@0.1_vs_annotator'])} at that threshold, "
        f"{_f(lowest['pck@0.1_vs_annotator'])} when every peak counts (docs/paper.md)."
    )
    marked, seen = probe["generated_visible_per_image"], probe["annotator_visible_per_image"]
    if marked < 0.5 * seen:
        lines.append(
            "- So the interpreter's visibility threshold drops most keypoints the annotator "
            "sees: the generated pairs teach the segmenter that keypoints are absent."
        )
    return lines


def full_protocol_estimate(runner: StepRunner, config: PaperReportConfig) -> dict[str, Any]:
    """Seconds the default sizes would take, from this run's measured per-unit times."""
    sizes, full = config.sizes, PaperSizes()
    rates: dict[str, list[float]] = {}
    for name, record in runner.records.items():
        seconds, summary, settings = record["seconds"], record["summary"], record["settings"]
        if name.startswith("seg_"):
            units = sizes.segment_steps * sizes.segment_batch
            rates.setdefault("segmenter_image_step", []).append(seconds / units)
        elif name.startswith("dataset_"):
            rates.setdefault("pair", []).append(seconds / summary["samples"])
        elif name.startswith("world_"):
            rates.setdefault("render", []).append(seconds / summary["images"])
        elif name.startswith("annotate_") and "settings" in settings:
            units = summary["images"] * settings["settings"]["steps"]
            rates.setdefault("inversion_image_step", []).append(seconds / units)
    rate = {k: float(np.median(v)) for k, v in rates.items()}
    counts = len(full.annotation_counts)
    segmenters = 4 + len(full.dataset_sizes) - 1 + len(full.drop_ratios) - 1 + 2 * counts
    pairs = max(full.pairs, *full.dataset_sizes) + full.pairs + 2 * counts * full.annotation_pairs
    interpreter_seconds = 240.0  # issue 13: one 16-annotation interpreter on a quiet machine
    parts = {
        "world": rate.get("render", 0) * (full.full_images + 2 * full.test_images),
        "segmenters": rate.get("segmenter_image_step", 0)
        * segmenters
        * full.segment_steps
        * full.segment_batch,
        "generated_pairs": rate.get("pair", 0) * pairs,
        "inversions": rate.get("inversion_image_step", 0)
        * (full.few_images + full.label_eval_images)
        * full.invert_steps,
        "interpreters (issue 13's 240 s each)": interpreter_seconds * (2 + 2 * counts),
    }
    return {
        "per_unit_seconds": rate,
        "parts_seconds": parts,
        "total_hours": sum(parts.values()) / 3600,
    }


def write_report(
    config: PaperReportConfig,
    runner: StepRunner,
    results: dict[str, Any],
    evidence: dict[str, Any],
) -> tuple[tuple[Path, ...], Path, Path]:
    """Write the figures, report.md and report.json into config.out."""
    out, sizes = Path(config.out), config.sizes
    rows, table3, table4, table6 = (results[k] for k in ("rows", "table3", "table4", "table6"))
    full_line = {"full": _figure(rows["full"], "in_domain", "miou_car_20")}
    full_line["few"] = _figure(rows["few"], "in_domain", "miou_car_20")
    plots = (
        line_plot(
            out / "table1.png",
            "Table 1: car_20 mIoU per row (mean of folds 1-4)",
            [r.replace("ours_", "") for r in rows],
            {
                split: [_figure(s, split, "miou_car_20") for s in rows.values()]
                for split in ("in_domain", "shifted")
            },
            note="paper: ours 0.97x full (ADE-Car-5), 1.02x (PASCAL-Car-5), few +20.8 (Car-12)",
        ),
        line_plot(
            out / "table3_pairs.png",
            "Table 3: car_20 mIoU vs generated pairs (in-domain)",
            [str(n) for n in table3],
            {"ours-DatasetGAN": [_figure(s, "in_domain", "miou_car_20") for s in table3.values()]},
            full_line,
            note="paper (ADE-Car-12) 3k/5k/10k/20k pairs: 43.34/44.37/44.60/45.04",
        ),
        line_plot(
            out / "table4_filtering.png",
            "Table 4: car_20 mIoU vs filtering ratio (in-domain)",
            [f"{round(r * 100)}%" for r in table4],
            {"ours-DatasetGAN": [_figure(s, "in_domain", "miou_car_20") for s in table4.values()]},
            full_line,
            note="paper (ADE-Car-12) 0/5/10/20 %: 44.60/44.89/45.64/45.18",
        ),
        line_plot(
            out / "figure6_annotations.png",
            "Figure 6: car_12 mIoU vs annotations (in-domain)",
            [str(k) for k in sizes.annotation_counts],
            {
                row: [_figure(s, "in_domain", "miou_car_12") for s in table6[row].values()]
                for row in table6
            },
            {k: _figure(rows[k], "in_domain", "miou_car_12") for k in ("full", "few")},
            y_label="car_12",
            note="paper (ADE-Car-12) 1/7/13/19: random -/40.06/42.44/44.41, active -/40.88/43.49/46.82",
        ),
    )
    goals = targets(rows)
    estimate = full_protocol_estimate(runner, config)
    record = {
        "config": config.to_dict(),
        "seed": config.seed,
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
        "steps": runner.records,
        "rows": rows,
        "table3": {str(k): v for k, v in table3.items()},
        "table4": {str(k): v for k, v in table4.items()},
        "table6": {row: {str(k): v for k, v in d.items()} for row, d in table6.items()},
        "evidence": evidence,
        "targets": goals,
        "full_protocol_estimate": estimate,
        "wall_seconds_of_steps": round(sum(r["seconds"] for r in runner.records.values()), 1),
    }
    report_json = atomic_write_json(out / "report.json", record)
    report_md = out / "report.md"
    atomic_write_text(report_md, _markdown(config, runner, results, evidence, goals, estimate))
    return plots, report_md, report_json


def _markdown(config, runner, results, evidence, goals, estimate) -> str:
    rows, sizes = results["rows"], config.sizes
    quick = (
        " (quick sizes: figures are a smoke test, not results)" if sizes.test_images < 100 else ""
    )
    lines = [
        f"# DatasetGAN's comparison on CarWorld{quick}",
        "",
        f"Generator `{config.generator}`, annotator segmenter `{config.segmenter}`, seed "
        f"{config.seed}. Every row: the same UNet segmenter recipe, {sizes.segment_steps} steps of "
        f"batch {sizes.segment_batch}, class-weighted cross-entropy (power 0.5), x-flip 0.5. "
        f"Test: {sizes.test_images} in-domain CarWorld renders and their `--shift all` twins, "
        f"{sizes.folds} folds; the snapshot (of {sizes.snapshots}) with the best car_20 mIoU on "
        f"fold 0 is reported as mean ± std over the other folds. Paper anchors: {ANCHORS}.",
        "",
        "## Table 1",
        "",
        *_table({ROW_NAMES[k]: v for k, v in rows.items()}, "row"),
        "",
        "Figure: table1.png. Paper: " + "; ".join(f"{k}: {v}" for k, v in PAPER_ROWS.items()),
        "",
        "## Targets",
        "",
        "| target | value | goal | met | missed by |",
        "|---|---|---|---|---|",
    ]
    for goal in goals:
        value = "n/a" if goal["value"] is None else f"{goal['value']:.3f}"
        lines.append(
            f"| {goal['target']} | {value} | {goal['goal']} | {'yes' if goal['met'] else 'no'} | "
            f"{goal['missed_by']} |"
        )
    t4 = list(results["table4"].values())
    lines += ["", "## What limits ours", "", *limiting_stage({**rows, "t4": t4}, evidence)]
    lines += [
        "",
        "## Table 3: generated pairs (figure table3_pairs.png; paper 3k/5k/10k/20k: "
        "43.34/44.37/44.60/45.04)",
        "",
        *_table({f"{n} pairs": v for n, v in results["table3"].items()}, "pairs"),
        "",
        "## Table 4: filtering ratio (figure table4_filtering.png; paper 0/5/10/20 %: "
        "44.60/44.89/45.64/45.18)",
        "",
        *_table({f"{round(r * 100)} %": v for r, v in results["table4"].items()}, "drop"),
        "",
        "## Table 6: annotations, random vs active (figure figure6_annotations.png; paper "
        "ADE-Car-12 random -/40.06/42.44/44.41, active -/40.88/43.49/46.82)",
        "",
    ]
    for row, by_count in results["table6"].items():
        lines += _table({f"{row} {k}": v for k, v in by_count.items()}, "annotations") + [""]
    lines += [
        "## Evidence: the interpreters and the segmenters on the same held-out renders",
        "",
        f"{sizes.label_eval_images} in-domain test renders, inverted into the generator for the "
        "interpreters (their figures include the inversion's error).",
        "",
        "| labeller | car_20 | car_12 | car_5 |",
        "|---|---|---|---|",
    ]
    for name in ("interpreter_simulated", "interpreter_handsoff"):
        e = evidence[name]
        lines.append(f"| {name} | {_f(e['miou_car_20'])} | {_f(e['miou_car_12'])} | "
                     f"{_f(e['miou_car_5'])} |")  # fmt: skip
    for name, e in evidence["segmenters"].items():
        lines.append(f"| segmenter {name} | {_f(e['miou_car_20'])} | {_f(e['miou_car_12'])} | "
                     f"{_f(e['miou_car_5'])} |")  # fmt: skip
    lines += [
        "",
        "## Steps and wall times",
        "",
        f"Steps run now: {len(runner.ran)}, reused: {len(runner.skipped)}. Settings of every "
        "step are in report.json (`steps`).",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name} | {r['seconds']} |" for name, r in runner.records.items()),
        "",
        f"Full protocol (default sizes) estimated from these per-unit times: "
        f"{estimate['total_hours']:.1f} h on this machine "
        f"({', '.join(f'{k} {v / 3600:.2f} h' for k, v in estimate['parts_seconds'].items())}).",
        "",
    ]
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
