"""`gan export-generator`: a training run's G_ema as a standalone generator checkpoint.

`run(ExportGeneratorConfig) -> ExportGeneratorResult` writes OUT (.safetensors) and OUT with
suffix .json; with `card`, also model_card.md, samples.png and samples_psi0.7.png beside OUT
(model_card.py: every figure on the card is read from the run).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from assetgan.core.progress import Progress, emit
from assetgan.pipeline.stylegan.checkpoint import (
    load_generator,
    read_generator_header,
    save_generator,
)
from assetgan.pipeline.stylegan.model_card import card_facts, write_model_card
from assetgan.pipeline.stylegan.run_dir import resolve_generator_file


@dataclass(frozen=True)
class ExportGeneratorConfig:
    """What to export from where."""

    source: Path  # run directory, checkpoint directory or generator .safetensors
    out: Path  # the standalone generator .safetensors (its .json beside it)
    fp16: bool = False  # store float16 weights (half the size; loaded back as float32)
    ema: bool = True  # the EMA generator G_ema (what ships); False = the trained G (--raw)
    card: bool = False  # also write model_card.md and sample grids beside `out` (needs a run)


@dataclass(frozen=True)
class ExportGeneratorResult:
    """What `run` wrote."""

    generator: Path  # the exported .safetensors
    config_json: Path  # its config and info as JSON
    card: Path | None  # model_card.md, when asked for
    samples: tuple[Path, ...]  # the card's sample grids (empty without a card)


def export_command(config: ExportGeneratorConfig) -> str:
    """The `assetgan gan export-generator` line that makes this export (quoted on the card)."""
    words = ["gan", "export-generator", str(config.source), "--out", str(config.out)]
    words += ["--fp16"] * config.fp16 + ["--raw"] * (not config.ema) + ["--card"] * config.card
    return "assetgan " + shlex.join(words)


def run(config: ExportGeneratorConfig, progress: Progress | None = None) -> ExportGeneratorResult:
    """Export the generator (and its card). A card needs a training checkpoint as the source;
    that is checked before anything is written."""
    source = resolve_generator_file(config.source, ema=config.ema)
    facts = card_facts(source) if config.card else None
    steps = 2 if facts is not None else 1
    generator = load_generator(source)
    _config, info = read_generator_header(source)
    path = save_generator(
        generator, config.out, fp16=config.fp16, info={**info, "exported_from": str(source)}
    )
    emit(progress, 1, steps, task="export")
    card, samples = None, ()
    if facts is not None:
        card, samples = write_model_card(load_generator(path), facts, path, export_command(config))
        emit(progress, 2, steps, task="export")
    return ExportGeneratorResult(path, path.with_suffix(".json"), card, samples)
