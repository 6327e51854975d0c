"""run(WorldRenderConfig) -> WorldSplit: render a CarWorld split, deterministic, parallel,
resumable.

Image i is drawn from a seed derived from (seed, split, i) alone and rendered in the fixed chunk
i // chunk, so the same bytes come out whatever the number of workers. Every file is written
atomically and meta/ID.json last; a rerun skips ids whose meta exists, so a killed run completes
without duplicates or partial files. manifest.jsonl and coco.json are rebuilt at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assetgan.assets.taxonomy import KEYPOINTS
from assetgan.core.errors import AssetganError
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_bytes, atomic_write_text
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.carworld.model import CarModel, build_car, car_asset
from assetgan.pipeline.carworld.params import CarParams, Shift, sample_car_params
from assetgan.pipeline.carworld.render import RenderedBatch, render_batch, single_thread
from assetgan.pipeline.carworld.scene import SceneParams, sample_scene
from assetgan.pipeline.carworld.split import (
    SCHEMA_VERSION,
    SUBDIRS,
    WorldConfig,
    WorldSplit,
    item_paths,
    write_split_json,
)
from assetgan.pipeline.coco_format import image_annotations
from assetgan.render.asset import part_glb


def item_seed(config: WorldConfig, index: int) -> int:
    """The seed of image `index`: a function of (seed, split, index) only."""
    split_code = zlib.crc32(config.split.encode("utf-8"))
    state = np.random.SeedSequence([config.seed, split_code, index]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


def sample_item(config: WorldConfig, index: int) -> tuple[CarParams, SceneParams]:
    """The car and scene of image `index`."""
    rng = np.random.default_rng(item_seed(config, index))
    shift = config.shift
    params = sample_car_params(
        rng,
        paint_shift=shift in (Shift.paint, Shift.all),
        style_shift=shift in (Shift.style, Shift.all),
    )
    scene = sample_scene(
        rng,
        params,
        lighting_shift=shift in (Shift.lighting, Shift.all),
        background_shift=shift in (Shift.background, Shift.all),
        degrade=config.degrade,
    )
    return params, scene


def mesh_glb(car: CarModel) -> bytes:
    """The ground-truth mesh as GLB: one node per car_20 part (node name = part name), face
    colours = rendered albedo; zero-area (absent) pieces are left out (render/asset.part_glb)."""
    return part_glb(car_asset(car))


def _write_item(
    root: Path, config: WorldConfig, index: int, car: CarModel, scene: SceneParams,
    out: RenderedBatch, b: int,
) -> None:  # fmt: skip
    paths = item_paths(root, index, config.meshes)
    atomic_write_png(paths["image"], out.rgb[b])
    atomic_write_png(paths["parts"], out.parts[b])
    depth_mm = np.clip(np.round(out.depth[b] * 1000.0), 0, 65535).astype(np.uint16)
    atomic_write_png(paths["depth"], depth_mm)
    if config.meshes:
        atomic_write_bytes(paths["mesh"], mesh_glb(car))
    mask = out.parts[b] > 0
    rows, cols = np.nonzero(mask)
    bbox = (
        [
            int(cols.min()),
            int(rows.min()),
            int(cols.max() - cols.min() + 1),
            int(rows.max() - rows.min() + 1),
        ]
        if rows.size
        else [0, 0, 0, 0]
    )
    xyv = out.keypoints[b]
    meta = {
        "schema_version": SCHEMA_VERSION,
        "id": index,
        "split": config.split,
        "seed": {"split_seed": config.seed, "item": item_seed(config, index)},
        "files": {k: str(p.relative_to(root)) for k, p in paths.items()},
        "size": config.size,
        "camera": out.cameras[b].to_json(),
        "keypoints": {
            "names": list(KEYPOINTS),
            "xyv": [[round(float(x), 4), round(float(y), 4), int(v)] for x, y, v in xyv],
            "depth": [round(float(d), 5) for d in out.keypoint_depth[b]],
            "world": [[round(float(c), 5) for c in p] for p in car.keypoints.tolist()],
        },
        "wheels": {
            "pivots": [[round(float(c), 5) for c in p] for p in car.wheel_pivots.tolist()],
            "axles": car.wheel_axles.tolist(),
            "radius": car.wheel_radius,
        },
        "bbox": bbox,
        "params": car.params.to_json(),
        "scene": scene.to_json(),
        "coco": image_annotations(out.parts[b], xyv),
    }
    # Compact JSON: the C encoder (an indent falls back to the slow pure-Python one).
    atomic_write_text(paths["meta"], json.dumps(meta, sort_keys=True, separators=(",", ":")))


def render_chunk(root: Path, config: WorldConfig, chunk_index: int) -> int:
    """Render chunk `chunk_index` and write the images of it that are not complete yet.
    Returns the number of images written."""
    first = chunk_index * config.chunk
    indices = list(range(first, min(first + config.chunk, config.n)))
    todo = [i for i in indices if not item_paths(root, i, config.meshes)["meta"].is_file()]
    if not todo:
        return 0
    cars, scenes = [], []
    for index in indices:  # the whole chunk, always: results never depend on what was done
        params, scene = sample_item(config, index)
        cars.append(build_car(params))
        scenes.append(scene)
    out = render_batch(cars, scenes, config.size, supersample=config.supersample)
    for b, index in enumerate(indices):
        if index in todo:
            _write_item(root, config, index, cars[b], scenes[b], out, b)
    return len(todo)


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _worker_chunk(task: tuple[str, dict, int]) -> int:
    root, config_json, chunk_index = task
    return render_chunk(Path(root), WorldConfig.from_dict(config_json), chunk_index)


def prepare_out_dir(out: Path, config: WorldConfig) -> None:
    """Create the split directory, or check that an existing one holds the same config."""
    config_path = out / "split.json"
    if config_path.is_file():
        try:
            existing = WorldConfig.from_dict(json.loads(config_path.read_text())["config"])
        except (KeyError, ValueError, TypeError, json.JSONDecodeError) as error:
            raise AssetganError(f"{config_path}: unreadable split config ({error})") from error
        if existing != config:
            diffs = [
                f"{k}: {existing.to_dict()[k]!r} on disk vs {v!r} now"
                for k, v in config.to_dict().items()
                if existing.to_dict()[k] != v
            ]
            raise AssetganError(
                f"{out} holds a split rendered with a different config ({'; '.join(diffs)}); "
                "rerun with the same arguments to resume, or choose another --out"
            )
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AssetganError(
            f"{out} exists and is not an empty directory or a CarWorld split; choose another --out"
        )
    for sub in SUBDIRS + (("meshes",) if config.meshes else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for stale in (out / sub).glob(".*.tmp"):  # temp files of a killed run
            stale.unlink(missing_ok=True)
    if not config_path.is_file():
        write_split_json(out, config)


@dataclass(frozen=True)
class WorldRenderConfig:
    """`world render`: which split (`world`, the part written to split.json) and where and how
    to render it. `out` and `workers` stay out of split.json: they do not change a byte."""

    world: WorldConfig  # what the split is: the same world always gives the same files
    out: Path  # split directory: created, or an unfinished split of the same world completed
    workers: int = 1  # worker processes rendering chunks in parallel (same bytes for any value)


def run(config: WorldRenderConfig, progress: Progress | None = None) -> WorldSplit:
    """Render (or complete) the split in `config.out`; progress counts finished images. Writes
    images/, parts/, depth/, meta/ (meshes/), then manifest.jsonl, coco.json and split.json."""
    start = time.time()
    world = _render_chunks(config, progress)
    out = Path(config.out)
    records = tuple(
        {
            "id": i,
            "files": {
                k: str(p.relative_to(out)) for k, p in item_paths(out, i, world.meshes).items()
            },
        }
        for i in range(world.n)
    )
    split = WorldSplit(out, world, records)
    split.save(summary={"images": world.n, "seconds_last_run": round(time.time() - start, 2)})
    return WorldSplit.load(out)


def _render_chunks(
    config: WorldRenderConfig,
    progress: Progress | None = None,
    stop_after_chunks: int | None = None,  # tests: a kill after this many chunks
) -> WorldConfig:
    """Check the config and `out`, render every chunk that has unfinished images; returns the
    validated world config. Everything of `run` but the manifest, COCO and split summary."""
    world = config.world.validate()
    if config.workers < 1:
        raise AssetganError(f"--workers must be at least 1, got {config.workers}")
    out = Path(config.out)
    prepare_out_dir(out, world)
    num_chunks = (world.n + world.chunk - 1) // world.chunk
    finished = [item_paths(out, i, world.meshes)["meta"].is_file() for i in range(world.n)]
    done = sum(finished)
    emit(progress, done, world.n, task="images")
    todo = [
        c for c in range(num_chunks)
        if not all(finished[c * world.chunk : (c + 1) * world.chunk])
    ]  # fmt: skip
    if stop_after_chunks is not None:
        todo = todo[:stop_after_chunks]
    if config.workers == 1 or len(todo) <= 1:
        with single_thread():
            for chunk_index in todo:
                done += render_chunk(out, world, chunk_index)
                emit(progress, done, world.n, task="images")
    else:
        context = multiprocessing.get_context("spawn")
        tasks = [(str(out), world.to_dict(), c) for c in todo]
        with context.Pool(min(config.workers, len(todo)), initializer=_worker_init) as pool:
            for written in pool.imap_unordered(_worker_chunk, tasks):
                done += written
                emit(progress, done, world.n, task="images")
    return world
