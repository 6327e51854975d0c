"""StyleGAN2 speed and memory on CPU: generator images/s and training iterations.

Configurations:
- `demo`: the `cpu64` preset (64x64, mapping 4 x 128, G 128/128/64/32/16, residual D, batch 16),
  the demo generator's training setup;
- `configf`: the 512x512 config-f size (z/w 512, mapping 8, channels min(32768 // r, 512), D
  likewise) at batch 1.
For each configuration and CPU thread count, one subprocess (its own ru_maxrss) measures, with the
project's own code (`build_networks`, `train_iteration`, `Generator`):
- generator throughput: G_ema forward, no grad, const noise, images/s;
- a training iteration without regularisation (fetch, G step, D step, EMA), and one with the lazy
  R1 step, hence the average iteration with R1 every 16 (path length is off, the CPU default);
- peak resident memory (ru_maxrss) and the resident memory before any network was built.
MEASURED.md's prototype of the demo config (a different implementation) ran 0.41-0.44 s per
iteration on 2 cores; the ratio to it is printed. The machine may be shared: load average is
recorded.

    python benchmarks/stylegan.py                          # demo + configf, 1 and 2 threads
    python benchmarks/stylegan.py --configs demo --threads 2
Last line: JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

PROTOTYPE_ITER_SEC = 0.43  # MEASURED.md: 0.41-0.44 s per iteration (2 cores, demo config)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def train_config(name: str):
    from assetgan.pipeline.stylegan.config import DiscriminatorConfig, GeneratorConfig
    from assetgan.pipeline.stylegan.train_config import preset_config

    config = preset_config("cpu64", "unused", "unused", 64)
    if name == "demo":
        return config
    return dataclasses.replace(
        config,
        generator=GeneratorConfig(resolution=512),
        discriminator=DiscriminatorConfig(resolution=512),
        batch=1,
        r1_gamma=10.0,
    )


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of `repeats` calls after one warm-up call.

    On a shared machine wall time includes waiting for a core; with one thread the CPU time is
    what the call costs on a dedicated core.
    """
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return sorted(walls)[len(walls) // 2], sorted(cpus)[len(cpus) // 2]


def measure(name: str, threads: int, repeats: int) -> dict:
    import torch

    from assetgan.pipeline.stylegan.train import build_networks, train_iteration

    torch.set_num_threads(threads)
    baseline = peak_rss_gb()
    config = train_config(name)
    device = torch.device("cpu")
    nets = build_networks(config, device)
    res = config.generator.resolution
    images = torch.randint(0, 256, (64, 3, res, res), dtype=torch.uint8)
    pl_mean = torch.zeros([])

    gen_batch = max(config.batch, 16) if res <= 64 else 1
    z = torch.randn(gen_batch, config.generator.z_dim)

    def generate() -> None:
        with torch.no_grad():
            nets.generator_ema(z, noise_mode="const")

    gen_sec, gen_cpu = timed(generate, repeats * 2)
    plain, plain_cpu = timed(
        lambda: train_iteration(nets, config, images, 1, 10**6, pl_mean), repeats
    )
    with_r1, with_r1_cpu = timed(
        lambda: train_iteration(nets, config, images, 0, 10**6, pl_mean), repeats
    )
    lazy = plain + (with_r1 - plain) / config.d_reg_interval
    lazy_cpu = plain_cpu + (with_r1_cpu - plain_cpu) / config.d_reg_interval
    return {
        "config": name,
        "threads": threads,
        "batch": config.batch,
        "g_params": sum(p.numel() for p in nets.generator.parameters()),
        "d_params": sum(p.numel() for p in nets.discriminator.parameters()),
        "gen_images_per_sec": gen_batch / gen_sec,
        "gen_images_per_cpu_sec": gen_batch / gen_cpu,
        "gen_batch": gen_batch,
        "iter_sec": plain,
        "iter_with_r1_sec": with_r1,
        "iter_lazy_r1_avg_sec": lazy,
        "iter_lazy_r1_avg_cpu_sec": lazy_cpu,
        "sec_per_kimg": lazy * 1000 / config.batch,
        "peak_rss_gb": peak_rss_gb(),
        "baseline_rss_gb": baseline,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="demo,configf")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single", nargs=2, metavar=("CONFIG", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(measure(args.single[0], int(args.single[1]), args.repeats)))
        return

    load_before = os.getloadavg()[0]
    rows = []
    for name in args.configs.split(","):
        repeats = args.repeats if name == "demo" else max(1, args.repeats // 2)
        for threads in [int(t) for t in args.threads.split(",")]:
            cmd = [sys.executable, __file__, "--single", name, str(threads)]
            out = subprocess.run(
                [*cmd, "--repeats", str(repeats)], check=True, capture_output=True, text=True
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()[0]

    header = (
        f"{'config':<8}{'thr':>4}{'batch':>6}{'G img/s':>10}{'iter s':>9}{'+R1 s':>9}"
        f"{'avg s':>8}{'avg cpu s':>10}{'s/kimg':>9}{'peak GB':>9}{'base GB':>9}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['config']:<8}{r['threads']:>4}{r['batch']:>6}{r['gen_images_per_sec']:>10.1f}"
            f"{r['iter_sec']:>9.3f}{r['iter_with_r1_sec']:>9.3f}{r['iter_lazy_r1_avg_sec']:>8.3f}"
            f"{r['iter_lazy_r1_avg_cpu_sec']:>10.3f}{r['sec_per_kimg']:>9.1f}{r['peak_rss_gb']:>9.2f}{r['baseline_rss_gb']:>9.2f}"
        )
    demo = [r for r in rows if r["config"] == "demo"]
    summary = {
        "benchmark": "stylegan",
        "load_average": [load_before, load_after],
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    if demo:
        best = min(demo, key=lambda r: r["iter_lazy_r1_avg_sec"])
        summary["demo_best_iter_sec"] = best["iter_lazy_r1_avg_sec"]
        one = [r for r in demo if r["threads"] == 1]
        if one:
            summary["demo_1thread_cpu_sec_per_iter"] = one[0]["iter_lazy_r1_avg_cpu_sec"]
        summary["demo_vs_prototype_ratio"] = best["iter_lazy_r1_avg_sec"] / PROTOTYPE_ITER_SEC
        print(
            f"demo: {best['iter_lazy_r1_avg_sec']:.3f} s/iter with {best['threads']} thread(s) = "
            f"{summary['demo_vs_prototype_ratio']:.2f}x MEASURED.md's prototype (0.43 s); "
            f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores"
        )
        if one:
            print(
                f"demo, 1 thread: {one[0]['iter_lazy_r1_avg_cpu_sec']:.3f} CPU s per iteration "
                f"(the cost on one dedicated core)"
            )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
