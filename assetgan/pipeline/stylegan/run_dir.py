"""A training run directory: checkpoints (written atomically as a set), metrics.jsonl.

    RUN_DIR/train_config.json            the resolved GanTrainConfig
    RUN_DIR/metrics.jsonl                one JSON line per tick (KID on snapshot ticks)
    RUN_DIR/reals.png, samples/*.png     real grid, generated grids at fixed seeds
    RUN_DIR/checkpoints/LATEST           name of the newest complete checkpoint
    RUN_DIR/checkpoints/kimg00010.000/    G, G_ema (generator checkpoints), D, optim
                                         (.safetensors) and progress.json

A checkpoint directory is assembled under a temporary name and renamed into place, then LATEST is
replaced, so a crash at any moment leaves the previous checkpoint intact and LATEST valid.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from assetgan.core.checkpoint import load_state_into, load_tensors, save_tensors
from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json, atomic_write_text, read_json_object
from assetgan.pipeline.stylegan.checkpoint import save_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.train_config import GanTrainConfig

PROGRESS_SCHEMA_VERSION = 1
CONFIG_NAME = "train_config.json"
METRICS_NAME = "metrics.jsonl"


@dataclass(frozen=True)
class RunCounters:
    """Counters that locate a checkpoint in the run (everything random derives from them);
    saved in the checkpoint's progress.json."""

    cur_nimg: int  # real images shown so far
    batch_idx: int  # iterations done
    cur_tick: int  # ticks logged
    elapsed_sec: float  # wall time of all sessions so far
    pl_mean: float  # running mean of path lengths (path-length regularisation)


def kimg_tag(nimg: int) -> str:
    """Sortable name of a point in training: 'kimg00010.000' (exact to one image)."""
    return f"kimg{nimg / 1000:09.3f}"


def checkpoint_root(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or None."""
    pointer = checkpoint_root(Path(run_dir)) / "LATEST"
    if not pointer.is_file():
        return None
    path = checkpoint_root(Path(run_dir)) / pointer.read_text(encoding="utf-8").strip()
    return path if (path / "progress.json").is_file() else None


def save_config(run_dir: Path, config: GanTrainConfig) -> None:
    atomic_write_json(run_dir / CONFIG_NAME, config.to_dict())


def load_config(run_dir: str | Path) -> GanTrainConfig:
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise AssetganError(f"{run_dir}: not a training run directory (no {CONFIG_NAME})")
    return GanTrainConfig.from_dict(read_json_object(path))


def resume_config(
    run_dir: str | Path,
    device: Device | str = Device.auto,  # the device may change between sessions
    total_kimg: float | None = None,  # a new target; None = keep the saved one
    data: str | Path | None = None,  # the same images moved elsewhere; None = keep
) -> GanTrainConfig:
    """The config that continues `run_dir` (`gan train --resume`): the saved config with
    resume=True and only what a resume may change."""
    changes: dict[str, Any] = {"out": str(run_dir), "device": device, "resume": True}
    if total_kimg is not None:
        changes["total_kimg"] = total_kimg
    if data is not None:
        changes["data"] = str(data)
    return dataclasses.replace(load_config(run_dir), **changes)


def _optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimizer state dict into tensors (safetensors) and JSON fields."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict, meta: dict
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + ".state."):
            idx, key = name[len(prefix) + 7 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    groups = [dict(g, betas=tuple(g["betas"])) for g in meta["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def write_checkpoint(
    run_dir: Path,
    counters: RunCounters,
    generator: Generator,
    generator_ema: Generator,
    discriminator: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
    keep: int,
) -> Path:
    """Write a complete checkpoint atomically, point LATEST at it, prune to `keep`."""
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / kimg_tag(counters.cur_nimg)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        info = {"run": str(run_dir), "kimg": counters.cur_nimg / 1000}
        save_generator(generator, staging / "G.safetensors", info=info)
        save_generator(generator_ema, staging / "G_ema.safetensors", info={**info, "ema": True})
        d_meta = {
            "assetgan_kind": "stylegan2_discriminator",
            "config": json.dumps(discriminator.config.to_dict(), sort_keys=True),
        }
        save_tensors(staging / "D.safetensors", discriminator.state_dict(), d_meta)
        optim_tensors, optim_meta = {}, {}
        for name, optimizer in optimizers.items():
            tensors, meta = _optimizer_tensors(name, optimizer)
            optim_tensors.update(tensors)
            optim_meta[name] = meta
        save_tensors(staging / "optim.safetensors", optim_tensors)
        record = {
            "schema_version": PROGRESS_SCHEMA_VERSION,
            **counters.__dict__,
            "optimizers": optim_meta,
        }
        atomic_write_json(staging / "progress.json", record)
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic_write_text(root / "LATEST", final.name + "\n")
    complete = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("kimg"))
    for old in complete[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def read_checkpoint(
    checkpoint: Path,
    generator: Generator,
    generator_ema: Generator,
    discriminator: torch.nn.Module,
    optimizers: dict[str, torch.optim.Optimizer],
) -> RunCounters:
    """Load a checkpoint written by write_checkpoint into the given modules; return counters."""
    record = read_json_object(checkpoint / "progress.json")
    if record.get("schema_version") != PROGRESS_SCHEMA_VERSION:
        raise AssetganError(f"{checkpoint}/progress.json: unsupported schema_version")
    for name, module in (("G", generator), ("G_ema", generator_ema), ("D", discriminator)):
        tensors, _meta = load_tensors(checkpoint / f"{name}.safetensors")
        load_state_into(module, tensors, str(checkpoint / f"{name}.safetensors"))
    optim_tensors, _meta = load_tensors(checkpoint / "optim.safetensors")
    for name, optimizer in optimizers.items():
        _restore_optimizer(name, optimizer, optim_tensors, record["optimizers"][name])
    fields = ("cur_nimg", "batch_idx", "cur_tick", "elapsed_sec", "pl_mean")
    return RunCounters(**{k: record[k] for k in fields})


def append_metrics(run_dir: Path, line: dict[str, Any]) -> None:
    with open(run_dir / METRICS_NAME, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, sort_keys=True) + "\n")
        handle.flush()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics.jsonl lines. A torn last line (a kill during `append_metrics`, no newline) is
    left out so that a resume can rewrite the file; any other bad line is an AssetganError."""
    path = Path(run_dir) / METRICS_NAME
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    records = []
    for line_no, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            if line_no == len(lines) and not text.endswith("\n"):
                break
            raise AssetganError(f"{path}:{line_no}: not a JSON line ({error})") from None
    return records


def truncate_metrics(run_dir: Path, max_nimg: int) -> None:
    """Drop lines logged after the checkpoint we resume from (they will be logged again)."""
    lines = [m for m in read_metrics(run_dir) if round(m["kimg"] * 1000) <= max_nimg]
    atomic_write_text(
        run_dir / METRICS_NAME, "".join(json.dumps(m, sort_keys=True) + "\n" for m in lines)
    )


def resolve_generator_file(source: str | Path, ema: bool = True) -> Path:
    """A generator .safetensors from a file, a checkpoint directory or a run directory."""
    source = Path(source)
    name = "G_ema.safetensors" if ema else "G.safetensors"
    if source.is_file():
        return source
    if (source / name).is_file():
        return source / name
    if source.is_dir():
        latest = latest_checkpoint(source)
        if latest is not None:
            return latest / name
        raise AssetganError(f"{source}: directory holds no checkpoint ({name} or checkpoints/)")
    raise AssetganError(f"{source}: no such checkpoint file or run directory")
