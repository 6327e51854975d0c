"""`assetgan dataset ...`: generate uncertainty-filtered labeled pairs; view them (docs/formats.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import DeviceChoice, DeviceOpt, OutPath

app = App(help="Datasets: N labeled pairs from a generator + interpreter, filtered by uncertainty.")


@app.command("generate")
def generate(
    generator: Annotated[Path, typer.Option("--generator", "-g", help="Generator checkpoint.")],
    interpreter: Annotated[Path, typer.Option("--interpreter", help="Interpreter checkpoint.")],
    out: OutPath,
    n: Annotated[int, typer.Option("--n", help="Number of samples (seeds seed-start ...).")] = 1000,
    seed_start: Annotated[int, typer.Option(help="First seed.")] = 0,
    psi: Annotated[float, typer.Option(help="Truncation psi.")] = 0.7,
    cutoff: Annotated[
        int | None, typer.Option(help="Truncate the first CUTOFF ws (default 8; -1 = all).")
    ] = 8,
    drop: Annotated[float, typer.Option(help="Share of most uncertain samples to drop.")] = 0.1,
    shard: Annotated[str, typer.Option(help="i/n: write the i-th of n seed ranges.")] = "0/1",
    batch: Annotated[int, typer.Option(help="Latents per forward (part of the identity).")] = 4,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Generate image / part / keypoint / uncertainty samples; rerun to resume after a crash.

    Shards may run at once into the same --out; the last to finish writes manifest and COCO.

    Example: assetgan dataset generate --generator G.safetensors --interpreter I.safetensors --n 1000 --out data/gen --shard 0/4
    """
    from assetgan.pipeline.datasets.generate import DatasetGenerateConfig, run
    from assetgan.pipeline.datasets.layout import DatasetConfig, parse_shard

    dataset = DatasetConfig(
        n=n,
        seed_start=seed_start,
        psi=psi,
        truncation_cutoff=None if cutoff is not None and cutoff < 0 else cutoff,
        drop=drop,
        batch=batch,
    )
    config = DatasetGenerateConfig(
        generator, interpreter, out, dataset, shard=parse_shard(shard), device=device
    ).validate()
    with progress_bar(f"generating shard {shard}", total=0) as progress:
        result = run(config, progress)
    console = Console()
    console.print(f"wrote {result.written} samples; {result.present} of {n} present in {out}")
    if result.finished:
        console.print(
            f"final: kept {result.kept}, dropped {result.dropped} most uncertain "
            f"(score threshold {result.threshold}); manifest.jsonl and coco.json written"
        )
    else:
        console.print("not all shards are done yet; the last shard to finish writes coco.json")


@app.command("view")
def view(
    dataset: Annotated[Path, typer.Argument(help="Generated dataset directory.")],
    out: OutPath,
    limit: Annotated[int | None, typer.Option(help="Show the LIMIT most uncertain.")] = None,
) -> None:
    """Write a static HTML gallery (image, overlay, keypoints, uncertainty), sortable by score.

    Example: assetgan dataset view data/gen --out gallery.html
    """
    from assetgan.pipeline.datasets.view import DatasetViewConfig, run

    config = DatasetViewConfig(dataset, out, limit).validate()
    with progress_bar("drawing the gallery", total=0) as progress:
        result = run(config, progress)
    Console().print(
        f"wrote {result.gallery} ({result.shown} samples, {result.kept} kept in coco.json)"
    )
