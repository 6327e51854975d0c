"""Model cards for exported generators: the command, seed, kimg, wall time, KID and samples;
and `describe_generator`, the facts `gan info` shows for any generator checkpoint.

Everything on the card is read from the training run itself (train_config.json, the exported
checkpoint's progress.json, metrics.jsonl), so the card cannot drift from the weights. The
`gan train` command line is rebuilt from the run's config: the preset plus every option whose
value differs from the preset's.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_text, read_json_object
from assetgan.pipeline.stylegan.checkpoint import read_generator_header
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.networks import FeatureTap, Generator
from assetgan.pipeline.stylegan.run_dir import load_config, read_metrics, resolve_generator_file
from assetgan.pipeline.stylegan.sampling import parse_index_list, sample_grid
from assetgan.pipeline.stylegan.train_config import NOT_SAVED, GanTrainConfig, preset_config

# GanTrainConfig field -> `gan train` option (fields a user can set on the command line)
_OPTIONS = {
    "total_kimg": "--kimg",
    "batch": "--batch",
    "g_lr": "--lr",
    "r1_gamma": "--gamma",
    "pl_weight": "--pl-weight",
    "ema_kimg": "--ema-kimg",
    "snap_kimg": "--snap-kimg",
    "tick_kimg": "--tick-kimg",
    "kid_images": "--kid-images",
}
SAMPLE_SEEDS = "0-31"


def train_command(config: GanTrainConfig) -> str:
    """The `assetgan gan train` command line that starts a run with this config."""
    preset = preset_config(config.preset, config.data, config.out, config.generator.resolution)
    words = [
        "assetgan gan train",
        f"--data {config.data}",
        f"--res {config.generator.resolution}",
        f"--preset {config.preset}",
        f"--out {config.out}",
    ]
    for field, option in _OPTIONS.items():
        value = getattr(config, field)
        if field == "total_kimg" or value != getattr(preset, field):
            words.append(f"{option} {value:g}")
    words.append(f"--seed {config.seed}")
    unexpressed = [
        f.name
        for f in dataclasses.fields(GanTrainConfig)
        if f.name not in _OPTIONS
        and f.name not in ("data", "out", "seed", "device", "d_lr", "total_kimg", *NOT_SAVED)
        and getattr(config, f.name) != getattr(preset, f.name)
    ]
    if config.d_lr != config.g_lr:
        unexpressed.append("d_lr")
    if unexpressed:
        raise AssetganError(
            f"run config differs from preset {config.preset} in {unexpressed}, which `gan train` "
            f"options cannot express; write the card by hand"
        )
    return " ".join(words)


def _checkpoint_of(generator_file: Path) -> Path:
    checkpoint = generator_file.parent
    if not (checkpoint / "progress.json").is_file():
        raise AssetganError(
            f"{generator_file}: a model card needs a training checkpoint directory "
            f"(progress.json beside the generator); got a standalone file"
        )
    return checkpoint


def card_facts(generator_file: Path) -> dict[str, Any]:
    """command, seed, kimg, wall time and the KID history up to the exported checkpoint."""
    checkpoint = _checkpoint_of(generator_file)
    run_dir = checkpoint.parent.parent
    config = load_config(run_dir)
    progress = read_json_object(checkpoint / "progress.json")
    kimg = progress["cur_nimg"] / 1000
    kids = [
        (m["kimg"], m["kid"], m.get("kid_std"))
        for m in read_metrics(run_dir)
        if "kid" in m and m["kimg"] <= kimg + 1e-9
    ]
    return {
        "command": train_command(config),
        "seed": config.seed,
        "kimg": kimg,
        "wall_hours": progress["elapsed_sec"] / 3600,
        "kid_history": kids,
        "data": config.data,
        "checkpoint": str(checkpoint),
        "config": config,
    }


def write_model_card(
    generator: Generator,
    facts: dict[str, Any],  # card_facts() of the checkpoint the export came from
    out: Path,  # the exported .safetensors; card and sample grids go beside it
    export_command: str,  # the `gan export-generator` line that wrote `out`
) -> tuple[Path, tuple[Path, Path]]:
    """Write model_card.md, samples.png (psi 1) and samples_psi0.7.png beside `out`; returns
    (card, (samples, samples_psi0.7))."""
    seeds = parse_index_list(SAMPLE_SEEDS)
    samples = (
        sample_grid(generator, seeds, out.parent / "samples.png", columns=8),
        sample_grid(generator, seeds, out.parent / "samples_psi0.7.png", psi=0.7, columns=8),
    )
    config: GanTrainConfig = facts["config"]
    g = config.generator
    kid_rows = "\n".join(
        f"| {k:g} | {kid * 1e3:.2f} | {std * 1e3:.2f} |"
        if std is not None
        else f"| {k:g} | {kid * 1e3:.2f} | |"
        for k, kid, std in facts["kid_history"]
    )
    final_kid = facts["kid_history"][-1][1] * 1e3 if facts["kid_history"] else float("nan")
    text = f"""# {out.name}: StyleGAN2 generator trained on CarWorld

Produced by this project's own commands; nothing here comes from another project.

| | |
|---|---|
| resolution | {g.resolution} x {g.resolution} |
| architecture | StyleGAN2 (docs/stylegan.md), preset `{config.preset}`: z/w {g.z_dim}/{g.w_dim}, mapping {g.mapping_layers} layers, channel_base {g.channel_base}, channel_max {g.channel_max}, {generator.num_ws} ws |
| parameters | {sum(p.numel() for p in generator.parameters()):,} |
| training data | `{facts["data"]}` (CarWorld split, see its split.json) |
| seed | {facts["seed"]} |
| trained | {facts["kimg"]:g} kimg (thousand real images shown), batch {config.batch} |
| wall time | {facts["wall_hours"]:.2f} h of training on CPU (checkpoint elapsed time, summed over resumes) |
| KID x 1e3 (final) | {final_kid:.2f} (on the project's fixed random feature net, docs/stylegan.md) |

## Commands

    {facts["command"]}
    # resumed across sessions with: assetgan gan train --resume {config.out} --data {config.data}
    {export_command}

## KID during training (x 1e3, lower is better; {config.kid_images} images)

| kimg | KID | std |
|---|---|---|
{kid_rows}

## Samples

samples.png: seeds {SAMPLE_SEEDS}, psi 1 (no truncation). samples_psi0.7.png: the same seeds, psi 0.7.
"""
    return atomic_write_text(out.parent / "model_card.md", text), samples


@dataclass(frozen=True)
class GeneratorSummary:
    """What a generator checkpoint holds (`gan info`), read without loading its weights."""

    checkpoint: Path  # the generator .safetensors
    config: GeneratorConfig  # its architecture
    info: dict[str, Any]  # provenance from the header (run, kimg, imported_from, ...)
    parameters: dict[str, int]  # mapping, synthesis and total parameter counts
    feature_taps: tuple[FeatureTap, ...]  # synthesis feature maps in forward order

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (`gan info --json`)."""
        return {
            "checkpoint": str(self.checkpoint),
            "config": self.config.to_dict(),
            "info": self.info,
            "num_ws": self.config.num_ws,
            "image_shape": list(self.config.image_shape),
            "parameters": self.parameters,
            "feature_taps": [dataclasses.asdict(t) for t in self.feature_taps],
            "feature_channels": sum(t.channels for t in self.feature_taps),
        }

    def lines(self) -> list[str]:
        """The summary as text lines (`gan info`)."""
        config, counts = self.config, self.parameters
        channels = config.channels_per_resolution()
        lines = [
            f"checkpoint   {self.checkpoint}",
            f"resolution   {config.resolution} (images {list(config.image_shape)})",
            f"z/w dims     {config.z_dim}/{config.w_dim}, {config.num_ws} ws",
            f"mapping      {config.mapping_layers} layers, lr x{config.mapping_lr_multiplier:g}",
            "channels     " + " ".join(f"{r}:{c}" for r, c in channels.items()),
            f"parameters   mapping {counts['mapping']:,}  synthesis {counts['synthesis']:,}  "
            f"total {counts['total']:,}",
        ]
        if self.info:
            lines.append(f"info         {json.dumps(self.info, sort_keys=True)}")
        lines.append(f"feature taps ({sum(t.channels for t in self.feature_taps)} channels):")
        lines += [
            f"  {t.name:<12} {t.channels:>5} ch  {t.resolution}x{t.resolution}"
            for t in self.feature_taps
        ]
        return lines


def describe_generator(source: str | Path) -> GeneratorSummary:
    """The summary of a generator file, checkpoint directory or run directory (G_ema)."""
    path = resolve_generator_file(source)
    config, info = read_generator_header(path)
    generator = Generator(config)  # shapes only; the weights are not needed for counts and taps
    counts = {
        name: sum(p.numel() for p in getattr(generator, name).parameters())
        for name in ("mapping", "synthesis")
    }
    return GeneratorSummary(
        checkpoint=path,
        config=config,
        info=info,
        parameters={**counts, "total": sum(counts.values())},
        feature_taps=tuple(generator.synthesis.feature_taps()),
    )
