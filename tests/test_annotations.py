"""AnnotationSet: save/load round trip and the errors for malformed sets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.pipeline.annotations import IGNORE_ID, AnnotatedSample, AnnotationSet


def make_set(
    count: int = 2, height: int = 12, width: int = 16, image: bool = True
) -> AnnotationSet:
    rng = np.random.default_rng(0)
    annotation_set = AnnotationSet.empty("car_20")
    for idx in range(count):
        mask = rng.integers(0, 20, (height, width)).astype(np.uint8)
        mask[0, :3] = IGNORE_ID
        keypoints = np.zeros((12, 3), np.float32)
        keypoints[0] = (3.5, 2.25, 2)
        keypoints[5] = (width, height, 1)
        annotation_set.samples.append(
            AnnotatedSample(
                name=f"s{idx:03d}",
                generator_path="G.safetensors",
                generator_sha256="ab" * 32,
                seed=idx + 7 if idx == 0 else None,
                ws=rng.standard_normal((6, 8)).astype(np.float32),
                part_ids=mask,
                keypoints_xyv=keypoints,
                source="generator" if idx == 0 else "inverted",
                image=rng.integers(0, 256, (height, width, 3)).astype(np.uint8) if image else None,
                meta={"psi": 0.7},
            )
        )
    return annotation_set


def test_round_trip(tmp_path):
    original = make_set()
    original.save(tmp_path / "set")
    loaded = AnnotationSet.load(tmp_path / "set")
    assert loaded.taxonomy == "car_20" and loaded.num_classes == 20 and loaded.num_keypoints == 12
    assert [s.name for s in loaded.samples] == ["s000", "s001"]
    for a, b in zip(original.samples, loaded.samples, strict=True):
        np.testing.assert_array_equal(a.ws, b.ws)
        assert b.ws.dtype == np.float32
        np.testing.assert_array_equal(a.part_ids, b.part_ids)
        np.testing.assert_array_equal(a.keypoints_xyv, b.keypoints_xyv)
        np.testing.assert_array_equal(a.image, b.image)
        assert (a.seed, a.source, a.meta, a.image_size) == (b.seed, b.source, b.meta, b.image_size)
    document = json.loads((tmp_path / "set" / "annotations.json").read_text())
    assert document["schema_version"] == 1 and document["samples"][0]["mask"] == "masks/s000.png"


def test_without_images(tmp_path):
    make_set(image=False).save(tmp_path / "set")
    assert not (tmp_path / "set" / "images").exists()
    assert AnnotationSet.load(tmp_path / "set").samples[0].image is None


def test_file_sha256(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path).startswith("ba7816bf")


@pytest.mark.parametrize(
    "breakage, message",
    [
        (
            lambda s: setattr(s.samples[0], "part_ids", s.samples[0].part_ids.astype(np.int32)),
            "uint8",
        ),
        (lambda s: s.samples[0].part_ids.__setitem__((1, 1), 40), "outside 0..19"),
        (lambda s: setattr(s.samples[0], "ws", s.samples[0].ws.astype(np.float64)), "float32"),
        (lambda s: s.samples[0].keypoints_xyv.__setitem__((0, 0), 99.0), "outside"),
        (lambda s: s.samples[0].keypoints_xyv.__setitem__((0, 2), 3.0), "visibility"),
        (lambda s: setattr(s.samples[1], "name", "s000"), "duplicate"),
        (lambda s: setattr(s.samples[1], "name", "../x"), "name"),
        (lambda s: setattr(s.samples[1], "ws", np.zeros((7, 8), np.float32)), "has ws"),
    ],
)
def test_validation_errors(tmp_path, breakage, message):
    broken = make_set()
    breakage(broken)
    with pytest.raises(AssetganError, match=message):
        broken.save(tmp_path / "set")


def test_load_errors(tmp_path):
    with pytest.raises(AssetganError, match="no annotations.json"):
        AnnotationSet.load(tmp_path)
    make_set().save(tmp_path / "set")
    (tmp_path / "set" / "masks" / "s001.png").unlink()
    with pytest.raises(AssetganError, match="s001.png"):
        AnnotationSet.load(tmp_path / "set")
    doc = tmp_path / "set" / "annotations.json"
    doc.write_text(doc.read_text().replace('"schema_version": 1', '"schema_version": 9'))
    with pytest.raises(AssetganError, match="schema_version"):
        AnnotationSet.load(tmp_path / "set")
