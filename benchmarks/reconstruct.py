"""Issue 11 section 5: reconstruction rows side by side on a CarWorld split rendered with
--meshes (assetgan/inverse_graphics/reconstruct/benchmark.py has the figures and their
definitions; docs/reconstruct.md the results).

Rows: `--model NAME=PATH` for each network (a: trained on a GAN multi-view set, b: trained on
CarWorld renders), and the template row c (the untrained network's mean shape posed by the PnP
camera of the shipped segmenter's keypoints; `--no-template` leaves it out).

    .venv/bin/python benchmarks/reconstruct.py --split /work/data/world/test64m \\
        --model b=runs/recon/model.safetensors --out runs/recon_bench [--n 200] [--threads 1]

Prints a table (rows x figures); writes OUT/turntables.png (16 test cars: input | each row |
ground truth at input azimuth + 0/90/180/270, texture and part colours) and
OUT/reconstruct_bench.json; the last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from assetgan.commands.app import progress_bar
from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.reconstruct.benchmark import (
    ReconstructBenchConfig,
    run,
    table_lines,
)


def model_argument(value: str) -> tuple[str, Path]:
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    return name, Path(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", type=Path, default=Path("/work/data/world/test64m"))
    parser.add_argument("--model", type=model_argument, action="append", default=[])
    parser.add_argument("--no-template", action="store_true", help="leave out row c")
    parser.add_argument("--n", type=int, default=None, help="first N images (default: all)")
    parser.add_argument("--out", type=Path, required=True, help="directory for JSON and sheet")
    parser.add_argument("--sheet-cars", type=int, default=16)
    parser.add_argument("--pnp-fov", type=float, default=32.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", type=Device, default=Device.cpu, choices=list(Device))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = ReconstructBenchConfig(
        split=args.split,
        out=args.out,
        models=tuple(args.model),
        template=not args.no_template,
        n=args.n,
        sheet_cars=args.sheet_cars,
        pnp_fov=args.pnp_fov,
        device=args.device,
    )
    try:
        with progress_bar("reconstruct benchmark") as progress:
            result = run(config, progress)
    except AssetganError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for line in table_lines(result.figures):
        print(line)
    print(f"wrote {result.json_path}" + (f" and {result.sheet}" if result.sheet else ""))
    print(f"{result.seconds:.1f} s")
    print(json.dumps(result.figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
