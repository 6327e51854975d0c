"""Dataset generation: determinism, shards, kill-and-resume, filtering, COCO, gallery, commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from interpreter_fixtures import TINY_CROP, save_tiny_generator, toy_annotations
from PIL import Image
from typer.testing import CliRunner

from assetgan.cli import app
from assetgan.core.errors import AssetganError
from assetgan.pipeline.datasets.generate import run
from assetgan.pipeline.datasets.layout import DatasetConfig, read_manifest
from assetgan.pipeline.interpreter.checkpoint import save_interpreter
from assetgan.pipeline.interpreter.config import TrainConfig
from assetgan.pipeline.interpreter.train import train

runner = CliRunner()
CONFIG = DatasetConfig(n=10, drop=0.2, batch=4, band_rows=7)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(generator path, interpreter path) of a tiny cropped generator and a 3-member interpreter."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    generator_path = root / "G.safetensors"
    generator, sha = save_tiny_generator(generator_path, TINY_CROP)
    annotations = toy_annotations(generator, [0, 1, 2], str(generator_path), sha)
    config = TrainConfig(members=3, batch_pixels=32, max_iterations=60)
    save_interpreter(train(annotations, generator, sha, config), root / "I.safetensors")
    torch.set_num_threads(before)
    return generator_path, root / "I.safetensors"


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def reference(models, tmp_path_factory):
    """An uninterrupted, unsharded run: {relative path: bytes}."""
    root = tmp_path_factory.mktemp("reference") / "ds"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    summary = run(root, *models, CONFIG)
    torch.set_num_threads(before)
    assert summary == {
        "written": 10,
        "shard_samples": 10,
        "present": 10,
        "samples": 10,
        "kept": 8,
        "dropped": 2,
        "threshold": summary["threshold"],
    }
    return root, tree(root)


def test_outputs_filtering_and_coco(reference):
    root, files = reference
    records = read_manifest(root)
    assert [r["seed"] for r in records] == list(range(10))
    scores = {r["seed"]: r["score"] for r in records}
    dropped = sorted(scores, key=lambda s: -scores[s])[:2]
    assert {r["seed"] for r in records if not r["kept"]} == set(dropped)
    image = np.asarray(Image.open(root / records[0]["image"]))
    parts = np.asarray(Image.open(root / records[0]["parts"]))
    js = np.asarray(Image.open(root / records[0]["uncertainty"]))
    assert image.shape == (24, 32, 3) and parts.shape == (24, 32) and js.dtype == np.uint16
    assert np.load(root / records[0]["w"]).shape == (8, 16)
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    coco = COCO(str(root / "coco.json"))
    assert sorted(coco.getImgIds()) == sorted(s for s in scores if s not in dropped)
    car = coco.loadCats(100)[0]
    assert len(car["keypoints"]) == 12 and car["skeleton"][0][0] >= 1
    first = records[0]["seed"] if records[0]["kept"] else records[2]["seed"]
    labels = np.asarray(Image.open(root / f"parts/{first:08d}.png"))
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[first])):
        mask = mask_utils.decode(ann["segmentation"])
        if ann["category_id"] != 100:
            np.testing.assert_array_equal(mask, labels == ann["category_id"])
        else:
            assert len(ann["keypoints"]) == 36
    assert files  # the fixture's byte snapshot is used by the resume tests


def test_deterministic_and_shards_union_equals_unsharded(reference, models, tmp_path):
    _root, expected = reference
    for index in (2, 0, 1):  # any order; the last to finish writes manifest and coco
        summary = run(tmp_path / "ds", *models, CONFIG, shard=(index, 3))
    assert summary["present"] == 10 and "kept" in summary
    assert tree(tmp_path / "ds") == expected


def test_interrupted_run_resumes_byte_identical(reference, models, tmp_path):
    _root, expected = reference

    def crash(done, total):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ds", *models, CONFIG, progress=crash)
    assert not (tmp_path / "ds" / "manifest.jsonl").exists()
    assert len(list((tmp_path / "ds" / "meta").glob("*.json"))) == 5
    summary = run(tmp_path / "ds", *models, CONFIG)
    assert summary["written"] == 5
    assert tree(tmp_path / "ds") == expected


def test_killed_process_resumes_byte_identical(reference, models, tmp_path):
    """SIGKILL from inside the generating process (no cleanup runs), plus a stray temp file."""
    _root, expected = reference
    script = (
        "import os, signal, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "from assetgan.pipeline.datasets.generate import run\n"
        "from assetgan.pipeline.datasets.layout import DatasetConfig\n"
        "def kill(done, total):\n"
        "    if done == 3: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"run(sys.argv[1], sys.argv[2], sys.argv[3], DatasetConfig(**{CONFIG.__dict__!r}), "
        "progress=kill)\n"
    )
    generator_path, interpreter_path = models
    out = tmp_path / "ds"
    process = subprocess.run(
        [sys.executable, "-c", script, str(out), str(generator_path), str(interpreter_path)],
        capture_output=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert process.returncode == -9, process.stderr.decode()
    assert len(list((out / "meta").glob("*.json"))) == 3
    (out / "images" / ".00000007.png.x1y2.tmp").write_bytes(b"half a png")
    run(out, generator_path, interpreter_path, CONFIG)
    assert tree(out) == expected


def test_changed_settings_and_mismatched_generator_are_refused(models, tmp_path):
    generator_path, interpreter_path = models
    run(tmp_path / "ds", generator_path, interpreter_path, DatasetConfig(n=2, batch=2))
    with pytest.raises(AssetganError, match="different settings"):
        run(tmp_path / "ds", generator_path, interpreter_path, DatasetConfig(n=2, batch=2, psi=0.5))
    other = tmp_path / "other.safetensors"
    save_tiny_generator(other, TINY_CROP, seed=3)
    with pytest.raises(AssetganError, match="trained on generator"):
        run(tmp_path / "ds2", other, interpreter_path, DatasetConfig(n=2))


def test_cli_generate_view_and_bad_input(models, tmp_path):
    generator_path, interpreter_path = models
    out = tmp_path / "ds"
    common = ["dataset", "generate", "--generator", str(generator_path), "--interpreter"]
    result = runner.invoke(
        app, [*common, str(interpreter_path), "--n", "4", "--out", str(out), "--shard", "1/2"]
    )
    assert result.exit_code == 0, result.output
    assert "not all shards" in result.output and not (out / "coco.json").exists()
    result = runner.invoke(
        app, [*common, str(interpreter_path), "--n", "4", "--out", str(out), "--shard", "0/2"]
    )
    assert result.exit_code == 0 and "kept 4" in result.output.replace("\n", " "), result.output
    gallery = tmp_path / "view" / "gallery.html"
    result = runner.invoke(app, ["dataset", "view", str(out), "--out", str(gallery)])
    assert result.exit_code == 0, result.output
    page = gallery.read_text()
    assert page.count('class="card') == 4 and "sortBy('score', -1)" in page
    assert len(list((tmp_path / "view" / "gallery_files").glob("*_js.png"))) == 4
    assert "../ds/images/00000000.png" in page
    assert (gallery.parent / "../ds/images/00000000.png").is_file()
    bad = [
        ([*common, str(tmp_path / "none.safetensors"), "--out", str(out)], "no such"),
        ([*common, str(interpreter_path), "--out", str(out), "--shard", "3/2"], "--shard"),
        ([*common, str(interpreter_path), "--out", str(out), "--drop", "1.5"], "--drop"),
        (["dataset", "view", str(tmp_path), "--out", str(gallery)], "dataset.json"),
    ]
    for args, message in bad:
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output, result.output
