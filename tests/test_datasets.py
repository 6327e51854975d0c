"""Dataset generation: determinism, shards, kill-and-resume, filtering, COCO, gallery, commands."""

from __future__ import annotations

import dataclasses
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
from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.pipeline.datasets.generate import DatasetGenerateConfig, run
from assetgan.pipeline.datasets.layout import DatasetConfig, GeneratedDataset
from assetgan.pipeline.interpreter.checkpoint import save_interpreter
from assetgan.pipeline.interpreter.config import InterpreterTrainSettings
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
    config = InterpreterTrainSettings(members=3, batch_pixels=32, max_iterations=60)
    save_interpreter(train(annotations, generator, sha, config), root / "I.safetensors")
    torch.set_num_threads(before)
    return generator_path, root / "I.safetensors"


def generate(models, out: Path, dataset=CONFIG, shard=(0, 1), progress=None) -> GeneratedDataset:
    generator_path, interpreter_path = models
    config = DatasetGenerateConfig(
        generator_path, interpreter_path, out, dataset, shard=shard, device=Device.cpu
    )
    return run(config, progress)


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
    dataset = generate(models, root)
    torch.set_num_threads(before)
    assert (dataset.written, dataset.present, dataset.config.n) == (10, 10, 10)
    assert (dataset.kept, dataset.dropped, dataset.finished) == (8, 2, True)
    scores = sorted((r["score"] for r in dataset.records()), reverse=True)
    assert dataset.threshold == scores[1]  # the lower of the two dropped scores
    return root, tree(root)


def test_outputs_filtering_and_coco(reference):
    root, files = reference
    records = GeneratedDataset.load(root).records()
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
        dataset = generate(models, tmp_path / "ds", shard=(index, 3))
    assert dataset.written == len(CONFIG.shard_seeds((index, 3)))
    assert dataset.present == 10 and dataset.finished
    assert tree(tmp_path / "ds") == expected


def test_interrupted_run_resumes_byte_identical(reference, models, tmp_path):
    _root, expected = reference

    def crash(event):
        if event.done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(models, tmp_path / "ds", progress=crash)
    assert not (tmp_path / "ds" / "manifest.jsonl").exists()
    assert len(list((tmp_path / "ds" / "meta").glob("*.json"))) == 5
    partial = GeneratedDataset.load(tmp_path / "ds")
    assert (partial.present, partial.finished, partial.kept) == (5, False, None)
    events = []
    dataset = generate(models, tmp_path / "ds", progress=events.append)
    assert dataset.written == 5
    assert [(e.done, e.total, e.task) for e in events] == [(k, 5, "samples") for k in range(6)]
    assert tree(tmp_path / "ds") == expected


def test_killed_process_resumes_byte_identical(reference, models, tmp_path):
    """SIGKILL from inside the generating process (no cleanup runs), plus a stray temp file."""
    _root, expected = reference
    script = (
        "import os, signal, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "from assetgan.pipeline.datasets.generate import DatasetGenerateConfig, run\n"
        "from assetgan.pipeline.datasets.layout import DatasetConfig\n"
        "def kill(event):\n"
        "    if event.done == 3: os.kill(os.getpid(), signal.SIGKILL)\n"
        "config = DatasetGenerateConfig(sys.argv[2], sys.argv[3], sys.argv[1], "
        f"DatasetConfig(**{CONFIG.__dict__!r}), device='cpu')\n"
        "run(config, progress=kill)\n"
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
    generate(models, out)
    assert tree(out) == expected


def test_changed_settings_and_mismatched_generator_are_refused(models, tmp_path):
    _generator_path, interpreter_path = models
    generate(models, tmp_path / "ds", DatasetConfig(n=2, batch=2))
    with pytest.raises(AssetganError, match="different settings"):
        generate(models, tmp_path / "ds", DatasetConfig(n=2, batch=2, psi=0.5))
    other = tmp_path / "other.safetensors"
    save_tiny_generator(other, TINY_CROP, seed=3)
    with pytest.raises(AssetganError, match="trained on generator"):
        generate((other, interpreter_path), tmp_path / "ds2", DatasetConfig(n=2))
    with pytest.raises(AssetganError, match="shard 2/2"):
        generate(models, tmp_path / "ds3", DatasetConfig(n=2), shard=(2, 2))


def test_generated_dataset_header_round_trip(reference, tmp_path):
    root, files = reference
    dataset = GeneratedDataset.load(root)
    assert dataset.config == CONFIG and dataset.image_size == (24, 32) and dataset.members == 3
    assert dataset.save() == root / "dataset.json"  # the same header: accepted, not rewritten
    assert (root / "dataset.json").read_bytes() == files["dataset.json"]
    copy = tmp_path / "copy"
    copy.mkdir()
    dataclasses.replace(dataset, root=copy).save()
    assert (copy / "dataset.json").read_bytes() == files["dataset.json"]
    assert GeneratedDataset.load(copy).present == 0 and not GeneratedDataset.load(copy).finished
    assert dataset.sample_meta(3)["seed"] == 3
    (copy / "dataset.json").write_text('{"kind": "assetgan_generated_dataset"}')
    with pytest.raises(AssetganError, match="not a schema-1"):
        GeneratedDataset.load(copy)


def test_view_run_draws_the_most_uncertain_first(reference, tmp_path):
    from assetgan.pipeline.datasets.view import DatasetViewConfig
    from assetgan.pipeline.datasets.view import run as view

    root, _files = reference
    events = []
    result = view(DatasetViewConfig(root, tmp_path / "g.html", limit=3), events.append)
    assert (result.shown, result.kept, result.files_dir) == (3, 8, tmp_path / "g_files")
    assert [e.done for e in events] == [1, 2, 3]
    records = GeneratedDataset.load(root).records()
    worst = sorted(records, key=lambda r: -r["score"])[:3]
    page = result.gallery.read_text()
    positions = [page.index(f'data-seed="{r["seed"]}"') for r in worst]
    assert positions == sorted(positions) and page.count('class="card') == 3
    assert page.count('class="card dropped"') == 2  # the two dropped are the two most uncertain
    assert len(list(result.files_dir.glob("*.png"))) == 6
    with pytest.raises(AssetganError, match="--limit"):
        view(DatasetViewConfig(root, tmp_path / "h.html", limit=0))


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
        (["dataset", "view", str(out), "--out", str(gallery), "--limit", "0"], "--limit"),
    ]
    for args, message in bad:
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output, result.output
