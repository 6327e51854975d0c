"""`assetgan gan ...`: train, sample, inspect and export StyleGAN2 generators (docs/stylegan.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.gan_import import import_command
from assetgan.commands.options import (
    CutoffOpt,
    DeviceChoice,
    DeviceOpt,
    PsiOpt,
    SeedOpt,
    resolve_device,
)
from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.train_config import Preset

app = App(help="StyleGAN2: train on an image folder, sample, inspect, export, import.")
app.command("import")(import_command)

CkptOpt = Annotated[
    Path,
    typer.Option(
        "--ckpt", help="Generator .safetensors, a checkpoint directory or a run directory (G_ema)."
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="torch CPU threads (default: torch's choice)."),
]


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@app.command("train")
def train_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="Image folder (DIR/images if present).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="New run directory.")] = None,
    res: Annotated[int, typer.Option("--res", help="Training resolution (power of two).")] = 64,
    preset: Annotated[Preset, typer.Option("--preset", help="Model + schedule preset.")] = (
        Preset.cpu64
    ),
    kimg: Annotated[
        float | None, typer.Option("--kimg", help="Total thousand real images to show.")
    ] = None,
    batch: Annotated[int | None, typer.Option("--batch", help="Batch size.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Adam lr of G and D.")] = None,
    gamma: Annotated[float | None, typer.Option("--gamma", help="R1 weight.")] = None,
    pl_weight: Annotated[
        float | None, typer.Option("--pl-weight", help="Path-length weight (0 = off).")
    ] = None,
    ema_kimg: Annotated[float | None, typer.Option("--ema-kimg", help="EMA half-life.")] = None,
    snap_kimg: Annotated[
        float | None, typer.Option("--snap-kimg", help="Checkpoint + grid + KID every K kimg.")
    ] = None,
    tick_kimg: Annotated[
        float | None, typer.Option("--tick-kimg", help="metrics.jsonl line every K kimg.")
    ] = None,
    kid_images: Annotated[
        int | None, typer.Option("--kid-images", help="Images for KID (0 = off).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue this run directory exactly.")
    ] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = DeviceChoice.auto,
    threads: ThreadsOpt = None,
) -> None:
    """Train a StyleGAN2 on a folder of square PNG/JPG images.

    Example: assetgan gan train --data runs/carworld/train --res 64 --out runs/gan64 --kimg 160

    Resume (same data; --kimg, --data and --device may change):
    assetgan gan train --resume runs/gan64 --kimg 200
    """
    from assetgan.pipeline.stylegan.run_dir import load_config
    from assetgan.pipeline.stylegan.train import run
    from assetgan.pipeline.stylegan.train_config import preset_config

    _set_threads(threads)
    if resume is not None:
        if out is not None and out.resolve() != resume.resolve():
            raise AssetganError("--resume continues in its own run directory; omit --out")
        changes = {"total_kimg": kimg, "data": None if data is None else str(data)}
        base = dataclasses.replace(load_config(resume), out=str(resume), device=device, resume=True)
    else:
        if data is None or out is None:
            raise AssetganError(
                "gan train needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)"
            )
        changes = {
            "total_kimg": kimg,
            "batch": batch,
            "g_lr": lr,
            "d_lr": lr,
            "r1_gamma": gamma,
            "pl_weight": pl_weight,
            "ema_kimg": ema_kimg,
            "snap_kimg": snap_kimg,
            "tick_kimg": tick_kimg,
            "kid_images": kid_images,
        }
        base = dataclasses.replace(
            preset_config(preset, str(data), str(out), res), seed=seed, device=device
        )
    config = dataclasses.replace(base, **{k: v for k, v in changes.items() if v is not None})
    try:
        with progress_bar("training", config.total_kimg) as progress:
            result = run(config, progress)
    except KeyboardInterrupt:
        raise AssetganError(
            f"interrupted; continue with: assetgan gan train --resume {config.out}"
        ) from None
    typer.echo(
        f"trained to {result.kimg:g} kimg; checkpoint {result.checkpoint}; "
        f"export with: assetgan gan export-generator {result.run_dir} --out G.safetensors"
    )


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
    from assetgan.pipeline.stylegan.checkpoint import load_generator
    from assetgan.pipeline.stylegan.run_dir import resolve_generator_file
    from assetgan.pipeline.stylegan.sampling import mixing_grid, parse_index_list, sample_grid

    row_seeds = parse_index_list(seeds, "--seeds")
    path = resolve_generator_file(ckpt)
    generator = load_generator(path, device=resolve_device(device))
    if mix:
        layers = parse_index_list(mix_layers, "--mix-layers")
        col_seeds = parse_index_list(mix_seeds, "--mix-seeds")
        mixing_grid(generator, row_seeds, col_seeds, layers, out, psi=psi, cutoff=cutoff)
        typer.echo(f"wrote {out} ({len(row_seeds)} x {len(col_seeds)} mixes of ws {mix_layers})")
        return
    sample_grid(generator, row_seeds, out, psi=psi, cutoff=cutoff, columns=columns)
    typer.echo(f"wrote {out} ({len(row_seeds)} images from {path})")


@app.command("info")
def info_command(
    ckpt: CkptOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a generator's config, parameter counts and feature taps.

    Example: assetgan gan info --ckpt G.safetensors
    """
    from assetgan.pipeline.stylegan.checkpoint import read_generator_header
    from assetgan.pipeline.stylegan.networks import Generator
    from assetgan.pipeline.stylegan.run_dir import resolve_generator_file

    path = resolve_generator_file(ckpt)
    config, info = read_generator_header(path)
    generator = Generator(config)  # shapes only; the weights are not needed for counts and taps
    counts = {
        name: sum(p.numel() for p in getattr(generator, name).parameters())
        for name in ("mapping", "synthesis")
    }
    taps = generator.synthesis.feature_taps()
    summary = {
        "checkpoint": str(path),
        "config": config.to_dict(),
        "info": info,
        "num_ws": config.num_ws,
        "image_shape": list(config.image_shape),
        "parameters": {**counts, "total": sum(counts.values())},
        "feature_taps": [dataclasses.asdict(t) for t in taps],
        "feature_channels": sum(t.channels for t in taps),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"checkpoint   {path}")
    typer.echo(f"resolution   {config.resolution} (images {list(config.image_shape)})")
    typer.echo(f"z/w dims     {config.z_dim}/{config.w_dim}, {config.num_ws} ws")
    typer.echo(f"mapping      {config.mapping_layers} layers, lr x{config.mapping_lr_multiplier:g}")
    channels = config.channels_per_resolution()
    typer.echo("channels     " + " ".join(f"{r}:{c}" for r, c in channels.items()))
    typer.echo(
        f"parameters   mapping {counts['mapping']:,}  synthesis {counts['synthesis']:,}  "
        f"total {sum(counts.values()):,}"
    )
    if info:
        typer.echo(f"info         {json.dumps(info, sort_keys=True)}")
    typer.echo(f"feature taps ({summary['feature_channels']} channels):")
    for tap in taps:
        typer.echo(f"  {tap.name:<12} {tap.channels:>5} ch  {tap.resolution}x{tap.resolution}")


@app.command("export-generator")
def export_command(
    run: Annotated[
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
    import shlex
    import sys

    from assetgan.pipeline.stylegan.checkpoint import load_generator
    from assetgan.pipeline.stylegan.model_card import card_facts, write_model_card
    from assetgan.pipeline.stylegan.run_dir import export_generator, resolve_generator_file

    source = resolve_generator_file(run, ema=not raw)
    facts = card_facts(source) if card else None  # fail before writing if no card can be made
    path = export_generator(run, out, fp16=fp16, ema=not raw)
    typer.echo(f"wrote {path} and {path.with_suffix('.json')}")
    if facts is not None:
        command = "assetgan " + shlex.join(["gan", "export-generator", *sys.argv[3:]])
        written = write_model_card(load_generator(path), facts, path, command)
        typer.echo(f"wrote {written} and sample grids")


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

    _set_threads(threads)
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
