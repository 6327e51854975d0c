"""run(DemoConfig) -> DemoResult: the whole chain, 2D and 3D, from the shipped weights, with an
HTML report (issue 14). Every step calls a stage's `run` from Python (factory.py: 2D,
assets3d.py: 3D) in OUT/steps/<step>/; finished steps are reused on re-run (steps.py); the
report (report.py) is rewritten from the steps at the end of every run."""

from __future__ import annotations

import time
from pathlib import Path

from assetgan.core.progress import Progress
from assetgan.demo import assets3d, factory
from assetgan.demo.config import DemoConfig, DemoResult
from assetgan.demo.figures import collect, out_of_range
from assetgan.demo.report import STEP_TITLES, write_report
from assetgan.demo.steps import DemoSteps


def run(config: DemoConfig, progress: Progress | None = None) -> DemoResult:
    """Run (or finish) every step, then write index.html, report.json and the plots."""
    config = config.validate()
    started = time.perf_counter()
    out = Path(config.out)
    steps = DemoSteps(out / "steps", progress, len(STEP_TITLES))
    split = factory.world(steps, config)
    factory.samples(steps, config)
    annotation_set = factory.annotations(steps, config)
    interpreter = factory.interpreter(steps, config, annotation_set)
    dataset = factory.dataset(steps, config, interpreter)
    segmenter = factory.segmenter(steps, config, dataset)
    factory.segment_eval(steps, config, segmenter, split)
    factory.multiview(steps, config, interpreter)
    cars = assets3d.reconstruct(steps, config, split)
    exports = assets3d.export(steps, config, split, cars)

    records = dict(steps.runner.records)
    figures = collect({name: record["summary"] for name, record in records.items()})
    bad = out_of_range(figures, config.quick)
    index, report_json, plots = write_report(
        config, records, steps.runner.ran, figures, bad, steps.missing
    )
    export = records["export"]["summary"]
    viewers = tuple(exports / car["viewer"] for car in export["exported"] + export["refused"])
    return DemoResult(
        out=out,
        index=index,
        report_json=report_json,
        plots=tuple(plots),
        viewers=viewers,
        figures=figures,
        out_of_range=tuple(bad),
        steps_run=tuple(steps.runner.ran),
        steps_skipped=tuple(steps.runner.skipped),
        missing=tuple(steps.missing),
        seconds=round(time.perf_counter() - started, 2),
    )
