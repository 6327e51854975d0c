"""Side by side: the compact UNet vs torchvision's LRASPP-MobileNetV3 (no pretrained weights) as
the downstream segmenter, same data, same loss, same wall budget, one torch thread each, run one
after the other in one process. Reported: steps reached, mIoU car_20 / car_12 / car_5 and
PCK@0.1 on the test split.

    python benchmarks/segment_arch.py --train /work/data/world/train64 \
        --test /work/data/world/test64 --minutes 10 --class-weight-power 0.5 \
        --work /work/data/segment_compare
Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from assetgan.core.device import Device
from assetgan.pipeline.downstream.data import load_labeled
from assetgan.pipeline.downstream.model import (
    Architecture,
    Segmenter,
    SegmenterConfig,
    count_parameters,
)
from assetgan.pipeline.downstream.train import SegmentTrainConfig, fit

THIN_PARTS = ("handles", "mirror", "licensePlate", "grilles", "car_lights", "tailLight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--work", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--class-weight-power", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", choices=[d.value for d in Device], default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_set, test_set = load_labeled(args.train), load_labeled(args.test)
    results = {}
    for architecture in Architecture:
        out = Path(args.work) / architecture
        shutil.rmtree(out, ignore_errors=True)
        model = SegmenterConfig(architecture=architecture)
        config = SegmentTrainConfig(
            data=Path(args.train),
            out=out,
            val=Path(args.test),
            device=Device(args.device),
            model=model,
            minutes=args.minutes,
            batch=args.batch,
            seed=args.seed,
            class_weight_power=args.class_weight_power,
        )
        start = time.perf_counter()
        trained = fit(config, train_set, val=test_set)  # both sets read once for both networks
        metrics = json.loads(trained.val_metrics.read_text())
        results[architecture.value] = {
            "parameters": count_parameters(Segmenter(model)),
            "steps": trained.steps,
            "epochs": trained.epochs,
            "seconds": round(time.perf_counter() - start, 1),
            **{
                f"miou_{t}": metrics["segmentation"][t]["miou"]
                for t in ("car_20", "car_12", "car_5")
            },
            "pck@0.1": metrics["keypoints"]["pck@0.1"],
            "thin_part_iou": {
                name: metrics["segmentation"]["car_20"]["per_class_iou"][name]
                for name in THIN_PARTS
            },
        }
    print(
        f"{'arch':<8} {'params':>9} {'steps':>6} {'mIoU20':>7} {'mIoU12':>7} {'mIoU5':>7} {'PCK':>6}"
    )
    for name, row in results.items():
        print(
            f"{name:<8} {row['parameters']:>9} {row['steps']:>6} {row['miou_car_20']:>7.3f} "
            f"{row['miou_car_12']:>7.3f} {row['miou_car_5']:>7.3f} {row['pck@0.1'] or 0:>6.3f}"
        )
    summary = {"minutes": args.minutes, "class_weight_power": args.class_weight_power}
    print(json.dumps({**summary, "train": args.train, "test": args.test, **results}))


if __name__ == "__main__":
    main()
