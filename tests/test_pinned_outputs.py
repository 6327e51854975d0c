"""Pinned outputs: a small CarWorld split, a tiny generator and interpreter, and a small generated
dataset hash to the digests in tests/pinned_digests.json, recorded before the stage-contract
refactor (issue 9) and checked after it. A refactor that changes a byte of what the stages write
fails here, naming the file.

Canonical forms (what is NOT pinned and why): safetensors files are hashed as (sorted header
metadata, sorted tensor names, dtypes and bytes), because the safetensors writer orders header
keys differently in every process; JSON files drop keys ending in `sha256` (they hash
checkpoints, see above) and the run timing `seconds_last_run`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from interpreter_fixtures import TINY_CROP, save_tiny_generator, toy_annotations
from safetensors import safe_open

from assetgan.pipeline.carworld.generate import WorldRenderConfig
from assetgan.pipeline.carworld.generate import run as render_world
from assetgan.pipeline.carworld.split import WorldConfig
from assetgan.pipeline.datasets.generate import DatasetGenerateConfig
from assetgan.pipeline.datasets.generate import run as generate_dataset
from assetgan.pipeline.datasets.layout import DatasetConfig
from assetgan.pipeline.interpreter.checkpoint import save_interpreter
from assetgan.pipeline.interpreter.config import InterpreterTrainSettings
from assetgan.pipeline.interpreter.train import train

PINNED = Path(__file__).parent / "pinned_digests.json"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _strip(obj):
    if isinstance(obj, dict):
        return {
            k: _strip(v)
            for k, v in obj.items()
            if not k.endswith("sha256") and k != "seconds_last_run"
        }
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def canonical_bytes(path: Path) -> bytes:
    """The file's canonical form (module docstring); for safetensors, the SHA-256 of the stream
    (sorted metadata, then each tensor's name, dtype and bytes)."""
    if path.suffix == ".safetensors":
        stream = hashlib.sha256()
        with safe_open(str(path), "pt") as handle:
            meta = {}
            for key, value in (handle.metadata() or {}).items():
                try:
                    meta[key] = _strip(json.loads(value))
                except ValueError:
                    meta[key] = value
            stream.update(json.dumps(meta, sort_keys=True).encode())
            for name in sorted(handle.keys()):
                tensor = handle.get_tensor(name)
                stream.update(name.encode() + str(tensor.dtype).encode())
                stream.update(tensor.numpy().tobytes())
        return stream.digest()
    if path.suffix == ".json":
        return json.dumps(_strip(json.loads(path.read_bytes())), sort_keys=True).encode()
    return path.read_bytes()


def canonical_digest(path: Path) -> str:
    return hashlib.sha256(canonical_bytes(path)).hexdigest()


def tree_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): canonical_digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def produce(root: Path) -> dict[str, str]:
    """Run the stages on tiny inputs through their Python API; {relative path: digest}."""
    world = WorldConfig(split="test", n=3, size=64, seed=0, meshes=True)
    render_world(WorldRenderConfig(world=world, out=root / "world"))
    generator_path = root / "models" / "G.safetensors"
    generator_path.parent.mkdir(parents=True)
    generator, sha = save_tiny_generator(generator_path, TINY_CROP)
    annotations = toy_annotations(generator, [0, 1, 2], str(generator_path), sha)
    settings = InterpreterTrainSettings(members=3, batch_pixels=32, max_iterations=60)
    interpreter_path = root / "models" / "I.safetensors"
    save_interpreter(train(annotations, generator, sha, settings), interpreter_path)
    dataset = DatasetConfig(n=10, drop=0.2, batch=4, band_rows=7)
    generate_dataset(
        DatasetGenerateConfig(generator_path, interpreter_path, root / "ds", dataset, device="cpu")
    )
    return {
        f"{part}/{name}": digest
        for part in ("world", "models", "ds")
        for name, digest in tree_digests(root / part).items()
    }


def test_stage_outputs_match_the_pinned_digests(tmp_path):
    expected = json.loads(PINNED.read_text())["digests"]
    produced = produce(tmp_path)
    assert sorted(produced) == sorted(expected), "the set of files written changed"
    changed = [name for name in expected if produced[name] != expected[name]]
    assert not changed, f"outputs changed: {changed}"
