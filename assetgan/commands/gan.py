"""`assetgan gan ...`: train, sample, inspect and export StyleGAN2 generators (docs/stylegan.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.gan_eval import eval_command
from assetgan.commands.gan_import import import_command
from assetgan.commands.gan_train import ThreadsOpt, set_threads, train_command
from assetgan.commands.options import (
    CutoffOpt,
    DeviceChoice,
    DeviceOpt,
    PsiOpt,
    SeedOpt,
)

app = App(help="StyleGAN2: train on an image folder, sample, inspect, export, import.")
app.command("import")(import_command)
app.command("eval")(eval_command)
app.command("train")(train_command)

CkptOpt = Annotated[
    Path,
    typer.Option(
        "--ckpt", help="Generator .safetensors, a checkpoint directory or a run directory (G_ema)."
    ),
]


@app.command("sample")
def sample_command(
    ckpt: CkptOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output PNG.")] = Path("grid.png"),
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds, e.g. 0-15,20.")] = "0-15",
    psi: PsiOpt = 1.0,
    cutoff: CutoffOpt = None,
    columns: Annotated[int | None, typer.Option("--columns", min=1, help="Grid columns.")] = None,
    mix: Annotated[
        bool, typer.Option("--mix", help="Style-mixing grid: rows --seeds, columns --mix-seeds.")
    ] = False,
    mix_seeds: Annotated[
        str, typer.Option("--mix-seeds", help="Column seeds of the mixing grid.")
    ] = "100-105",
    mix_layers: Annotated[
        str, typer.Option("--mix-layers", help="w layers taken from the columns (0-3 = coarse).")
    ] = "0-3",
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Write a contact sheet of generated images (deterministic per seed).

    Example: assetgan gan sample --ckpt G.safetensors --seeds 0-15 --psi 0.7 --cutoff 8 --out grid.png
    Mixing: assetgan gan sample --ckpt G.safetensors --mix --seeds 0-4 --mix-seeds 10-15 --mix-layers 0-3
    """
    from assetgan.pipeline.stylegan.sample import GanSampleConfig, run
    from assetgan.pipeline.stylegan.sampling import parse_index_list

    config = GanSampleConfig(
        generator=ckpt,
        out=out,
        seeds=tuple(parse_index_list(seeds, "--seeds")),
        psi=psi,
        cutoff=cutoff,
        columns=columns,
        mix_seeds=tuple(parse_index_list(mix_seeds, "--mix-seeds")) if mix else None,
        mix_layers=tuple(parse_index_list(mix_layers, "--mix-layers")),
        device=device,
    )
    result = run(config)
    if mix:
        typer.echo(f"wrote {out} ({result.seeds} x {result.mix_seeds} mixes of ws {mix_layers})")
    else:
        typer.echo(f"wrote {out} ({result.seeds} images from {result.generator})")


@app.command("info")
def info_command(
    ckpt: CkptOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a generator's config, parameter counts and feature taps.

    Example: assetgan gan info --ckpt G.safetensors
    """
    from assetgan.pipeline.stylegan.model_card import describe_generator

    summary = describe_generator(ckpt)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    for line in summary.lines():
        typer.echo(line)


@app.command("export-generator")
def export_command(
    source: Annotated[
        Path, typer.Argument(metavar="RUN", help="Run directory, checkpoint dir or G file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .safetensors.")] = Path(
        "G.safetensors"
    ),
    fp16: Annotated[bool, typer.Option("--fp16", help="Store float16 weights.")] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="Export the trained G instead of its EMA G_ema.")
    ] = False,
    card: Annotated[
        bool,
        typer.Option(
            "--card", help="Also write model_card.md and sample grids beside --out (from the run)."
        ),
    ] = False,
) -> None:
    """Write a run's G_ema as a standalone generator checkpoint (+ JSON config).

    Example: assetgan gan export-generator runs/gan64 --out assets/carworld64/G.safetensors --fp16 --card
    """
    from assetgan.pipeline.stylegan.export import ExportGeneratorConfig, run

    config = ExportGeneratorConfig(source=source, out=out, fp16=fp16, ema=not raw, card=card)
    result = run(config)
    typer.echo(f"wrote {result.generator} and {result.config_json}")
    if result.card is not None:
        typer.echo(f"wrote {result.card} and sample grids")


@app.command("viewcode")
def viewcode_command(
    ckpt: CkptOpt,
    segmenter: Annotated[
        Path, typer.Option("--segmenter", help="CarWorld segmenter checkpoint (.safetensors).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("viewcode"),
    pairs: Annotated[int, typer.Option("--pairs", min=1, help="(view, content) pairs.")] = 64,
    psi: PsiOpt = 1.0,
    seed: SeedOpt = 0,
    predictor: Annotated[
        str | None,
        typer.Option("--predictor", help="module:function of the segmenter (default: by kind)."),
    ] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = DeviceChoice.auto,
) -> None:
    """Measure which leading w layers hold the viewpoint (docs/stylegan.md, "View code").

    Writes viewcode.json (scores per split point K) and mix_K<best>.png (top row: view sources,
    left column: content sources).
    Example: assetgan gan viewcode --ckpt G.safetensors --segmenter S.safetensors --out viewcode
    """
    from assetgan.pipeline.multiview.viewcode import ViewCodeConfig, run

    set_threads(threads)
    config = ViewCodeConfig(
        generator=ckpt,
        segmenter=segmenter,
        out=out,
        pairs=pairs,
        psi=psi,
        seed=seed,
        predictor=predictor,
        device=device,
    )
    with progress_bar("split points") as progress:
        result = run(config, progress)
    for line in result.report.table():
        typer.echo(line)
    typer.echo(f"wrote {result.report_path} and {result.mix_grid}")
