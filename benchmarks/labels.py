"""Label quality of the factory from 16 annotations, both ways of getting them without a human.

Both interpreters are scored on the same real images: N held-out CarWorld renders inverted into
the generator (HandsOff), labeled from the features of G(w) and compared with CarWorld ground
truth. So every figure is "labels the factory would produce for a picture like this", and
includes the inversion's error.

- handsoff:  `annotate invert` 16 CarWorld train renders (real labels) -> `interpreter train`.
- simulated: `annotate simulate` 16 generator samples labeled by the CarWorld segmenter as noisy
  LabelMe polygons -> `interpreter train`.
- segmenter: the segmenter itself on the real test renders (`segment eval`): a network trained
  on 10,000 ground-truth images, the reference the 16-annotation paths are compared with.

Every step writes its own output directory and is skipped when that exists, so a killed run
continues where it stopped.

    python benchmarks/labels.py --generator assetgan/assets/carworld64/G.safetensors \
        --segmenter assetgan/assets/segmenter64/segmenter.safetensors \
        --train /work/data/world/train64 --test /work/data/world/test64 --work runs/labels
Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ASSETGAN = [sys.executable, "-m", "assetgan.cli"]


def run(args: list[str], done_marker: Path, log: Path) -> float:
    """Run an assetgan command unless `done_marker` exists; return its wall seconds (0 if skipped)."""
    if done_marker.exists():
        return 0.0
    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ assetgan " + " ".join(args) + "\n")
        handle.flush()
        subprocess.run([*ASSETGAN, *args], check=True, stdout=handle, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", required=True)
    parser.add_argument("--segmenter", required=True)
    parser.add_argument("--train", required=True, help="CarWorld split for HandsOff's 16 images")
    parser.add_argument("--test", required=True, help="held-out CarWorld split")
    parser.add_argument("--work", required=True, help="output directory (resumable)")
    parser.add_argument("--n-test", type=int, default=48)
    parser.add_argument("--annotations", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300, help="inversion steps")
    parser.add_argument("--members", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    g = ["-g", args.generator]
    dev = ["--device", "cpu"]
    seconds = {}
    seconds["invert_test"] = run(
        ["annotate", "invert", *g, "--images", args.test, "--n", str(args.n_test),
         "--steps", str(args.steps), "--out", str(work / "test_inverted"), *dev],
        work / "test_inverted" / "annotations.json", log,
    )  # fmt: skip
    seconds["invert_train"] = run(
        ["annotate", "invert", *g, "--images", args.train, "--n", str(args.annotations),
         "--steps", str(args.steps), "--out", str(work / "handsoff"), *dev],
        work / "handsoff" / "annotations.json", log,
    )  # fmt: skip
    seconds["simulate"] = run(
        ["annotate", "simulate", *g, "--segmenter", args.segmenter, "--n", str(args.annotations),
         "--out", str(work / "simulated"), *dev],
        work / "simulated" / "annotations.json", log,
    )  # fmt: skip
    results = {}
    for path in ("handsoff", "simulated"):
        model = work / f"interpreter_{path}.safetensors"
        seconds[f"train_{path}"] = run(
            ["interpreter", "train", *g, "--annotations", str(work / path),
             "--members", str(args.members), "--out", str(model), *dev],
            model, log,
        )  # fmt: skip
        metrics = work / f"eval_{path}.json"
        run(
            ["interpreter", "eval", "--interpreter", str(model), "--generator", args.generator,
             "--annotations", str(work / "test_inverted"), "--out", str(metrics), *dev],
            metrics, log,
        )  # fmt: skip
        results[path] = json.loads(metrics.read_text())
    seg_metrics = work / "eval_segmenter.json"
    run(
        ["segment", "eval", "--model", args.segmenter, "--data", args.test,
         "--out", str(seg_metrics)],
        seg_metrics, log,
    )  # fmt: skip
    results["segmenter"] = json.loads(seg_metrics.read_text())
    images = json.loads((work / "test_inverted" / "inversion.json").read_text())["images"]
    inversion = {
        "test_images": len(images),
        "mean_mse": sum(i["mse"] for i in images) / len(images),
        "mean_psnr_db": sum(i["psnr_db"] for i in images) / len(images),
    }

    print(f"{'path':<12} {'mIoU car_20':>12} {'car_12':>7} {'car_5':>7}  PCK")
    for name in ("handsoff", "simulated"):
        pck = results[name].get("pck") or {}
        merged = results[name].get("merged", {})
        coarse = [merged.get(t, {}).get("miou") for t in ("car_12", "car_5")]
        coarse_text = " ".join(f"{m:>7.3f}" if m is not None else f"{'-':>7}" for m in coarse)
        print(f"{name:<12} {results[name]['miou']:>12.3f} {coarse_text}  {json.dumps(pck)}")
    seg = results["segmenter"]
    print(
        f"{'segmenter':<12} {seg['segmentation']['car_20']['miou']:>12.3f}  "
        f"(real test images, {seg['images']} of them; PCK@0.1 of the bbox "
        f"{seg['keypoints']['pck@0.1']:.3f})"
    )
    print(json.dumps({"results": results, "seconds": seconds, "inversion": inversion}))


if __name__ == "__main__":
    main()
