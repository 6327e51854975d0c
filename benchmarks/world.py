"""CarWorld throughput: labeled images per second at 64 and 128 px.

Two measurements side by side for each size:
- end to end: `run()` with --workers processes writing a real split (PNG, depth, meta, COCO);
  wall-clock images per second, including worker start-up;
- per stage, in this process on one thread: CPU milliseconds per image for sampling + building
  cars, rendering (rasterize, shade, background, labels) and writing files. CPU time is immune to
  other jobs on a shared machine; 1000 * workers / total_ms is the rate an idle machine allows.

    .venv/bin/python benchmarks/world.py [--n 256] [--workers 2] [--sizes 64 128]

Prints a table; the last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from assetgan.pipeline.carworld.generate import WorldRenderConfig, _write_item, run, sample_item
from assetgan.pipeline.carworld.model import build_car
from assetgan.pipeline.carworld.render import render_batch, single_thread
from assetgan.pipeline.carworld.split import WorldConfig


def _chunk_stages(config: WorldConfig, indices: range, scratch: Path) -> tuple[float, ...]:
    """CPU seconds of (sample + build, render, write) for one chunk of images."""
    t0 = time.process_time()
    items = [sample_item(config, i) for i in indices]
    cars = [build_car(params) for params, _ in items]
    t1 = time.process_time()
    out = render_batch(cars, [scene for _, scene in items], config.size)
    t2 = time.process_time()
    for b, index in enumerate(indices):
        _write_item(scratch, config, index, cars[b], items[b][1], out, b)
    return t1 - t0, t2 - t1, time.process_time() - t2


def stage_cpu_ms(config: WorldConfig, count: int, scratch: Path) -> dict[str, float]:
    """CPU ms per image of each stage, one thread, chunks of config.chunk (after a warm-up
    chunk that pays for imports and caches)."""
    (scratch / "meta").mkdir(parents=True, exist_ok=True)
    totals = np.zeros(3)
    with single_thread():
        _chunk_stages(config, range(config.chunk), scratch)
        for first in range(0, count, config.chunk):
            totals += _chunk_stages(config, range(first, min(first + config.chunk, count)), scratch)
    return {
        k: 1000.0 * v / count for k, v in zip(("build", "render", "write"), totals, strict=True)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images per size (end to end)")
    parser.add_argument("--stage-n", type=int, default=64, help="images per size (per stage)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    args = parser.parse_args()

    rows, figures = [], {"workers": args.workers, "cpus": os.cpu_count(), "n": args.n}
    for size in args.sizes:
        config = WorldConfig(split="bench", n=args.n, size=size, seed=0)
        scratch = Path(tempfile.mkdtemp(prefix=f"carworld_bench_{size}_"))
        try:
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            run(WorldRenderConfig(config, scratch / "split", workers=args.workers))
            wall = time.perf_counter() - start
            stages = stage_cpu_ms(config, args.stage_n, scratch / "stages")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        cpu_total = sum(stages.values())
        rate = args.n / wall
        idle_rate = 1000.0 * args.workers / cpu_total
        rows.append((size, rate, idle_rate, stages, cpu_total, load_before))
        figures[f"images_per_s_{size}"] = round(rate, 2)
        figures[f"idle_machine_images_per_s_{size}"] = round(idle_rate, 2)
        figures[f"cpu_ms_per_image_{size}"] = {k: round(v, 2) for k, v in stages.items()}
        figures[f"load_average_before_{size}"] = round(load_before, 2)

    print(f"CarWorld throughput, {args.workers} workers, {os.cpu_count()} CPUs")
    print(
        f"{'size':>5} {'img/s (wall)':>13} {'img/s (idle est.)':>18} "
        f"{'build ms':>9} {'render ms':>10} {'write ms':>9} {'load avg':>9}"
    )
    for size, rate, idle_rate, stages, _, load in rows:
        print(
            f"{size:>5} {rate:>13.1f} {idle_rate:>18.1f} {stages['build']:>9.2f} "
            f"{stages['render']:>10.2f} {stages['write']:>9.2f} {load:>9.2f}"
        )
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
