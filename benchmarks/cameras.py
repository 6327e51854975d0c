"""Cameras without a human: PnP of keypoints against the keypoint template on CarWorld test
renders whose cameras are known (docs/multiview.md).

Rows side by side, on the same images:
- ground truth: the renders' own keypoints (visible ones, v = 2);
- segmenter: keypoints predicted by the shipped CarWorld segmenter (assetgan/assets/segmenter64),
  the route generator images take;
each with the true field of view of the render and with the fixed 32 deg a generator image gets
(CarWorld draws fov in 22..42 deg), and the segmenter at 32 deg once more without the template's
visibility model (ablation). Errors: azimuth and elevation (degrees, median and 90th percentile),
geodesic rotation error, Acc@30deg (rotation error <= 30 deg); an image without a camera (fewer
than 4 keypoints at distinct spots) counts 180 deg.

    .venv/bin/python benchmarks/cameras.py [--split /work/data/world/test64] [--n 800]
        [--sheet docs/img/multiview_cameras.png]

With --multiview DIR (a finished `multiview sample` set, where no camera is known), it reports
instead how consistent the per-image cameras of each view code are (circular median absolute
deviation of the azimuths, elevation MAD, share of images with a camera) and, with --sheet,
draws the template by each view code's mean camera over the first content codes' images
(rows: content codes; columns: view codes).

Prints a table; the last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from assetgan.core.images import atomic_write_png, contact_sheet
from assetgan.pipeline.carworld.split import WorldSplit
from assetgan.pipeline.downstream.checkpoint import load_segmenter
from assetgan.pipeline.downstream.predict import predict
from assetgan.pipeline.multiview.cameras import camera_errors, draw_overlay, estimate_cameras
from assetgan.pipeline.multiview.template import load_shipped_template
from assetgan.render.camera import Camera
from assetgan.render.pnp import PnPSettings, angle_difference

FIXED_FOV = 32.0
SEGMENTER = Path(__file__).resolve().parents[1] / "assetgan" / "assets" / "segmenter64"


def load_split(root: Path, n: int) -> dict:
    split = WorldSplit.load(root)
    n = min(n, len(split))
    metas = [split.meta(i) for i in range(n)]
    return {
        "images": np.stack([split.image(i) for i in range(n)]),
        "keypoints": np.array([m["keypoints"]["xyv"] for m in metas], dtype=np.float64),
        "azimuth": np.array([m["scene"]["azimuth"] for m in metas]),
        "elevation": np.array([m["scene"]["elevation"] for m in metas]),
        "fov": np.array([m["scene"]["fov_y"] for m in metas]),
        "views": np.array([m["camera"]["view"] for m in metas]),
        "cameras": [Camera.from_json(m["camera"]) for m in metas],
        "size": split.config.size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", type=Path, default=Path("/work/data/world/test64"))
    parser.add_argument("--n", type=int, default=800, help="first N images of the split")
    parser.add_argument("--segmenter", type=Path, default=SEGMENTER)
    parser.add_argument("--sheet", type=Path, default=None, help="PNG: template over 24 images")
    parser.add_argument("--multiview", type=Path, default=None, help="a multi-view set instead")
    parser.add_argument("--rows", type=int, default=6, help="content codes in the set's sheet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.multiview is not None:
        multiview_report(args.multiview, args.sheet, args.rows, args.segmenter)
        return

    data = load_split(args.split, args.n)
    size = data["size"]
    template = load_shipped_template()
    model, _ = load_segmenter(args.segmenter)
    _, predicted = predict(model, data["images"])
    truth = data["keypoints"].copy()
    truth[..., 2] = np.where(truth[..., 2] == 2, 2, 0)  # visible only: occluded ones are unseen

    sources = {"ground truth": truth, "segmenter": predicted}
    rows = [
        ("ground truth", "true", True),
        ("ground truth", "32", True),
        ("segmenter", "true", True),
        ("segmenter", "32", True),
        ("segmenter", "32", False),
    ]
    figures, results_by_row = {}, {}
    header = (
        f"{'keypoints':13s} {'fov':>4s} {'vis':>3s} {'solved':>6s} {'az med':>6s} {'az p90':>6s} "
        f"{'el med':>6s} {'el p90':>6s} {'rot med':>7s} {'Acc@30':>6s} {'s/img':>6s}"
    )
    print(f"{len(data['images'])} images of {args.split} ({size} px)")
    print(header)
    for source, fov, use_visibility in rows:
        base = PnPSettings()
        settings = [
            replace(base, fov_y=float(f) if fov == "true" else FIXED_FOV) for f in data["fov"]
        ]
        start = time.perf_counter()
        results = estimate_cameras(
            sources[source],
            template.points_m(),
            (size, size),
            settings,
            template.visibility if use_visibility else None,
        )
        seconds = (time.perf_counter() - start) / len(results)
        summary = camera_errors(
            results, data["azimuth"], data["elevation"], data["views"][:, :3, :3]
        ).summary()
        summary["seconds_per_image"] = seconds
        key = f"{source.replace(' ', '_')}_fov{fov}" + ("" if use_visibility else "_novis")
        figures[key] = {k: round(float(v), 4) for k, v in summary.items()}
        results_by_row[key] = results
        print(
            f"{source:13s} {fov:>4s} {'yes' if use_visibility else 'no':>3s} "
            f"{summary['solved']:6.3f} {summary['azimuth_median']:6.2f} "
            f"{summary['azimuth_p90']:6.2f} {summary['elevation_median']:6.2f} "
            f"{summary['elevation_p90']:6.2f} {summary['rotation_median']:7.2f} "
            f"{summary['acc30_rotation']:6.3f} {seconds:6.3f}"
        )

    if args.sheet is not None:
        tiles = []
        points = torch.tensor(template.points_m(), dtype=torch.float32)
        for index, result in enumerate(results_by_row["segmenter_fov32"][:24]):
            skeletons = [(data["cameras"][index].project(points)[0].numpy(), (0, 220, 0))]
            if result is not None:
                skeletons.append((result.camera.project(points)[0].numpy(), (255, 0, 200)))
            tiles.append(draw_overlay(data["images"][index], 4, skeletons, predicted[index]))
        atomic_write_png(args.sheet, contact_sheet(tiles, 6))
        print(f"wrote {args.sheet}: template by the true (green) and estimated (magenta) camera")
    print(json.dumps({"split": str(args.split), "images": len(data["images"]), **figures}))


def multiview_report(root: Path, sheet: Path | None, rows: int, segmenter: Path) -> None:
    """Per view code: the mean camera, the spread of its images' cameras, the mean camera from
    the CarWorld segmenter's keypoints on the same images (a second, independent detector) and
    their azimuth difference, and a sheet."""
    from PIL import Image

    from assetgan.pipeline.multiview.cameras import mean_cameras
    from assetgan.pipeline.multiview.sample import MultiviewSet

    multiview = MultiviewSet.load(root)
    if not multiview.finished:
        raise SystemExit(f"{root}: the set is not finished")
    settings, means = multiview.settings, multiview.cameras()
    manifest = multiview.manifest()
    template = load_shipped_template()
    images = np.stack([np.asarray(Image.open(root / r["image"]).convert("RGB")) for r in manifest])
    model, _ = load_segmenter(segmenter)
    _, detected = predict(model, images)
    by_segmenter = mean_cameras(
        estimate_cameras(
            detected,
            template.points_m(),
            multiview.image_size,
            PnPSettings(fov_y=settings.fov_y),
            template.visibility,
        ),
        [r["view"] for r in manifest],
    )
    print(
        f"{root}: {settings.contents} content codes x {settings.views} view codes, K = "
        f"{settings.view_layers}; summary {json.dumps(multiview.summary)}"
    )
    print(
        f"{'view':>4s} {'azimuth':>7s} {'elev':>5s} {'dist':>5s} {'cams':>4s} {'az MAD':>6s} "
        f"{'el MAD':>6s} {'kept':>5s} | {'seg az':>6s} {'seg MAD':>7s} {'|d az|':>6s}"
    )
    differences, seg_spreads = [], []
    figures = {}
    for view in range(settings.views):
        records = [r for r in manifest if r["view"] == view]
        kept = sum(r["kept"] for r in records) / len(records)
        orbit = means.get(view)
        if orbit is None:
            print(f"{view:4d}  no camera (kept {kept:.2f})")
            continue
        other = by_segmenter.get(view)
        compared = "  no camera from the segmenter"
        figures[str(view)] = {"interpreter": orbit.to_json()}
        if other is not None:
            difference = float(angle_difference(orbit.azimuth, other.azimuth))
            differences.append(difference)
            seg_spreads.append(other.azimuth_spread)
            compared = f"{other.azimuth:6.1f} {other.azimuth_spread:7.1f} {difference:6.1f}"
            figures[str(view)]["segmenter"] = other.to_json()
        print(
            f"{view:4d} {orbit.azimuth:7.1f} {orbit.elevation:5.1f} {orbit.distance:5.2f} "
            f"{orbit.count:4d} {orbit.azimuth_spread:6.1f} {orbit.elevation_spread:6.1f} "
            f"{kept:5.2f} | {compared}"
        )
    spreads = [o.azimuth_spread for o in means.values()]
    print(
        f"median over view codes: azimuth MAD {np.median(spreads):.1f} deg (interpreter), "
        f"{np.median(seg_spreads):.1f} deg (segmenter); interpreter vs segmenter mean azimuth "
        f"{np.median(differences):.1f} deg, {np.mean(np.array(differences) <= 30):.2f} within 30"
    )
    if sheet is not None:
        points = torch.tensor(template.points_m(), dtype=torch.float32)
        height, width = multiview.image_size
        tiles = []
        for content in range(min(rows, settings.contents)):
            for view in range(settings.views):
                name = f"images/c{content:05d}_v{view:03d}.png"
                image = np.asarray(Image.open(root / name).convert("RGB"))
                skeletons = []
                if view in means:
                    camera = means[view].camera(settings.fov_y, (height, width))
                    skeletons.append((camera.project(points)[0].numpy(), (255, 0, 200)))
                tiles.append(draw_overlay(image, 3, skeletons))
        atomic_write_png(sheet, contact_sheet(tiles, settings.views))
        print(f"wrote {sheet}: the template by each view code's mean camera (magenta)")
    print(
        json.dumps(
            {
                "multiview": str(root),
                "summary": multiview.summary,
                "views": figures,
                "median_azimuth_mad": float(np.median(spreads)),
                "median_azimuth_mad_segmenter": float(np.median(seg_spreads)),
                "median_azimuth_difference": float(np.median(differences)),
                "share_within_30": float(np.mean(np.array(differences) <= 30)),
            }
        )
    )


if __name__ == "__main__":
    main()
