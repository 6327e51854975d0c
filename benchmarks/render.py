"""Rasterizer speed and memory: the torch backend vs a dense all-pairs reference, side by side.

Each configuration runs in its own subprocess so peak memory (ru_maxrss) is its own. The timed
step is forward + backward of a typical inverse-graphics loss: rasterize, interpolate vertex
colours, antialiased silhouette; L1 on colour + squared error on the silhouette. The dense
reference computes the same loss from every pixel-face pair (rasterize_dense + SoftRas
silhouette, the formulation of differentiable rasterizers without binning). It runs one image and
one band of rows at a time with gradients accumulated, so its memory is per band; it is timed on
DENSE_IMAGES images and scaled to the batch (its cost is linear in the batch). Last line: JSON.

    python benchmarks/render.py            # batch 16; 1280 / 5120 faces; 64 / 128 / 256 px
    python benchmarks/render.py --quick    # 64 and 128 px only
    python benchmarks/render.py --threads 1  # one torch thread everywhere (shared machines)

"culled" is the same step with cull_backfaces=True (valid for closed meshes, such as the
deformed icospheres of inverse graphics).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

DENSE_BAND_PAIRS = 2_000_000  # pixel-face pairs per band of rows in the dense reference
DENSE_IMAGES = 1  # images the dense reference is timed on (scaled to the batch)
BATCH = 16


def make_scene(batch: int, faces: int, size: int):
    """An icosphere seen from `batch` azimuths, random vertex colours and random targets."""
    import torch

    from assetgan.render.camera import orbit_camera, stack_mvp
    from assetgan.render.mesh import icosphere

    mesh = icosphere({1280: 3, 5120: 4}[faces])
    gen = torch.Generator().manual_seed(0)
    cameras = [
        orbit_camera(360.0 * k / batch, 20.0, 3.0, fov_y_deg=45.0, size=(size, size))
        for k in range(batch)
    ]
    colours = torch.rand(mesh.num_vertices, 3, generator=gen)
    target_rgb = torch.rand(batch, size, size, 3, generator=gen)
    target_mask = (torch.rand(batch, size, size, 1, generator=gen) > 0.5).float()
    return mesh, stack_mvp(cameras), colours, target_rgb, target_mask


def step_fast(mesh, mvp, colours, target_rgb, target_mask, offsets, cull: bool = False) -> None:
    from assetgan.render import antialias_silhouette, interpolate, rasterize
    from assetgan.render.camera import transform_points

    size = target_rgb.shape[1]
    clip = transform_points(mesh.vertices + offsets, mvp)
    rast = rasterize(clip, mesh.faces, (size, size), cull_backfaces=cull)
    rgb = interpolate(colours, rast, mesh.faces)
    mask = antialias_silhouette(clip, mesh.faces, rast)
    loss = (rgb - target_rgb).abs().mean() + ((mask - target_mask) ** 2).mean()
    loss.backward()


def step_dense(mesh, mvp, colours, target_rgb, target_mask, offsets, images: int) -> None:
    from assetgan.render import interpolate
    from assetgan.render.camera import transform_points
    from assetgan.render.reference import rasterize_dense, softras_silhouette_dense

    batch, size = target_rgb.shape[0], target_rgb.shape[1]
    rows_per_band = max(1, DENSE_BAND_PAIRS // (size * mesh.num_faces))
    count = batch * size * size
    for b in range(images):
        for top in range(0, size, rows_per_band):
            rows = (top, min(size, top + rows_per_band))
            clip = transform_points(mesh.vertices + offsets, mvp[b : b + 1])
            rast = rasterize_dense(clip, mesh.faces, (size, size), rows=rows)
            rgb = interpolate(colours, rast, mesh.faces)
            mask = softras_silhouette_dense(clip, mesh.faces, (size, size), rows=rows)
            band_rgb = target_rgb[b : b + 1, rows[0] : rows[1]]
            band_mask = target_mask[b : b + 1, rows[0] : rows[1]]
            loss = (rgb - band_rgb).abs().sum() / (3 * count)
            loss = loss + ((mask - band_mask) ** 2).sum() / count
            loss.backward()


def run_single(method: str, faces: int, size: int, repeats: int) -> dict:
    import torch

    scene = make_scene(BATCH, faces, size)
    offsets = torch.zeros_like(scene[0].vertices, requires_grad=True)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fast = method in ("torch", "torch_cull")
    if fast:
        step_fast(*scene, offsets, cull=method == "torch_cull")  # warm-up
    times = []
    for _ in range(repeats):
        offsets.grad = None
        start = time.perf_counter()
        if fast:
            step_fast(*scene, offsets, cull=method == "torch_cull")
        else:
            step_dense(*scene, offsets, images=DENSE_IMAGES)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    timed_images = BATCH if fast else DENSE_IMAGES
    return {
        "ms": 1000 * statistics.median(times) * BATCH / timed_images,
        "timed_images": timed_images,
        "peak_mb": peak / 1024,
        "delta_mb": (peak - base_rss) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 64 and 128 px")
    parser.add_argument("--single", nargs=3, metavar=("METHOD", "FACES", "SIZE"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads in every run (0 = torch's default)"
    )
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.single:
        method, faces, size = args.single
        print(json.dumps(run_single(method, int(faces), int(size), args.repeats)))
        return
    sizes = (64, 128) if args.quick else (64, 128, 256)
    rows = []
    print(f"batch {BATCH}, forward + backward, {torch.get_num_threads()} threads")
    for faces in (1280, 5120):
        for size in sizes:
            row = {"batch": BATCH, "faces": faces, "size": size}
            for method in ("torch", "torch_cull", "dense"):
                repeats = 1 if method == "dense" else args.repeats
                command = [sys.executable, __file__, "--single", method, str(faces), str(size)]
                command += ["--threads", str(args.threads)]
                out = subprocess.run(
                    [*command, "--repeats", str(repeats)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                row[method] = json.loads(out.stdout.strip().splitlines()[-1])
            row["speedup"] = row["dense"]["ms"] / row["torch"]["ms"]
            row["speedup_cull"] = row["dense"]["ms"] / row["torch_cull"]["ms"]
            row["memory_ratio"] = row["dense"]["delta_mb"] / max(row["torch"]["delta_mb"], 1.0)
            rows.append(row)
            fast, cull, dense = row["torch"], row["torch_cull"], row["dense"]
            print(
                f"faces {faces:5d} {size:4d}px | torch {fast['ms']:7.1f} ms {fast['delta_mb']:5.0f} MB"
                f" | culled {cull['ms']:7.1f} ms | dense {dense['ms']:9.0f} ms"
                f" {dense['delta_mb']:5.0f} MB (timed on {dense['timed_images']} image)"
                f" | speed-up {row['speedup']:.0f}x ({row['speedup_cull']:.0f}x culled)",
                flush=True,
            )
    target = next(r for r in rows if r["faces"] == 5120 and r["size"] == 128)
    summary = {
        "benchmark": "render",
        "threads": torch.get_num_threads(),
        "rows": rows,
        "target_128px_5120f_ms": target["torch"]["ms"],
        "target_128px_5120f_culled_ms": target["torch_cull"]["ms"],
        "target_speedup_vs_dense": target["speedup"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
