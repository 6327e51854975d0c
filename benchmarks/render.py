"""Rasterizer speed and memory: the torch backend vs a dense all-pairs reference, side by side.

Each configuration runs in its own subprocess so peak memory (ru_maxrss) is its own. The timed
step is forward + backward of a typical inverse-graphics loss: rasterize, interpolate vertex
colours, antialiased silhouette, L1 on colour + IoU on silhouette. The dense reference does the
same with every pixel-face pair (rasterize_dense + SoftRas silhouette). Last line: JSON.

    python benchmarks/render.py            # full table (batch 16; 1280/5120 faces; 64/128/256 px)
    python benchmarks/render.py --quick    # 64 and 128 px only
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

DENSE_LIMIT_GB = 12.0  # skip the dense reference where its pair tensors would not fit


def make_scene(batch: int, faces: int, size: int):
    import torch

    from assetgan.inverse_graphics.mesh import icosphere
    from assetgan.inverse_graphics.render.camera import orbit_camera, stack_mvp

    mesh = icosphere({1280: 3, 5120: 4}[faces])
    gen = torch.Generator().manual_seed(0)
    cameras = [
        orbit_camera(float(az), 20.0, 3.0, fov_y_deg=45.0, size=(size, size))
        for az in range(0, 360, 360 // batch)
    ][:batch]
    colours = torch.rand(mesh.num_vertices, 3, generator=gen)
    target_rgb = torch.rand(batch, size, size, 3, generator=gen)
    target_mask = (torch.rand(batch, size, size, 1, generator=gen) > 0.5).float()
    return mesh, stack_mvp(cameras), colours, target_rgb, target_mask


def step_fast(mesh, mvp, colours, target_rgb, target_mask, offsets):
    from assetgan.inverse_graphics.render import antialias_silhouette, interpolate, rasterize
    from assetgan.inverse_graphics.render.camera import transform_points

    size = target_rgb.shape[1]
    clip = transform_points(mesh.vertices + offsets, mvp)
    rast = rasterize(clip, mesh.faces, (size, size))
    rgb = interpolate(colours, rast, mesh.faces)
    mask = antialias_silhouette(clip, mesh.faces, rast)
    iou = 1 - (mask * target_mask).sum() / (mask + target_mask - mask * target_mask).sum()
    loss = (rgb - target_rgb).abs().mean() + iou
    loss.backward()


def step_dense(mesh, mvp, colours, target_rgb, target_mask, offsets):
    from assetgan.inverse_graphics.render import interpolate
    from assetgan.inverse_graphics.render.camera import transform_points
    from assetgan.inverse_graphics.render.reference import rasterize_dense, softras_silhouette_dense

    size = target_rgb.shape[1]
    clip = transform_points(mesh.vertices + offsets, mvp)
    rast = rasterize_dense(clip, mesh.faces, (size, size))
    rgb = interpolate(colours, rast, mesh.faces)
    mask = softras_silhouette_dense(clip, mesh.faces, (size, size))
    iou = 1 - (mask * target_mask).sum() / (mask + target_mask - mask * target_mask).sum()
    loss = (rgb - target_rgb).abs().mean() + iou
    loss.backward()


def run_single(method: str, batch: int, faces: int, size: int, repeats: int) -> dict:
    import torch

    scene = make_scene(batch, faces, size)
    offsets = torch.zeros_like(scene[0].vertices, requires_grad=True)
    step = step_fast if method == "torch" else step_dense
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(*scene, offsets)  # warm-up
    times = []
    for _ in range(repeats):
        offsets.grad = None
        start = time.perf_counter()
        step(*scene, offsets)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "ms": 1000 * statistics.median(times),
        "peak_mb": peak / 1024,
        "delta_mb": (peak - base_rss) / 1024,
    }


def dense_gb(batch: int, faces: int, size: int) -> float:
    # ~12 float32 [pixels, faces] tensors alive per image in forward+backward (measured order).
    return size * size * faces * 4 * 12 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 64 and 128 px")
    parser.add_argument("--single", nargs=4, metavar=("METHOD", "BATCH", "FACES", "SIZE"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.single:
        method, batch, faces, size = args.single
        print(json.dumps(run_single(method, int(batch), int(faces), int(size), args.repeats)))
        return
    import torch

    sizes = (64, 128) if args.quick else (64, 128, 256)
    rows = []
    for faces in (1280, 5120):
        for size in sizes:
            row = {"batch": 16, "faces": faces, "size": size}
            for method in ("torch", "dense"):
                if method == "dense" and dense_gb(16, faces, size) > DENSE_LIMIT_GB:
                    row[method] = None
                    continue
                repeats = args.repeats if method == "torch" else 2
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--single",
                        method,
                        "16",
                        str(faces),
                        str(size),
                        "--repeats",
                        str(repeats),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row[method] = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            fast, dense = row["torch"], row["dense"]
            ratio = f"{dense['ms'] / fast['ms']:.1f}x" if dense else "n/a (too big)"
            dense_ms = f"{dense['ms']:.0f}" if dense else "-"
            dense_mb = f"{dense['delta_mb']:.0f}" if dense else "-"
            print(
                f"faces {faces:5d}  {size:3d}px  torch {fast['ms']:7.1f} ms {fast['delta_mb']:7.0f} MB"
                f"   dense {dense_ms:>7} ms {dense_mb:>7} MB   speed-up {ratio}",
                flush=True,
            )
    target = next(r for r in rows if r["faces"] == 5120 and r["size"] == 128)
    summary = {
        "benchmark": "render",
        "threads": torch.get_num_threads(),
        "rows": rows,
        "target_128px_5120f_ms": target["torch"]["ms"],
        "target_speedup_vs_dense": (target["dense"]["ms"] / target["torch"]["ms"])
        if target["dense"]
        else None,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
