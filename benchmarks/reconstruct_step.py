"""Training step time of the reconstruction network (issue 11: batch 16, 64x64, aim < 1 s on 2
cores), one torch thread vs two, side by side. Last line: JSON.

The step is the one `reconstruct train` runs (train.loss_terms + weighted_total, backward,
gradient clipping, Adam) with the default network on CarWorld images with their ground-truth
cameras. Each thread count runs in its own subprocess (torch's thread pool is per process).
Without --data a 32-image split is rendered into a temporary directory first.

    python benchmarks/reconstruct_step.py                       # 1 vs 2 threads, batch 16
    python benchmarks/reconstruct_step.py --data data/world/train64 --steps 12
    python benchmarks/reconstruct_step.py --texture decoded
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def time_steps(data_dir: Path, threads: int, batch: int, steps: int, texture: str) -> dict:
    """Median seconds of forward (predict + render + losses), backward and the whole step."""
    import numpy as np
    import torch

    from assetgan.core.batches import batch_indices
    from assetgan.inverse_graphics.reconstruct.data import load_carworld
    from assetgan.inverse_graphics.reconstruct.losses import LossWeights, weighted_total
    from assetgan.inverse_graphics.reconstruct.model import (
        ReconstructNet,
        ReconstructNetConfig,
        TextureMode,
    )
    from assetgan.inverse_graphics.reconstruct.train import loss_terms

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = load_carworld(data_dir, limit=max(batch, 32))
    model = ReconstructNet(ReconstructNetConfig(texture=TextureMode(texture))).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    weights = LossWeights()
    forward, backward, whole = [], [], []
    for step in range(steps + 2):  # two warm-up steps
        indices, draws = batch_indices(len(data), batch, 0, step)
        started = time.perf_counter()
        item = data.batch(indices, draws < 0.5)
        terms, _ = loss_terms(model, item, None, None)
        total, _ = weighted_total(terms, weights)
        middle = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        ended = time.perf_counter()
        if step >= 2:
            forward.append(middle - started)
            backward.append(ended - middle)
            whole.append(ended - started)
    return {
        "threads": threads,
        "batch": batch,
        "size": data.image_size,
        "texture": texture,
        "faces": int(model.faces.shape[0]),
        "forward_s": statistics.median(forward),
        "backward_s": statistics.median(backward),
        "step_s": statistics.median(whole),
        "steps": steps,
        "loss_finite": bool(np.isfinite(float(total))),
    }


def render_split(directory: Path) -> Path:
    from assetgan.pipeline.carworld.generate import WorldRenderConfig, run
    from assetgan.pipeline.carworld.split import WorldConfig

    out = directory / "bench"
    run(WorldRenderConfig(WorldConfig(split="bench", n=32, size=64, seed=0), out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="CarWorld split (default: render 32 images)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="timed steps (median reported)")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--texture", default="flow", choices=("decoded", "flow"))
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)  # child: one thread count
    args = parser.parse_args()
    if args.single is not None:
        result = time_steps(args.data, args.single, args.batch, args.steps, args.texture)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or render_split(Path(scratch))
        rows = []
        for threads in (int(t) for t in args.threads.split(",")):
            command = [sys.executable, __file__, "--single", str(threads), "--data", str(data)]
            command += ["--batch", str(args.batch), "--steps", str(args.steps)]
            command += ["--texture", args.texture]
            child = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(
        f"{'threads':>7} {'batch':>5} {'size':>4} {'forward s':>9} {'backward s':>10} {'step s':>7}"
    )
    for row in rows:
        print(
            f"{row['threads']:>7} {row['batch']:>5} {row['size']:>4} {row['forward_s']:>9.3f} "
            f"{row['backward_s']:>10.3f} {row['step_s']:>7.3f}"
        )
    figures = {f"step_s_{row['threads']}_threads": row["step_s"] for row in rows}
    if len(rows) > 1:
        figures["speedup"] = rows[0]["step_s"] / rows[-1]["step_s"]
    figures["target_met_lt_1s"] = min(row["step_s"] for row in rows) < 1.0
    print(json.dumps({"benchmark": "reconstruct_step", **figures, "rows": rows}))


if __name__ == "__main__":
    main()
