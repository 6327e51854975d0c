"""`assetgan annotate`: rasterisation, LabelMe / COCO / PNG import with its errors, selection,
HandsOff inversion, the simulated annotator, and every command through CliRunner."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from assetgan.assets.taxonomy import CAR_20, KEYPOINTS, PART_ID
from assetgan.cli import app
from assetgan.core.errors import AssetganError
from assetgan.pipeline.annotate.coco import to_coco
from assetgan.pipeline.annotate.labeled import LabeledImage
from assetgan.pipeline.annotate.raster import (
    RasterRule,
    circle_mask,
    mask_to_polygons,
    polygon_mask,
    rectangle_mask,
)
from assetgan.pipeline.annotations import AnnotationSet
from assetgan.pipeline.stylegan.checkpoint import load_generator, save_generator
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import synthesize_uint8

runner = CliRunner()
TINY = GeneratorConfig(resolution=16, z_dim=16, w_dim=24, mapping_layers=2, channels=(32, 16, 8))


def _tiny_generator(config: GeneratorConfig = TINY, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    generator = Generator(config).eval()
    with torch.no_grad():  # non-trivial biases and w_avg, as in a trained model
        for name, tensor in generator.state_dict().items():
            if name.endswith(("noise_strength", ".bias")) or name == "mapping.w_avg":
                tensor.copy_(torch.randn_like(tensor) * 0.3 + (1.0 if "affine" in name else 0))
    return generator


@pytest.fixture(autouse=True)
def one_thread():
    """Run torch on one thread (restored after each test): on the shared 2-core machine two
    threads competing with other jobs made the generator-bound tests 5x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def generator_path(tmp_path_factory) -> Path:
    return save_generator(_tiny_generator(), tmp_path_factory.mktemp("gen") / "G.safetensors")


@pytest.fixture(scope="module")
def export_master(tmp_path_factory, generator_path) -> Path:
    out = tmp_path_factory.mktemp("export") / "export"
    args = ["annotate", "export", "-g", str(generator_path), "--n", "3", "--seed", "5"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests that compare with it (one_thread): same rounding
    try:
        result = runner.invoke(app, [*args, "--out", str(out), "--device", "cpu"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def export_dir(tmp_path, export_master) -> Path:
    return Path(shutil.copytree(export_master, tmp_path / "export"))


def _labelme_file(export_dir: Path, name: str, shapes: list[dict], **overrides) -> Path:
    path = export_dir / "images" / f"{name}.json"
    document = json.loads(path.read_text())
    document["shapes"] = shapes
    document.update(overrides)
    path.write_text(json.dumps(document))
    return path


def _shape(label: str, points, shape_type: str = "polygon", **extra) -> dict:
    return {
        "label": label,
        "points": points,
        "shape_type": shape_type,
        "group_id": None,
        "flags": extra.pop("flags", {}),
        "description": extra.pop("description", ""),
    }


def _import(export_dir: Path, out: Path, *extra: str):
    return runner.invoke(
        app, ["annotate", "import", str(export_dir / "images"), "--out", str(out), *extra]
    )


# ---- rasterisation ------------------------------------------------------------------------------


def test_polygon_mask_is_exact_on_a_hand_made_case():
    # An L-shape with corners on pixel boundaries and a triangle whose hypotenuse passes through
    # pixel centres (half-open rule: centres exactly on the right/bottom edge are outside).
    l_shape = [(1, 1), (4, 1), (4, 2), (2, 2), (2, 5), (1, 5)]
    expected = np.zeros((6, 6), dtype=bool)
    expected[1, 1:4] = True
    expected[1:5, 1] = True
    assert (polygon_mask(np.array(l_shape), 6, 6) == expected).all()
    triangle = np.array([(0, 0), (4, 0), (0, 4)])  # centres with x + y < 4 are inside
    rows, cols = np.mgrid[0:5, 0:5]
    inside = (cols + 0.5) + (rows + 0.5) < 4
    assert (polygon_mask(triangle, 5, 5) == inside).all()
    # Two polygons sharing an edge never both claim a pixel, and cover the union exactly.
    left = polygon_mask(np.array([(0, 0), (2.5, 0), (2.5, 3), (0, 3)]), 3, 5)
    right = polygon_mask(np.array([(2.5, 0), (5, 0), (5, 3), (2.5, 3)]), 3, 5)
    assert not (left & right).any() and (left | right).all()


def test_rectangles_circles_and_the_labelme_rule():
    rect = rectangle_mask(np.array([(3, 4), (1, 1)]), 6, 6)  # corners in any order
    expected = np.zeros((6, 6), dtype=bool)
    expected[1:4, 1:3] = True
    assert (rect == expected).all()
    circle = circle_mask(np.array([(3, 3), (3, 5)]), 6, 6)  # radius 2 around (3, 3)
    rows, cols = np.mgrid[0:6, 0:6]
    assert (circle == (((cols + 0.5 - 3) ** 2 + (rows + 0.5 - 3) ** 2) < 4)).all()
    # labelme2voc semantics: PIL treats integers as pixel centres and includes the outline.
    pil = polygon_mask(np.array([(1, 1), (3, 1), (3, 2), (1, 2)]), 4, 5, RasterRule.labelme)
    expected = np.zeros((4, 5), dtype=bool)
    expected[1:3, 1:4] = True
    assert (pil == expected).all()


def test_mask_to_polygons_round_trips_exactly():
    rng = np.random.default_rng(0)
    for trial in range(40):
        height, width = rng.integers(2, 18, 2)
        part_ids = rng.integers(0, 4, (height, width))
        if trial % 2:
            part_ids = ndimage.median_filter(part_ids, 3)  # blobs with holes and pinches
        painted = np.full((height, width), -1)
        for label, polygon in mask_to_polygons(part_ids):
            painted[polygon_mask(polygon, height, width)] = label
        assert (painted == part_ids).all()


# ---- export and LabelMe import ------------------------------------------------------------------


def test_export_writes_images_latents_and_labelme_skeletons(export_master, generator_path):
    manifest = json.loads((export_master / "export.json").read_text())
    names = [s["name"] for s in manifest["samples"]]
    assert names == ["seed000005", "seed000006", "seed000007"]
    skeleton = json.loads((export_master / "images" / "seed000005.json").read_text())
    assert skeleton["shapes"] == [] and skeleton["imageData"] is None
    assert skeleton["imagePath"] == "seed000005.png"
    assert (skeleton["imageHeight"], skeleton["imageWidth"]) == (16, 16)
    assert {"version", "flags"} <= set(skeleton)
    labels = (export_master / "labels.txt").read_text().split()
    assert set(CAR_20[1:]) <= set(labels) and set(KEYPOINTS) <= set(labels)
    # The stored w+ reproduces the PNG exactly.
    from safetensors.torch import load_file

    ws = load_file(str(export_master / "latents.safetensors"))["seed000006"]
    picture = synthesize_uint8(load_generator(generator_path), ws[None])[0]
    assert (picture == np.asarray(Image.open(export_master / "images" / "seed000006.png"))).all()


def _reaches_total(events, task: str | None = None) -> bool:
    """True when some event (of `task`, if given) has done == total."""
    return any(
        e.total is not None and e.done == e.total and (task is None or e.task == task)
        for e in events
    )


def test_export_run_without_the_cli(tmp_path, generator_path, export_master):
    from assetgan.pipeline.annotate.export import AnnotateExportConfig, ExportManifest, run

    config = AnnotateExportConfig(generator_path, tmp_path / "e", (5, 6, 7), device="cpu")
    events = []
    result = run(config, events.append)
    assert result.names == ("seed000005", "seed000006", "seed000007")
    assert result.seeds == (5, 6, 7) and result.image_size == (16, 16)
    assert _reaches_total(events, "sampling")
    # the same samples as the CLI wrote (export_master: --n 3 --seed 5)
    for name in result.names:
        png = f"images/{name}.png"
        assert (tmp_path / "e" / png).read_bytes() == (export_master / png).read_bytes()
    manifest = ExportManifest.load(tmp_path / "e")
    assert manifest.names() == list(result.names) and manifest.selection == {}
    written = json.loads((tmp_path / "e" / "config.json").read_text())
    assert written["device"] == "cpu" and written["seeds"] == [5, 6, 7]
    assert AnnotateExportConfig.from_dict(written) == config
    with pytest.raises(AssetganError, match="seeds repeat"):
        run(AnnotateExportConfig(generator_path, tmp_path / "r", (1, 1)))
    assert not (tmp_path / "r").exists()


def test_cli_export_bad_input(tmp_path, generator_path):
    args = ["annotate", "export", "-g", str(generator_path), "--out", str(tmp_path / "x")]
    _expect_error(runner.invoke(app, [*args, "--n", "0"]), "no seeds to sample; use --n 1 or more")
    _expect_error(runner.invoke(app, [*args, "--psi", "1.5"]), "--psi must be in [0, 1]")
    missing = ["annotate", "export", "-g", str(tmp_path / "no.safetensors")]
    _expect_error(runner.invoke(app, [*missing, "--out", str(tmp_path / "x")]), "no.safetensors")
    assert not (tmp_path / "x").exists()


def test_labelme_import_paints_in_order_and_reads_keypoints(export_dir, tmp_path):
    _labelme_file(
        export_dir,
        "seed000005",
        [
            _shape("car_body", [[2, 2], [14, 2], [14, 12], [2, 12]]),
            _shape("window", [[4, 3], [8, 3], [8, 6], [4, 6]], "rectangle"),  # 2 points below
            _shape("tire", [[5, 12], [5, 14]], "circle"),
            _shape("__ignore__", [[0, 14], [2, 14], [2, 16], [0, 16]]),
            _shape("left_front_wheel", [[5.5, 12.25]], "point"),
            _shape("upper_left_windshield", [[4, 3]], "point", flags={"occluded": True}),
        ],
    )
    shapes = json.loads((export_dir / "images" / "seed000005.json").read_text())["shapes"]
    shapes[1]["points"] = [[4, 3], [8, 6]]  # a LabelMe rectangle has two corners
    _labelme_file(export_dir, "seed000005", shapes)
    result = _import(export_dir, tmp_path / "set")
    assert result.exit_code == 0, result.output
    assert "2 without labels skipped" in result.output
    loaded = AnnotationSet.load(tmp_path / "set")
    (sample,) = loaded.samples
    assert sample.name == "seed000005" and sample.seed == 5
    expected = np.zeros((16, 16), dtype=np.uint8)
    expected[2:12, 2:14] = PART_ID["car_body"]
    expected[3:6, 4:8] = PART_ID["window"]
    rows, cols = np.mgrid[0:16, 0:16]
    expected[((cols + 0.5 - 5) ** 2 + (rows + 0.5 - 12) ** 2) < 4] = PART_ID["tire"]
    expected[14:16, 0:2] = 255
    assert (sample.part_ids == expected).all()
    kp = sample.keypoints_xyv
    assert kp[KEYPOINTS.index("left_front_wheel")].tolist() == [5.5, 12.25, 2]
    assert kp[KEYPOINTS.index("upper_left_windshield")].tolist() == [4, 3, 1]
    assert kp[:, 2].sum() == 3
    exported = np.asarray(Image.open(export_dir / "images" / "seed000005.png"))
    assert (sample.image == exported).all()


def _expect_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


SQUARE = [[2, 2], [6, 2], [6, 6], [2, 6]]


@pytest.mark.parametrize(
    ("shapes", "overrides", "fragments"),
    [
        ([_shape("wheel", SQUARE)], {}, ["unknown label 'wheel'", "car_body", "left_front_wheel"]),
        ([_shape("door", [[2, 2], [17, 2], [6, 6]])], {}, ["(17, 2) is outside the 16x16"]),
        ([_shape("left_back_wheel", [[3, -1]], "point")], {}, ["outside"]),
        ([_shape("door", SQUARE)], {"imageHeight": 20}, ["20x16", "seed000005.png is 16x16"]),
        ([_shape("door", SQUARE)], {"imagePath": "/etc/passwd"}, ["absolute path"]),
        ([_shape("door", SQUARE)], {"imagePath": "../images/seed000005.png"}, ["contains '..'"]),
        ([_shape("door", SQUARE)], {"imagePath": "..\\x.png"}, ["contains '..'"]),
        ([_shape("door", SQUARE)], {"imagePath": "missing.png"}, ["does not exist"]),
        ([_shape("door", [[1, 1]], "line")], {}, ["shape_type 'line' cannot carry a part"]),
        ([_shape("mirror", SQUARE, "point")], {}, ["cannot carry a part"]),
    ],
)
def test_labelme_errors_are_one_line_with_the_file(
    export_dir, tmp_path, shapes, overrides, fragments
):
    path = _labelme_file(export_dir, "seed000005", shapes, **overrides)
    _expect_error(_import(export_dir, tmp_path / "set"), str(path), *fragments)
    assert not (tmp_path / "set").exists()


def test_labelme_unreadable_files_and_size_mismatch_with_the_export(export_dir, tmp_path):
    good = [_shape("door", SQUARE)]
    path = _labelme_file(export_dir, "seed000005", good)
    path.write_text("{not json")
    _expect_error(_import(export_dir, tmp_path / "set"), str(path), "not readable JSON")
    _labelme_file(export_dir, "seed000006", good)
    path.write_text(json.dumps({"shapes": [], "imagePath": "seed000005.png"}))  # unannotated
    image = export_dir / "images" / "seed000006.png"
    image.write_bytes(b"\x89PNG broken")
    _expect_error(_import(export_dir, tmp_path / "set"), "seed000006.json", "not a readable image")
    Image.new("RGB", (20, 20)).save(image)  # annotated at another size than exported
    doc = export_dir / "images" / "seed000006.json"
    _labelme_file(export_dir, "seed000006", good, imageHeight=20, imageWidth=20)
    _expect_error(
        _import(export_dir, tmp_path / "set"), str(doc), "20x20", "exported image is 16x16"
    )


def _png_base64(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _exported_pixels(export_dir: Path, name: str = "seed000005") -> np.ndarray:
    return np.asarray(Image.open(export_dir / "images" / f"{name}.png").convert("RGB"))


@pytest.mark.parametrize(
    ("image_data", "fragments"),
    [
        ("not base64 at all!", ["imageData is not valid base64"]),
        ("aGVsbG8gd29ybGQ=", ["imageData decodes to 11 bytes that are not an image"]),
        ("other pixels", ["imageData is a different image from imagePath seed000005.png"]),
        ("other size", ["imageData holds a 20x16 image but imagePath seed000005.png is 16x16"]),
    ],
)
def test_labelme_image_data_must_be_the_image_of_image_path(
    export_dir, tmp_path, image_data, fragments
):
    if image_data == "other pixels":
        pixels = _exported_pixels(export_dir).copy()
        pixels[3, 4] ^= 1  # one channel of one pixel off by one level
        image_data = _png_base64(pixels)
    elif image_data == "other size":
        image_data = _png_base64(np.zeros((16, 20, 3), np.uint8))
    path = _labelme_file(export_dir, "seed000005", [_shape("door", SQUARE)], imageData=image_data)
    _expect_error(_import(export_dir, tmp_path / "set"), str(path), *fragments)
    assert not (tmp_path / "set").exists()


def test_labelme_image_data_of_the_same_image_is_accepted(export_dir, tmp_path):
    from assetgan.pipeline.annotate.importer import ImportConfig, run

    pixels = _exported_pixels(export_dir)
    # LabelMe's own copy: the same pixels, re-encoded (RGBA here, bytes differ from the file)
    alpha = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
    first = _labelme_file(
        export_dir, "seed000005", [_shape("door", SQUARE)], imageData=_png_base64(alpha)
    )
    second = _labelme_file(
        export_dir,
        "seed000006",
        [_shape("hoods", SQUARE)],
        imageData=_png_base64(_exported_pixels(export_dir, "seed000006")),
    )
    # a labels folder apart from the export, where seed000006.png is absent: imageData alone
    # gives that image
    labels = tmp_path / "labels"
    labels.mkdir()
    for path in (first, second):
        shutil.copy(path, labels / path.name)
    shutil.copy(export_dir / "images" / "seed000005.png", labels)
    # a JPEG, which LabelMe re-encodes into imageData (lossy): close counts as the same
    Image.fromarray(_exported_pixels(export_dir, "seed000007")).save(labels / "seed000007.jpg")
    reencoded = io.BytesIO()
    Image.open(labels / "seed000007.jpg").save(reencoded, format="JPEG")  # quality 75
    jpeg = _labelme_file(
        export_dir,
        "seed000007",
        [_shape("roof", SQUARE)],
        imagePath="seed000007.jpg",
        imageData=base64.b64encode(reencoded.getvalue()).decode("ascii"),
    )
    shutil.copy(jpeg, labels / jpeg.name)
    events = []
    result = run(ImportConfig(labels, tmp_path / "set", export=export_dir), events.append)
    assert result.imported == ("seed000005", "seed000006", "seed000007")
    assert result.export == export_dir
    assert result.out == tmp_path / "set" and result.skipped == ()
    assert _reaches_total(events, "reading labels")
    samples = AnnotationSet.load(tmp_path / "set").samples
    assert samples[0].part_ids[3, 3] == PART_ID["door"]
    assert samples[1].part_ids[3, 3] == PART_ID["hoods"]


def test_labelme_image_path_through_a_symlink_out_of_the_folder(export_dir, tmp_path):
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (16, 16)).save(outside)
    (export_dir / "images" / "link.png").symlink_to(outside)
    path = _labelme_file(export_dir, "seed000005", [_shape("door", SQUARE)], imagePath="link.png")
    _expect_error(_import(export_dir, tmp_path / "set"), str(path), "outside the annotation folder")


# ---- COCO and PNG masks -------------------------------------------------------------------------


def test_coco_round_trip_through_pycocotools(export_dir, tmp_path):
    rng = np.random.default_rng(1)
    names = ["seed000005", "seed000007"]
    labeled = []
    for name in names:
        part_ids = ndimage.median_filter(rng.integers(0, 6, (16, 16)), 3).astype(np.uint8)
        part_ids[0, :3] = 255  # ignore pixels are left out of COCO -> background on the way back
        keypoints = np.zeros((12, 3), np.float32)
        keypoints[[0, 4]] = [[3.25, 7.5, 2], [10, 1.5, 1]]
        labeled.append(LabeledImage(name, "test", part_ids, keypoints))
    document = to_coco(labeled, [f"{n}.png" for n in names])
    # one image with a polygon segmentation too (COCO's flat [x0, y0, x1, y1, ...])
    document["annotations"].append(
        {
            "id": 999,
            "image_id": 2,
            "category_id": PART_ID["roof"],
            "iscrowd": 0,
            "segmentation": [[8, 8, 12, 8, 12, 12, 8, 12]],
        }
    )
    coco_path = export_dir / "images" / "coco.json"
    coco_path.write_text(json.dumps(document))
    from pycocotools.coco import COCO

    assert len(COCO(str(coco_path)).getAnnIds()) == len(document["annotations"])
    result = runner.invoke(
        app,
        ["annotate", "import", str(coco_path), "--format", "coco", "--out", str(tmp_path / "s")],
    )
    assert result.exit_code == 0, result.output
    samples = {s.name: s for s in AnnotationSet.load(tmp_path / "s").samples}
    assert sorted(samples) == names
    first = labeled[0].part_ids.copy()
    first[first == 255] = 0
    assert (samples[names[0]].part_ids == first).all()
    second = labeled[1].part_ids.copy()
    second[second == 255] = 0
    roof = samples[names[1]].part_ids == PART_ID["roof"]
    assert roof[8:12, 8:12].all()  # pycocotools' polygon covers the square
    assert (samples[names[1]].part_ids[~roof] == second[~roof]).all()
    assert np.allclose(samples[names[0]].keypoints_xyv, labeled[0].keypoints_xyv)


def test_coco_errors(export_dir, tmp_path):
    labeled = [
        LabeledImage("seed000005", "t", np.zeros((16, 16), np.uint8), np.zeros((12, 3), np.float32))
    ]
    document = to_coco(labeled, ["seed000005.png"])
    coco_path = export_dir / "images" / "coco.json"
    args = ["annotate", "import", str(coco_path), "--format", "coco", "--out", str(tmp_path / "s")]
    document["categories"][0]["name"] = "spoiler"
    coco_path.write_text(json.dumps(document))
    _expect_error(runner.invoke(app, args), str(coco_path), "unknown label 'spoiler'")
    document = to_coco(labeled, ["../seed000005.png"])
    coco_path.write_text(json.dumps(document))
    _expect_error(runner.invoke(app, args), str(coco_path), "contains '..'")
    document = to_coco(labeled, ["seed000005.png"])
    document["annotations"][-1]["keypoints"][0:3] = [40, 2, 2]
    coco_path.write_text(json.dumps(document))
    _expect_error(runner.invoke(app, args), str(coco_path), "(40, 2) is outside")


def test_png_mask_import_and_errors(export_dir, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    part_ids = np.zeros((16, 16), np.uint8)
    part_ids[4:9, 3:12] = PART_ID["hoods"]
    part_ids[0] = 255
    Image.fromarray(part_ids).save(masks / "seed000007.png")
    args = ["annotate", "import", str(masks), "--format", "png", "--export", str(export_dir)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    (sample,) = AnnotationSet.load(tmp_path / "s").samples
    assert sample.name == "seed000007" and (sample.part_ids == part_ids).all()
    part_ids[2, 2] = 40
    Image.fromarray(part_ids).save(masks / "seed000007.png")
    _expect_error(
        runner.invoke(app, [*args, "--out", str(tmp_path / "t")]), "seed000007.png", "id 40"
    )
    Image.fromarray(np.zeros((16, 17), np.uint8)).save(masks / "seed000007.png")
    _expect_error(runner.invoke(app, [*args, "--out", str(tmp_path / "t")]), "17x16")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(masks / "seed999999.png")
    (masks / "seed000007.png").unlink()
    _expect_error(
        runner.invoke(app, [*args, "--out", str(tmp_path / "t")]), "seed999999", "not one of the 3"
    )


# ---- HandsOff inversion -------------------------------------------------------------------------


def test_inversion_reduces_error_on_images_of_the_same_generator():
    from assetgan.pipeline.annotate.invert import InversionSettings, invert
    from assetgan.pipeline.stylegan.sampling import ws_from_seeds

    generator = _tiny_generator().requires_grad_(False)
    with torch.no_grad():
        targets = generator.synthesis(
            ws_from_seeds(generator, [11, 12, 13], 0.7), noise_mode="const"
        )
    result = invert(generator, targets, InversionSettings(steps=25, lr=0.05, batch=2))
    assert result.ws.shape == (3, generator.num_ws, generator.w_dim)
    assert (result.mse < 0.5 * result.initial_mse).all(), (result.initial_mse, result.mse)
    with torch.no_grad():  # the returned latents reproduce the reported error
        again = generator.synthesis(result.ws, noise_mode="const")
    mse = (again - targets).square().mean(dim=(1, 2, 3)).numpy()
    assert np.allclose(mse, result.mse, rtol=1e-4, atol=1e-6)
    # Joint optimisation equals one-by-one: per-image losses are summed and Adam is element-wise.
    alone = invert(generator, targets[2:3], InversionSettings(steps=25, lr=0.05, batch=1))
    assert torch.allclose(alone.ws[0], result.ws[2], atol=1e-4)


def _fake_split(root: Path, generator: Generator, count: int) -> Path:
    """A CarWorld-shaped split (images/, parts/, meta/) of generator images with made-up labels."""
    from assetgan.pipeline.stylegan.sampling import ws_from_seeds

    pictures = synthesize_uint8(
        generator, ws_from_seeds(generator, list(range(50, 50 + count)), 0.7)
    )
    for sub in ("images", "parts", "meta"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for index, picture in enumerate(pictures):
        name = f"{index:06d}"
        Image.fromarray(picture).save(root / "images" / f"{name}.png")
        parts = np.zeros(picture.shape[:2], np.uint8)
        parts[4:12, 2:14] = PART_ID["car_body"]
        Image.fromarray(parts).save(root / "parts" / f"{name}.png")
        xyv = np.zeros((12, 3))
        xyv[0] = [4.5, 11.5, 2]
        (root / "meta" / f"{name}.json").write_text(
            json.dumps({"keypoints": {"xyv": xyv.tolist()}})
        )
    return root


def test_invert_run_without_the_cli(tmp_path, generator_path):
    from assetgan.pipeline.annotate.invert import InversionSettings, InvertConfig, run

    split = _fake_split(tmp_path / "split", load_generator(generator_path), 3)
    settings = InversionSettings(steps=6, batch=2)
    config = InvertConfig(generator_path, split, tmp_path / "set", 3, settings, device="cpu")
    events = []
    result = run(config, events.append)
    inverting = [e for e in events if e.task == "inverting"]
    assert inverting[-1].done == inverting[-1].total == 2 * 6  # two batches of 6 steps
    assert all("mse" in e.metrics for e in inverting)
    assert result.names == ("real000000", "real000001", "real000002")
    assert all(m < s for m, s in zip(result.mse, result.initial_mse, strict=True))
    report = json.loads(result.report.read_text())
    assert report["config"]["steps"] == 6 and report["mean_mse"] == pytest.approx(result.mean_mse)
    assert [i["name"] for i in report["images"]] == list(result.names)
    assert result.reconstructions.is_file()
    loaded = AnnotationSet.load(result.out)
    assert [s.source for s in loaded.samples] == ["inverted"] * 3
    with pytest.raises(AssetganError, match="--steps must be at least 1"):
        run(InvertConfig(generator_path, split, tmp_path / "x", 1, InversionSettings(steps=0)))
    assert not (tmp_path / "x").exists()


def test_cli_invert_writes_an_inverted_annotation_set(tmp_path, generator_path):
    split = _fake_split(tmp_path / "split", load_generator(generator_path), 3)
    args = ["annotate", "invert", "-g", str(generator_path), "--images", str(split), "--n", "2"]
    result = runner.invoke(
        app, [*args, "--steps", "8", "--out", str(tmp_path / "set"), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "real000001: mse" in result.output
    loaded = AnnotationSet.load(tmp_path / "set")
    assert [s.name for s in loaded.samples] == ["real000000", "real000001"]
    sample = loaded.samples[0]
    assert sample.source == "inverted" and sample.seed is None
    assert sample.part_ids[5, 5] == PART_ID["car_body"] and sample.keypoints_xyv[0, 2] == 2
    report = json.loads((tmp_path / "set" / "inversion.json").read_text())
    assert report["images"][0]["mse"] < report["images"][0]["initial_mse"]
    assert (tmp_path / "set" / "reconstructions.png").is_file()
    _expect_error(
        runner.invoke(app, [*args[:5], str(tmp_path), "--n", "2", "--out", str(tmp_path / "x")]),
        "no images/ folder",
    )
    _expect_error(
        runner.invoke(app, [*args[:6], "--n", "9", "--out", str(tmp_path / "x")]),
        "only 3 are complete",
    )


# ---- selection ----------------------------------------------------------------------------------


def test_k_center_greedy_spreads_picks_over_clusters():
    from assetgan.pipeline.annotate.select import coverage, k_center_greedy

    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    points = np.concatenate([c + rng.normal(0, 0.5, (30, 2)) for c in centres])
    picks = k_center_greedy(points, 4)
    assert sorted(p // 30 for p in picks) == [0, 1, 2, 3]  # one per cluster
    radius, _ = coverage(points, picks)
    assert radius < 3.0
    # a 1-D case by hand: start nearest the mean (2 ties 10 at distance 4 -> first), then 12, 0
    assert k_center_greedy(np.array([[0.0], [1], [2], [10], [11], [12]]), 3) == [2, 5, 0]


def test_select_run_without_the_cli(tmp_path, generator_path):
    from assetgan.pipeline.annotate.select import SelectConfig, SelectMethod, run

    config = SelectConfig(
        generator_path, tmp_path / "s", SelectMethod.coreset, candidates=12, k=3, device="cpu"
    )
    events = []
    result = run(config, events.append)
    assert _reaches_total(events, "embedding candidates") and _reaches_total(events, "sampling")
    chosen = result.selection
    assert len(set(chosen.seeds)) == 3 and all(0 <= s < 12 for s in chosen.seeds)
    assert result.export.seeds == chosen.seeds and result.export.out == tmp_path / "s"
    manifest = json.loads((tmp_path / "s" / "export.json").read_text())
    assert manifest["selection"] == chosen.to_json(config)
    assert [s["seed"] for s in manifest["samples"]] == list(chosen.seeds)
    assert chosen.covering_radius >= chosen.mean_distance > 0
    bad = SelectConfig(generator_path, tmp_path / "u", SelectMethod.uncertainty, 12, 3)
    with pytest.raises(AssetganError, match="needs a trained interpreter"):
        run(bad)
    assert not (tmp_path / "u").exists()


def test_cli_select_coreset_covers_better_than_random(tmp_path, generator_path):
    radii = {}
    for method in ("random", "coreset"):
        out = tmp_path / method
        args = ["annotate", "select", "-g", str(generator_path), "--candidates", "24", "--k", "4"]
        result = runner.invoke(
            app, [*args, "--method", method, "--out", str(out), "--device", "cpu"]
        )
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "export.json").read_text())
        assert manifest["selection"]["method"] == method
        seeds = [s["seed"] for s in manifest["samples"]]
        assert len(set(seeds)) == 4 and all(0 <= s < 24 for s in seeds)
        assert len(list((out / "images").glob("*.json"))) == 4
        radii[method] = manifest["selection"]["covering_radius"]
    assert radii["coreset"] <= radii["random"]
    args = ["annotate", "select", "-g", str(generator_path), "--method", "uncertainty"]
    _expect_error(
        runner.invoke(app, [*args, "--out", str(tmp_path / "u")]), "needs a trained interpreter"
    )
    _expect_error(
        runner.invoke(
            app, [*args[:4], "--k", "30", "--candidates", "20", "--out", str(tmp_path / "u")]
        ),
        "--k",
    )


# ---- simulated annotator ------------------------------------------------------------------------


def stub_predictor_factory(checkpoint: Path, device: str):
    """A STUB segmenter for tests only (brightness bands + fixed keypoints), not a real model:
    the CarWorld segmenter arrives with the downstream `segment` stage."""

    def predict(images: np.ndarray):
        brightness = images.astype(np.float32).mean(-1)  # [N, H, W]
        part_ids = np.zeros(brightness.shape, np.uint8)
        part_ids[brightness > 100] = PART_ID["car_body"]
        part_ids[brightness > 160] = PART_ID["window"]
        part_ids[:, 5:9, 5:9] = PART_ID["tire"]  # a block in front of everything
        keypoints = np.zeros((len(images), 12, 3), np.float32)
        keypoints[:, 0] = [7.0, 7.0, 2]
        keypoints[:, 3] = [12.0, 3.0, 1]
        return part_ids, keypoints

    return predict


def test_simulated_annotator_without_noise_reproduces_the_masks(tmp_path, generator_path):
    from assetgan.pipeline.annotate.simulate import DrawingSettings, SimulateConfig, run

    predictor = stub_predictor_factory(tmp_path, "cpu")
    checkpoint = tmp_path / "seg.safetensors"
    checkpoint.write_bytes(b"stub")  # the stub factory does not read it
    spec = "test_annotate:stub_predictor_factory"
    exact = DrawingSettings(vertex_noise=0, simplify=0, min_area=0, keypoint_noise=0)
    config = SimulateConfig(
        generator_path, checkpoint, tmp_path / "exact", (3, 4), predictor=spec, drawing=exact
    )
    events = []
    result = run(config, events.append)
    for task in ("sampling", "labeling", "drawing", "reading labels"):
        assert _reaches_total(events, task), task
    annotation_set = AnnotationSet.load(result.out)
    assert result.names == ("seed000003", "seed000004")
    assert [s.name for s in annotation_set.samples] == list(result.names)
    expected, _ = predictor(np.stack([s.image for s in annotation_set.samples]))
    for sample, mask in zip(annotation_set.samples, expected, strict=True):
        assert (sample.part_ids == mask).all()  # polygons -> LabelMe -> import is lossless
        assert sample.keypoints_xyv[3].tolist() == [12.0, 3.0, 1]
    assert result.mean_pixel_accuracy == 1.0
    assert json.loads(result.report.read_text())["config"]["vertex_noise"] == 0
    # With a person's noise the labels change a little, but only a little.
    noisy_config = dataclasses.replace(config, out=tmp_path / "noisy", drawing=DrawingSettings())
    noisy = run(noisy_config)
    assert 0.6 < noisy.mean_pixel_accuracy < 1.0
    doc = json.loads((noisy.labelme / "seed000003.json").read_text())
    assert {s["shape_type"] for s in doc["shapes"]} == {"polygon", "point"}


def test_cli_simulate_with_a_pluggable_predictor(tmp_path, generator_path):
    checkpoint = tmp_path / "seg.safetensors"
    checkpoint.write_bytes(b"stub")
    args = ["annotate", "simulate", "-g", str(generator_path), "--segmenter", str(checkpoint)]
    result = runner.invoke(
        app,
        [
            *args,
            "--predictor",
            "test_annotate:stub_predictor_factory",
            "--n",
            "2",
            "--out",
            str(tmp_path / "set"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "pixel accuracy" in result.output
    assert len(AnnotationSet.load(tmp_path / "set").samples) == 2
    _expect_error(
        runner.invoke(app, [*args, "--out", str(tmp_path / "x")]), "seg.safetensors", "segment"
    )
    _expect_error(
        runner.invoke(app, [*args, "--predictor", "nowhere:fn", "--out", str(tmp_path / "x")]),
        "cannot import nowhere",
    )


def test_cli_select_uncertainty_takes_the_most_uncertain_then_spreads(tmp_path, generator_path):
    from assetgan.core.hashing import file_sha256
    from assetgan.pipeline.annotate.select import interpreter_scores
    from assetgan.pipeline.annotations import AnnotatedSample
    from assetgan.pipeline.interpreter.checkpoint import save_interpreter
    from assetgan.pipeline.interpreter.config import InterpreterTrainSettings
    from assetgan.pipeline.interpreter.train import train
    from assetgan.pipeline.stylegan.sampling import ws_from_seeds

    generator = load_generator(generator_path)
    sha = file_sha256(generator_path)
    annotations = AnnotationSet.empty()
    for seed, ws in zip((90, 91), ws_from_seeds(generator, [90, 91], 0.7), strict=True):
        part_ids = np.zeros((16, 16), np.uint8)
        part_ids[4:12, 3 + seed % 2 : 13] = PART_ID["door"]
        annotations.samples.append(
            AnnotatedSample(
                f"s{seed}",
                str(generator_path),
                sha,
                seed,
                ws.numpy(),
                part_ids,
                np.zeros((12, 3), np.float32),
            )
        )
    config = InterpreterTrainSettings(
        members=3, batch_pixels=16, max_iterations=10, keypoints=False
    )
    checkpoint = save_interpreter(
        train(annotations, generator, sha, config), tmp_path / "I.safetensors"
    )
    args = ["annotate", "select", "-g", str(generator_path), "--candidates", "12", "--k", "2"]
    result = runner.invoke(
        app,
        [
            *args,
            "--method",
            "uncertainty",
            "--interpreter",
            str(checkpoint),
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "u"),
        ],
    )
    assert result.exit_code == 0, result.output
    selection = json.loads((tmp_path / "u" / "export.json").read_text())["selection"]
    scores = interpreter_scores(checkpoint, generator, sha)(
        ws_from_seeds(generator, list(range(12)), 0.7)
    )
    pool = set(np.argsort(-scores, kind="stable")[:8].tolist())  # pool_factor 4 x k 2
    chosen = [
        s["seed"] for s in json.loads((tmp_path / "u" / "export.json").read_text())["samples"]
    ]
    assert chosen[0] == int(np.argmax(scores)) and set(chosen) <= pool
    assert np.allclose(selection["scores"], scores[chosen])
    other = save_generator(_tiny_generator(seed=3), tmp_path / "G2.safetensors")
    _expect_error(
        runner.invoke(
            app,
            [
                "annotate",
                "select",
                "-g",
                str(other),
                "--method",
                "uncertainty",
                "--interpreter",
                str(checkpoint),
                "--out",
                str(tmp_path / "x"),
            ],
        ),
        "trained on generator sha256",
    )
