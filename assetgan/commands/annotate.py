"""`assetgan annotate ...`: annotations in and out (docs/annotate.md).

export (samples + LabelMe skeletons) -> a human labels them -> import (LabelMe / COCO / PNG) ->
annotation set; select chooses which samples to label; invert turns real labeled images into
latents (HandsOff); simulate labels samples with a segmenter through the LabelMe path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assetgan.commands.app import App, progress_bar
from assetgan.commands.options import (
    CutoffOpt,
    DeviceOpt,
    GeneratorOpt,
    OutPath,
    PsiOpt,
    SeedOpt,
)
from assetgan.core.device import Device
from assetgan.pipeline.annotate.importer import ImportFormat
from assetgan.pipeline.annotate.raster import RasterRule
from assetgan.pipeline.annotate.select import SelectMethod

app = App(
    help="Annotations: export samples for LabelMe, select, import labels, HandsOff inversion."
)

CountOpt = Annotated[int, typer.Option("--n", help="Number of samples.")]


@app.command("export")
def export(
    generator: GeneratorOpt,
    out: OutPath,
    n: CountOpt = 16,
    seed: SeedOpt = 0,
    psi: PsiOpt = 0.7,
    cutoff: CutoffOpt = None,
    device: DeviceOpt = Device.auto,
) -> None:
    """Sample N images (seeds SEED..SEED+N-1) with LabelMe skeletons and labels.txt.

    Example: assetgan annotate export -g runs/gan/G.safetensors --n 16 --seed 0 --out ann/export
    """
    from assetgan.pipeline.annotate.export import AnnotateExportConfig, run

    config = AnnotateExportConfig(generator, out, tuple(range(seed, seed + n)), psi, cutoff, device)
    with progress_bar("sampling", n) as progress:
        result = run(config, progress)
    height, width = result.image_size
    typer.echo(
        f"wrote {out}: {len(result.names)} samples {width}x{height} with LabelMe skeletons; "
        f"annotate with: {result.labelme_command}"
    )


@app.command("select")
def select(
    generator: GeneratorOpt,
    out: OutPath,
    candidates: Annotated[int, typer.Option(help="Candidate seeds SEED..SEED+CANDIDATES-1.")] = 200,
    k: Annotated[int, typer.Option("--k", help="Samples to choose and export.")] = 16,
    method: Annotated[
        SelectMethod,
        typer.Option(help="random, coreset (k-center greedy), or uncertainty (JS + coreset)."),
    ] = SelectMethod.coreset,
    interpreter: Annotated[
        Path | None,
        typer.Option(help="Interpreter checkpoint scoring JS uncertainty (--method uncertainty)."),
    ] = None,
    seed: SeedOpt = 0,
    psi: PsiOpt = 0.7,
    cutoff: CutoffOpt = None,
    device: DeviceOpt = Device.auto,
) -> None:
    """Choose K of the candidate samples to annotate and export them like `annotate export`.

    Example: assetgan annotate select -g G.safetensors --candidates 200 --k 16 --method coreset --out ann/export
    """
    from assetgan.pipeline.annotate.select import SelectConfig, run

    choice = dict(method=method, candidates=candidates, k=k, seed=seed, psi=psi, cutoff=cutoff)
    config = SelectConfig(generator, out, **choice, interpreter=interpreter, device=device)
    with progress_bar("embedding candidates", candidates) as progress:
        result = run(config, progress)
    chosen = result.selection
    typer.echo(
        f"chose {len(chosen.seeds)} of {candidates} candidates by {method.value}: seeds "
        f"{', '.join(map(str, chosen.seeds))}; covering radius {chosen.covering_radius:.4f}, "
        f"mean distance to nearest chosen {chosen.mean_distance:.4f}"
    )
    typer.echo(f"wrote {out}: {len(result.export.names)} samples with LabelMe skeletons")


@app.command("import")
def import_(
    source: Annotated[
        Path, typer.Argument(help="LabelMe folder, COCO json file, or PNG mask folder.")
    ],
    out: OutPath,
    format: Annotated[
        ImportFormat, typer.Option("--format", help="How SOURCE is written.")
    ] = ImportFormat.labelme,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="The `annotate export` folder (default: found from SOURCE)."),
    ] = None,
    rule: Annotated[
        RasterRule,
        typer.Option(help="LabelMe rasterisation: pixel centres, or labelme2voc's PIL masks."),
    ] = RasterRule.centre,
) -> None:
    """Import labels of exported samples into an annotation set (paired with their latents).

    Example: assetgan annotate import ann/export/images --format labelme --out ann/set
    """
    from assetgan.pipeline.annotate.importer import ImportConfig, run

    with progress_bar("reading labels") as progress:
        result = run(ImportConfig(source, out, format, export, rule), progress)
    typer.echo(
        f"wrote {out}: {len(result.imported)} annotated samples from {source} "
        f"({len(result.skipped)} without labels skipped; latents from {result.export})"
    )


@app.command("invert")
def invert(
    generator: GeneratorOpt,
    images: Annotated[
        Path, typer.Option("--images", help="CarWorld split folder: images/, parts/, meta/.")
    ],
    out: OutPath,
    n: CountOpt = 16,
    steps: Annotated[int, typer.Option(help="Adam steps per batch of images.")] = 300,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 0.03,
    multiscale: Annotated[float, typer.Option(help="Weight of the pooled (2x, 4x) MSE.")] = 1.0,
    perceptual: Annotated[
        float, typer.Option(help="Weight of the random-feature-net perceptual term (0 = off).")
    ] = 0.0,
    w_avg_weight: Annotated[float, typer.Option(help="Pull towards w_avg.")] = 1e-3,
    batch: Annotated[int, typer.Option(help="Images optimised jointly.")] = 16,
    device: DeviceOpt = Device.auto,
) -> None:
    """HandsOff: invert N labeled real images into W+ and pair them with their real labels.

    Example: assetgan annotate invert -g G.safetensors --images data/world/train64 --n 16 --out ann/handsoff
    """
    from assetgan.pipeline.annotate.invert import InversionSettings, InvertConfig, psnr, run

    settings = InversionSettings(
        steps=steps,
        lr=lr,
        multiscale_weight=multiscale,
        perceptual_weight=perceptual,
        w_avg_weight=w_avg_weight,
        batch=batch,
    )
    config = InvertConfig(generator, images, out, n, settings, device)
    with progress_bar("inverting", ((n + batch - 1) // batch) * steps) as progress:
        result = run(config, progress)
    for name, mse, start in zip(result.names, result.mse, result.initial_mse, strict=True):
        typer.echo(f"{name}: mse {mse:.4f} (from {start:.4f}), psnr {psnr(mse):.2f} dB")
    typer.echo(
        f"wrote {out}: {len(result.names)} inverted images, mean mse {result.mean_mse:.4f}, "
        f"mean psnr {result.mean_psnr_db:.2f} dB (images in [-1, 1]); real vs G(w) in "
        f"{result.reconstructions}"
    )


@app.command("simulate")
def simulate(
    generator: GeneratorOpt,
    segmenter: Annotated[
        Path, typer.Option("--segmenter", help="Segmenter checkpoint that labels the samples.")
    ],
    out: OutPath,
    predictor: Annotated[
        str | None,
        typer.Option(
            help="package.module:function building the predictor from (checkpoint, device); "
            "default: chosen by the checkpoint's kind."
        ),
    ] = None,
    n: CountOpt = 16,
    seed: SeedOpt = 0,
    psi: PsiOpt = 0.7,
    cutoff: CutoffOpt = None,
    vertex_noise: Annotated[float, typer.Option(help="Polygon vertex jitter, px (std).")] = 0.25,
    simplify: Annotated[float, typer.Option(help="Douglas-Peucker tolerance, px.")] = 0.5,
    keypoint_noise: Annotated[float, typer.Option(help="Keypoint jitter, px (std).")] = 0.5,
    device: DeviceOpt = Device.auto,
) -> None:
    """Simulated annotator: a segmenter labels N samples as noisy LabelMe polygons, then import.

    The LabelMe files go to OUT/simulated and pass through `annotate import`'s LabelMe reader.

    Example: assetgan annotate simulate -g G.safetensors --segmenter seg.safetensors --n 16 --out ann/simulated
    """
    from assetgan.pipeline.annotate.simulate import DrawingSettings, SimulateConfig, run

    drawing = DrawingSettings(
        vertex_noise=vertex_noise, simplify=simplify, keypoint_noise=keypoint_noise, seed=seed
    )
    seeds = tuple(range(seed, seed + n))
    config = SimulateConfig(
        generator, segmenter, out, seeds, psi, cutoff, predictor, drawing, device
    )
    with progress_bar("sampling", n) as progress:
        result = run(config, progress)
    typer.echo(
        f"wrote {out}: {len(result.names)} samples labeled by {segmenter.name} through "
        f"LabelMe polygons (in {out / 'simulated'}); agreement with the segmenter's masks: "
        f"pixel accuracy {result.mean_pixel_accuracy:.4f}, mean IoU {result.mean_iou:.4f}"
    )
