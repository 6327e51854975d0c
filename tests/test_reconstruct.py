"""assetgan.inverse_graphics.reconstruct and `assetgan reconstruct`: the template's symmetry,
model shapes and symmetry, rendering, losses that fall on a tiny overfit, checkpoints, exact
resume, the NaN stop, the multi-view hook, bad inputs, run() from Python and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from assetgan.assets.taxonomy import KEYPOINT_FLIP
from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.reconstruct.data import ArrayData, load_carworld
from assetgan.inverse_graphics.reconstruct.losses import LossWeights
from assetgan.inverse_graphics.reconstruct.model import (
    CAMERA_FIELDS,
    ReconstructNet,
    ReconstructNetConfig,
    TextureMode,
    load_reconstructor,
    read_reconstructor_config,
    save_reconstructor,
)
from assetgan.inverse_graphics.reconstruct.pose import CameraSource
from assetgan.inverse_graphics.reconstruct.render import project_points, render_views
from assetgan.inverse_graphics.reconstruct.template import (
    TemplateKind,
    build_template,
    flip_uv_image,
    mirror_points,
)
from assetgan.inverse_graphics.reconstruct.train import (
    ReconstructTrainConfig,
    loss_terms,
    run,
    train,
)
from assetgan.render.camera import orbit_camera

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()
TINY = ReconstructNetConfig(
    subdivisions=2,
    encoder_channels=(8, 16, 32, 32),
    code_dim=64,
    decoder_channels=(32, 16),
    uv_size=(16, 32),
)


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    """A tiny CarWorld split rendered by the real generator (6 images, 64 px)."""
    from assetgan.pipeline.carworld.generate import WorldRenderConfig
    from assetgan.pipeline.carworld.generate import run as render_world
    from assetgan.pipeline.carworld.split import WorldConfig

    out = tmp_path_factory.mktemp("world") / "tiny"
    render_world(WorldRenderConfig(WorldConfig(split="tiny", n=6, size=64, seed=3), out))
    return out


@pytest.fixture(scope="module")
def data(split_dir) -> ArrayData:
    return load_carworld(split_dir)


def tiny_config(split_dir: Path, out: Path, **changes) -> ReconstructTrainConfig:
    settings = {"model": TINY, "steps": 6, "batch": 4, "lr": 1e-3, "log_every": 1}
    settings |= {"device": Device.cpu, "sheet_images": 0, "checkpoint_every": 3}
    return ReconstructTrainConfig(split_dir, out, **{**settings, **changes})


def metrics_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ---- template and model -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(TemplateKind))
def test_template_is_mirror_symmetric_and_car_sized(kind):
    template = build_template(kind, subdivisions=2)
    twin = template.mirror_vertex
    assert torch.equal(twin[twin], torch.arange(len(twin)))  # an involution
    assert int((twin != torch.arange(len(twin))).sum()) > len(twin) // 2
    mirrored = mirror_points(template.vertices, twin)
    assert torch.allclose(mirrored, template.vertices, atol=1e-5)
    lo, hi = template.vertices.amin(0), template.vertices.amax(0)
    assert hi[2] - lo[2] == pytest.approx(4.6, abs=1e-3) and lo[1] >= 0.2 and hi[1] <= 1.53
    assert len(template.face_pairs) == len(template.faces) * 3 // 2  # closed: every edge shared


def test_uv_mirror_is_a_flip_of_the_uv_image():
    template = build_template(subdivisions=2)
    # u of a vertex and of its mirror twin add up to 1 (the UV image mirror is a width flip)
    first_uv = {}
    for face, uv_face in zip(template.faces.tolist(), template.uv_faces.tolist(), strict=True):
        for vertex, uv_index in zip(face, uv_face, strict=True):
            first_uv.setdefault(vertex, template.uv[uv_index])
    uv = torch.stack([first_uv[v] for v in range(template.num_vertices)])
    u, v = uv[:, 0] % 1.0, uv[:, 1]
    twin_u = u[template.mirror_vertex]
    off_seam = (u > 0.01) & (u < 0.99) & (v > 0.01) & (v < 0.99)  # poles have no single u
    assert int(off_seam.sum()) > template.num_vertices - 20
    assert torch.allclose((u + twin_u)[off_seam], torch.ones(int(off_seam.sum())), atol=1e-4)


@pytest.mark.parametrize("texture", list(TextureMode))
def test_model_shapes_and_exact_symmetry(texture):
    torch.manual_seed(0)
    model = ReconstructNet(dataclasses.replace(TINY, texture=texture))
    with torch.no_grad():  # make the heads non-trivial so symmetry is not an accident
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    out = model(torch.rand(3, 3, 64, 64))
    vertices = model.template.num_vertices
    assert out.vertices.shape == (3, vertices, 3) and out.offsets.shape == (3, vertices, 3)
    assert out.texture.shape == (3, 16, 32, 3) and out.part_logits.shape == (3, 16, 32, 19)
    assert out.keypoints.shape == (3, 12, 3) and out.keypoint_weights.shape == (12, vertices)
    texture = out.texture.detach()
    assert float(texture.min()) >= 0 and float(texture.max()) <= 1
    assert out.camera.shape == (3, 7) and float(out.camera[:, 2].detach().min()) > 0
    assert torch.allclose(out.vertices, mirror_points(out.vertices, model.mirror_vertex), atol=1e-5)
    spread = (out.vertices - out.vertices.mean(1, keepdim=True)).detach().abs().max()
    assert float(spread) > 0.1
    assert torch.allclose(out.part_logits, flip_uv_image(out.part_logits), atol=1e-6)
    weights = out.keypoint_weights
    assert torch.allclose(weights.sum(1), torch.ones(12), atol=1e-5)
    mirrored = weights[list(KEYPOINT_FLIP)][:, model.mirror_vertex]
    assert torch.allclose(weights, mirrored, atol=1e-6)
    left, right = out.keypoints[:, 0], out.keypoints[:, 1]  # left/right front wheel
    assert torch.allclose(left * torch.tensor([-1.0, 1, 1]), right, atol=1e-5)
    with pytest.raises(AssetganError, match=r"expects images \[B, 3, 64, 64\]"):
        model(torch.rand(1, 3, 32, 32))


def test_render_matches_camera_projection_and_mirrors_with_the_camera():
    torch.manual_seed(1)
    model = ReconstructNet(TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    camera = orbit_camera(30.0, 15.0, 9.0, size=(64, 64), target=(0.0, 0.8, 0.0))
    mvp = camera.mvp[None]
    xy, depth = project_points(out.keypoints, mvp, (64, 64))
    expected_xy, expected_depth = camera.project(out.keypoints[0])
    assert torch.allclose(xy[0], expected_xy, atol=1e-4)
    assert torch.allclose(depth[0], expected_depth, atol=1e-4)
    template = model.template_tables("cpu")
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    both = torch.cat([mvp, (mirror @ mvp)])
    rendered = render_views(
        out.vertices.expand(2, -1, -1),
        out.texture.expand(2, -1, -1, -1),
        out.part_logits.expand(2, -1, -1, -1),
        out.keypoints.expand(2, -1, -1),
        template,
        both,
        (64, 64),
    )
    covered = rendered.covered
    assert 300 < int(covered[0].sum()) < 64 * 64 - 300
    agreement = (covered[0] == covered[1].flip(-1)).float().mean()
    assert float(agreement) > 0.995  # a symmetric car seen in a mirrored camera: mirrored image


# ---- losses, training, checkpoints --------------------------------------------------------------
def test_losses_decrease_on_a_tiny_overfit(split_dir, tmp_path, data):
    four = data.subset(np.arange(4))
    config = tiny_config(split_dir, tmp_path / "fit", steps=40, lr=2e-3, flip=0.0)
    train(config, four)
    lines = metrics_lines(tmp_path / "fit")
    first = {k: np.mean([line[k] for line in lines[:3]]) for k in lines[0]}
    last = {k: np.mean([line[k] for line in lines[-3:]]) for k in lines[0]}
    assert last["silhouette"] < 0.75 * first["silhouette"], (first, last)
    assert last["colour"] < 0.85 * first["colour"], (first, last)
    assert last["parts"] < 0.9 * first["parts"], (first, last)
    assert last["keypoints"] < 0.5 * first["keypoints"], (first, last)
    assert last["camera"] < 0.5 * first["camera"], (first, last)
    assert last["total"] < 0.7 * first["total"]
    assert last["iou"] > first["iou"] + 0.1


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(2)
    model = ReconstructNet(dataclasses.replace(TINY, template=TemplateKind.ellipsoid))
    with torch.no_grad():
        model.mean_offsets.add_(torch.randn_like(model.mean_offsets) * 0.01)
    path = save_reconstructor(tmp_path / "net.safetensors", model, info={"step": 7})
    loaded, info = load_reconstructor(path)
    assert info == {"step": 7} and loaded.config == model.config
    assert read_reconstructor_config(path) == model.config
    images = torch.rand(2, 3, 64, 64)
    a, b = model.eval()(images), loaded(images)
    for name in ("vertices", "texture", "part_logits", "keypoints"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    (tmp_path / "other.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(AssetganError, match="other.safetensors"):
        load_reconstructor(tmp_path / "other.safetensors")


def test_resume_continues_exactly(split_dir, tmp_path, data):
    straight = train(tiny_config(split_dir, tmp_path / "a"), data)
    first = train(tiny_config(split_dir, tmp_path / "b", steps=3), data)
    assert first.step == 3 and first.resumed_from == 0
    resumed = train(tiny_config(split_dir, tmp_path / "b"), data)
    assert resumed.resumed_from == 3 and resumed.step == straight.step == 6
    a, _ = load_reconstructor(straight.model)
    b, _ = load_reconstructor(resumed.model)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    assert metrics_lines(tmp_path / "a") == [
        {**line, "seconds": metrics_lines(tmp_path / "a")[i]["seconds"]}
        for i, line in enumerate(metrics_lines(tmp_path / "b"))
    ]
    with pytest.raises(AssetganError, match="other settings"):
        train(tiny_config(split_dir, tmp_path / "b", lr=5e-4), data)


@dataclasses.dataclass(frozen=True)
class PoisonedData:
    """A data source whose images turn NaN from step `bad_step` on (batches are counted)."""

    inner: ArrayData
    bad_step: int
    calls: list = dataclasses.field(default_factory=list)

    @property
    def image_size(self) -> int:
        return self.inner.image_size

    def __len__(self) -> int:
        return len(self.inner)

    def batch(self, indices, flip):
        self.calls.append(1)
        batch = self.inner.batch(indices, flip)
        if len(self.calls) > self.bad_step:
            batch.images.fill_(float("nan"))
        return batch

    def partners(self, indices, rng):
        return self.inner.partners(indices, rng)


def test_nan_stops_with_a_message_and_keeps_the_last_good_checkpoint(split_dir, tmp_path, data):
    out = tmp_path / "nan"
    with pytest.raises(
        AssetganError, match=r"loss is nan at step 4.*model\.safetensors \(step 3\)"
    ):
        train(tiny_config(split_dir, out, steps=10), PoisonedData(data, bad_step=4))
    model, info = load_reconstructor(out / "model.safetensors")
    assert info["step"] == 3
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())
    assert metrics_lines(out)[-1]["stopped"].startswith("the loss is nan")


def test_multiview_terms_render_a_second_view(data):
    torch.manual_seed(3)
    model = ReconstructNet(TINY)
    paired = dataclasses.replace(data, content=np.array([0, 0, 1, 1, 2, 2]))
    indices = np.array([0, 2, 4])
    partners = paired.partners(indices, np.random.default_rng(0))
    assert partners.tolist() == [1, 3, 5]
    assert (data.partners(indices, np.random.default_rng(0)) == -1).all()
    flip = np.zeros(3, bool)
    batch, partner = paired.batch(indices, flip), paired.batch(partners, flip)
    terms, _ = loss_terms(model, batch, partner, torch.tensor([True, True, False]))
    assert {"mv_silhouette", "mv_colour", "mv_parts", "mv_keypoints"} <= set(terms)
    single, _ = loss_terms(model, batch, None, None)
    assert not any(name.startswith("mv_") for name in single)
    # the partner view differs from the input view, so the second-view terms do too
    assert float(terms["mv_keypoints"].detach()) != pytest.approx(
        float(single["keypoints"].detach()), rel=1e-3
    )


def test_flip_mirrors_images_labels_and_camera(data):
    plain = data.batch(np.array([1]), np.array([False]))
    mirrored = data.batch(np.array([1]), np.array([True]))
    assert torch.equal(mirrored.images, plain.images.flip(-1))
    assert torch.equal(mirrored.part_ids, plain.part_ids.flip(-1))
    kp, kp_m = plain.keypoints_xyv[0], mirrored.keypoints_xyv[0]
    assert torch.allclose(kp_m[list(KEYPOINT_FLIP), 0], 64 - kp[:, 0])
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    assert torch.allclose(mirrored.mvp[0], mirror @ plain.mvp[0] @ mirror)


def test_flipped_keypoint_labels_agree_with_the_flipped_camera(data):
    """A symmetric car whose keypoints project onto the labels of an image also projects onto
    the swapped, mirrored labels of the flipped image in the flipped camera (with a clip-space
    mirror alone every keypoint was pulled towards its twin)."""
    from assetgan.pipeline.multiview.template import load_shipped_template

    points = torch.tensor(load_shipped_template().points_m(), dtype=torch.float32)[None]
    plain_mvp = torch.from_numpy(data.mvp[:2])
    xy, _ = project_points(points.expand(2, -1, -1), plain_mvp, (64, 64))
    labels = np.concatenate([xy.numpy(), np.full((2, 12, 1), 2.0)], axis=2).astype(np.float32)
    labelled = dataclasses.replace(data.subset(np.arange(2)), keypoints_xyv=labels)
    flipped = labelled.batch(np.arange(2), np.array([True, True]))
    projected, _ = project_points(points.expand(2, -1, -1), flipped.mvp, (64, 64))
    assert torch.allclose(projected, flipped.keypoints_xyv[..., :2], atol=1e-3)


def test_bad_inputs_are_one_line_errors(split_dir, tmp_path, data):
    with pytest.raises(AssetganError, match="masks has shape"):
        dataclasses.replace(data, masks=data.masks[:, :32])
    with pytest.raises(AssetganError, match="square"):
        ArrayData(
            np.zeros((1, 8, 16, 3), np.uint8), np.zeros((1, 8, 16), bool), None, None,
            np.eye(4, dtype=np.float32)[None], np.zeros(1, np.int64), np.zeros(1, np.int64),
        )  # fmt: skip
    with pytest.raises(AssetganError, match="uv_size"):
        ReconstructNetConfig(uv_size=(16, 16)).validate()
    with pytest.raises(AssetganError, match="--steps"):
        tiny_config(split_dir, tmp_path / "x", steps=0).validate()
    with pytest.raises(AssetganError, match="32 px"):
        train(tiny_config(split_dir, tmp_path / "y"), _small_images(data))
    with pytest.raises(AssetganError, match="missing"):
        load_carworld(tmp_path / "nowhere")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    with pytest.raises(AssetganError, match="not empty"):
        train(tiny_config(split_dir, tmp_path / "busy"), data)
    with pytest.raises(AssetganError, match="loss weight colour"):
        LossWeights(colour=-1.0).validate()


def _small_images(data: ArrayData) -> ArrayData:
    """The first two images at 32 px (every other pixel), cameras unchanged."""
    return ArrayData(
        data.images[:2, ::2, ::2].copy(),
        data.masks[:2, ::2, ::2].copy(),
        None,
        None,
        data.mvp[:2],
        data.content[:2],
        data.view[:2],
    )


def test_run_from_python_writes_the_run_directory(split_dir, tmp_path):
    config = tiny_config(split_dir, tmp_path / "run", steps=4, val=split_dir, sheet_images=2)
    result = run(config)
    assert result.step == 4 and result.images == 6 and result.sheet is not None
    for name in ("config.json", "state.safetensors", "state.json", "model.json", "val.json"):
        assert (tmp_path / "run" / name).is_file(), name
    assert 0.0 < result.val["silhouette_iou"] <= 1.0 and result.val["images"] == 6
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert ReconstructTrainConfig.from_dict(saved) == config
    from PIL import Image

    assert Image.open(result.sheet).size[0] > 7 * 128  # 7 columns of 128 px tiles


def cli_app():
    """The sub-app under a root group, as assetgan/cli.py registers it."""
    from assetgan.commands.app import App
    from assetgan.commands.reconstruct import app as reconstruct_app

    root = App()

    @root.callback()
    def main() -> None:
        """Root."""

    root.add_typer(reconstruct_app, name="reconstruct")
    return root


def test_cli_train_and_bad_input(split_dir, tmp_path):
    out = tmp_path / "cli"
    args = ["reconstruct", "train", "--data", str(split_dir), "--out", str(out), "--steps", "2"]
    result = runner.invoke(cli_app(), [*args, "--batch", "2", "--limit", "4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "step 2" in result.output and (out / "model.safetensors").is_file()
    bad = runner.invoke(cli_app(), ["reconstruct", "train", "--data", str(tmp_path / "no")] +
                        ["--out", str(tmp_path / "o"), "--device", "cpu"])  # fmt: skip
    assert bad.exit_code == 1
    assert bad.output.strip().startswith("error:") and len(bad.output.strip().splitlines()) == 1


# ---- reconstruct image --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(4)
    path = tmp_path_factory.mktemp("net") / "net.safetensors"
    return save_reconstructor(path, ReconstructNet(TINY), info={"step": 0})


def test_image_writes_asset_meshes_parts_keypoints_and_turntable(split_dir, tiny_model, tmp_path):
    from PIL import Image

    from assetgan.inverse_graphics.reconstruct.image import ReconstructImageConfig
    from assetgan.inverse_graphics.reconstruct.image import run as run_image
    from assetgan.render.asset import CarAsset, read_part_glb

    wide = tmp_path / "wide.png"  # non-square: centre-cropped, parts.png keeps the input size
    Image.fromarray(np.full((48, 80, 3), 200, np.uint8)).save(wide)
    images = (split_dir / "images" / "000000.png", wide)
    config = ReconstructImageConfig(images, tmp_path / "out", tiny_model, views=4, view_size=32)
    result = run_image(config.validate())
    assert [p.name for p in result.cars] == ["000000", "wide"]
    car = result.cars[0]
    asset = CarAsset.load(car)
    assert asset.has_texture and asset.keypoints.shape == (12, 3)
    assert asset.num_faces == 320 and asset.texture.shape == (16, 32, 3)
    assert read_part_glb(car / "mesh.glb").num_faces == asset.num_faces
    obj = (car / "mesh.obj").read_text()
    assert obj.count("\nf ") == 320 and "map_Kd texture.png" in (car / "mesh.mtl").read_text()
    assert np.asarray(Image.open(car / "parts.png")).shape == (64, 64)
    wide_parts = np.asarray(Image.open(result.cars[1] / "parts.png"))
    assert wide_parts.shape == (48, 80) and not wide_parts[:, :16].any()  # outside the crop
    keypoints = json.loads((car / "keypoints.json").read_text())
    assert len(keypoints["xyv"]) == 12 and keypoints["camera"]["source"] == "pnp"
    assert set(keypoints["camera"]["head"]) == set(CAMERA_FIELDS)
    # a grey image shows no keypoints: the head's camera, and the record says so
    wide_record = json.loads((result.cars[1] / "keypoints.json").read_text())
    assert wide_record["camera"]["source"] == "head (pnp found no camera)"
    head = dataclasses.replace(config, out=tmp_path / "head", camera=CameraSource.head)
    head_record = json.loads((run_image(head).cars[0] / "keypoints.json").read_text())
    assert head_record["camera"]["source"] == "head"
    assert head_record["camera"]["view"] != keypoints["camera"]["view"]
    assert {v for _, _, v in keypoints["xyv"]} <= {0, 1, 2}
    assert Image.open(car / "turntable.png").size == (4 * 32 + 10, 2 * 32 + 6)


def test_image_bad_inputs_are_one_line_errors(split_dir, tiny_model, tmp_path):
    from PIL import Image

    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(grey)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    (tmp_path / "empty").mkdir()
    image = str(split_dir / "images" / "000000.png")
    cases = [
        ([str(grey)], "wrong channels"),
        ([str(broken)], "unreadable image"),
        ([str(tmp_path / "empty")], "no images in this folder"),
        ([str(tmp_path / "missing.png")], "no such file"),
        ([image, "--model", str(tmp_path / "none.safetensors")], "no such reconstruction network"),
    ]
    for args, expected in cases:
        if "--model" not in args:
            args = [*args, "--model", str(tiny_model)]
        result = runner.invoke(cli_app(), ["reconstruct", "image", *args, "--out", str(tmp_path)])
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], lines
    ok = runner.invoke(
        cli_app(),
        ["reconstruct", "image", image, "--model", str(tiny_model), "--out", str(tmp_path / "o")]
        + ["--views", "2", "--device", "cpu"],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "o" / "000000" / "asset.json").is_file()


def write_multiview_set(root: Path, data: ArrayData) -> Path:
    """A finished 2-content x 2-view multi-view set in `multiview sample`'s layout, its images
    taken from CarWorld; image (content 1, view 1) is marked dropped."""
    from PIL import Image

    from assetgan.assets.taxonomy import CAR_20, KEYPOINTS
    from assetgan.core.io_utils import atomic_write_json
    from assetgan.pipeline.multiview.sample import (
        MultiviewSet,
        MultiviewSettings,
        content_files,
        image_name,
    )
    from assetgan.render.pnp import OrbitMean

    settings = MultiviewSettings(views=2, contents=2)
    lines = []
    for content in range(2):
        files = content_files(content, 2)
        views = []
        for view in range(2):
            index = 2 * content + view
            for kind, picture in (("images", data.images[index]), ("parts", data.part_ids[index])):
                (root / kind).mkdir(parents=True, exist_ok=True)
                Image.fromarray(picture).save(root / files[kind][view])
            views.append({"keypoints": {"xyv": data.keypoints_xyv[index].tolist()}})
            kept = (content, view) != (1, 1)
            lines.append(
                {"content": content, "view": view, "image": files["images"][view], "kept": kept}
                | {"parts": files["parts"][view], "reason": "" if kept else "view"}
            )
            assert image_name(content, view) in files["images"][view]
        atomic_write_json(root / files["meta"], {"content": content, "views": views})
    orbit = {"elevation": 15.0, "distance": 9.0, "target": [0.0, 0.7, 0.0], "count": 2}
    orbit |= {"azimuth_spread": 1.0, "elevation_spread": 1.0}
    cameras = {str(v): {"orbit": {**orbit, "azimuth": 40.0 + 90.0 * v}} for v in range(2)}
    atomic_write_json(root / "cameras.json", {"schema_version": 1, "fov_y": 32.0, "views": cameras})
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    MultiviewSet(
        root, settings, "0" * 64, "0" * 64, "0" * 64, 16, (64, 64), CAR_20, KEYPOINTS, {"kept": 3}
    ).save()
    assert OrbitMean.from_json(cameras["1"]["orbit"]).azimuth == 130.0
    return root


def test_multiview_set_trains_with_second_view_terms(data, tmp_path):
    from assetgan.inverse_graphics.reconstruct.data import load_training_data
    from assetgan.render.pnp import OrbitMean

    root = write_multiview_set(tmp_path / "mv", data)
    loaded = load_training_data(root)
    assert len(loaded) == 3 and loaded.content.tolist() == [0, 0, 1]
    assert loaded.view.tolist() == [0, 1, 0]
    orbit = OrbitMean.from_json(
        json.loads((root / "cameras.json").read_text())["views"]["1"]["orbit"]
    )
    assert np.allclose(loaded.mvp[1], orbit.camera(32.0, (64, 64)).mvp.numpy())
    assert loaded.camera_params[1, 0] == pytest.approx(130.0)
    assert loaded.partners(np.arange(3), np.random.default_rng(0)).tolist() == [1, 0, -1]
    config = tiny_config(root, tmp_path / "run", steps=2, batch=3, checkpoint_every=2)
    result = run(config)
    assert result.step == 2 and "mv_silhouette" in metrics_lines(tmp_path / "run")[-1]
    with pytest.raises(AssetganError, match="neither a CarWorld split"):
        load_training_data(tmp_path)


def test_view_camera_correction_starts_at_the_data_cameras_and_mirrors(data, tmp_path):
    from assetgan.inverse_graphics.reconstruct.data import load_training_data
    from assetgan.inverse_graphics.reconstruct.view_cameras import ViewCameraCorrection

    loaded = load_training_data(write_multiview_set(tmp_path / "mv", data))
    assert loaded.view_codes == 2 and data.view_codes == 0
    flip = np.array([False, True, False])
    batch = loaded.batch(np.arange(3), flip)
    assert batch.flipped.tolist() == flip.tolist()
    correction = ViewCameraCorrection(loaded.view_codes)
    refined = correction.apply(batch)
    # zero correction: every row (mirrored too) gets the data's matrix back
    assert torch.allclose(refined.mvp, batch.mvp, atol=1e-5)
    # and renders the mirrored row's car as the data's matrix does
    torch.manual_seed(5)
    model = ReconstructNet(TINY).eval()
    with torch.no_grad():
        out = model(batch.images[1:2].expand(2, -1, -1, -1))
        rendered = render_views(
            out.vertices, out.texture, out.part_logits, out.keypoints,
            model.template_tables("cpu"), torch.stack([batch.mvp[1], refined.mvp[1]]), (64, 64),
        )  # fmt: skip
    assert int(rendered.covered[0].sum()) > 300
    assert float((rendered.covered[0] == rendered.covered[1]).float().mean()) > 0.995
    # a correction of view 0 turns its un-mirrored images one way and mirrored ones the other
    with torch.no_grad():
        correction.raw[0] = torch.tensor([0.2, 0.1, 0.1])
    delta = correction.deltas()[0].detach()
    pair = loaded.batch(np.array([0, 0]), np.array([False, True]))
    orbits = correction.corrected_orbits(pair).detach()
    plain, mirrored = pair.camera_params
    assert float(orbits[0, 0] - plain[0]) == pytest.approx(float(delta[0]), abs=1e-4)
    assert float(orbits[1, 0] - mirrored[0]) == pytest.approx(-float(delta[0]), abs=1e-4)
    assert float(orbits[1, 2] / mirrored[2]) == pytest.approx(float(delta[2].exp()), rel=1e-5)
    # gradients reach the corrections through the renderer
    terms, _ = loss_terms(model, correction.apply(batch), None, None)
    (terms["silhouette"] + terms["keypoints"]).backward()
    assert float(correction.raw.grad[:2].abs().sum()) > 0


def test_multiview_training_refines_cameras_and_resumes_exactly(data, tmp_path):
    root = write_multiview_set(tmp_path / "mv", data)
    straight = tmp_path / "straight"
    run(tiny_config(root, straight, steps=4, batch=3, checkpoint_every=2))
    split = tmp_path / "split"
    run(tiny_config(root, split, steps=2, batch=3, checkpoint_every=2))
    run(tiny_config(root, split, steps=4, batch=3, checkpoint_every=2))
    from assetgan.core.checkpoint import load_tensors

    a, _ = load_tensors(straight / "state.safetensors")
    b, _ = load_tensors(split / "state.safetensors")
    assert a.keys() == b.keys() and "correction.raw" in a
    assert all(torch.equal(a[k], b[k]) for k in a)
    views = json.loads((straight / "view_cameras.json").read_text())
    assert views["step"] == 4 and set(views["views"]) == {"0", "1"}
    assert 0 < abs(views["views"]["0"]["azimuth"]) < 45
    off = tiny_config(root, tmp_path / "off", steps=2, batch=3, refine_cameras=False)
    run(off)
    assert not (tmp_path / "off" / "view_cameras.json").exists()


def test_wheel_labels_are_kept_within_the_wheel_keypoints_discs():
    from assetgan.assets.taxonomy import KEYPOINT_ID, PART_ID
    from assetgan.inverse_graphics.reconstruct.asset_files import keep_wheel_discs

    keypoints = np.zeros((12, 3))
    corners = {"left_front_wheel": (0.9, 1.4), "right_front_wheel": (-0.9, 1.4)}
    corners |= {"left_back_wheel": (0.9, -1.3), "right_back_wheel": (-0.9, -1.3)}
    for name, (x, z) in corners.items():
        keypoints[KEYPOINT_ID[name]] = (x, 0.35, z)
    # per corner: a face at the wheel centre, one 0.3 m off (inside), one 0.8 m off (outside)
    centroids, parts = [], []
    for x, z in corners.values():
        for dz in (0.0, 0.3, 0.8):
            centroids.append((x, 0.35, z + np.sign(z) * dz))
            parts.append(PART_ID["tire"])
    centroids.append((0.9, 1.0, 0.0))  # a door face stays a door
    parts.append(PART_ID["door"])
    parts = np.array(parts)
    kept = keep_wheel_discs(parts, np.array(centroids), keypoints)
    expected = np.tile([PART_ID["tire"], PART_ID["tire"], PART_ID["car_body"]], 4)
    assert kept[:-1].tolist() == expected.tolist() and kept[-1] == PART_ID["door"]
    # a corner with no wheel face inside its disc keeps its patch (export needs four wheels)
    far = np.array(centroids)
    far[:3, 2] += 2.0
    assert keep_wheel_discs(parts, far, keypoints)[:3].tolist() == [PART_ID["tire"]] * 3


def test_keypoints_start_at_the_shipped_keypoint_template():
    from assetgan.pipeline.multiview.template import load_shipped_template

    config = ReconstructNetConfig()
    shipped = load_shipped_template().points * config.template_shape.length
    with torch.no_grad():
        start = ReconstructNet(config)(torch.rand(1, 3, 64, 64)).keypoints[0].numpy()
        uniform = dataclasses.replace(config, keypoint_init_sigma=0.0)
        flat = ReconstructNet(uniform)(torch.rand(1, 3, 64, 64)).keypoints[0].numpy()
    # the template mesh's surface lies within 0.3 m of every template keypoint
    assert np.linalg.norm(start - shipped, axis=1).max() < 0.3
    assert np.linalg.norm(flat - shipped, axis=1).max() > 1.0  # a uniform start: the centroid


def test_export_model_writes_float16_and_measures_the_change(split_dir, tiny_model, tmp_path):
    from assetgan.inverse_graphics.reconstruct.ship import ReconstructExportConfig
    from assetgan.inverse_graphics.reconstruct.ship import run as export_model

    out = tmp_path / "ship" / "model.safetensors"
    result = export_model(ReconstructExportConfig(tiny_model, out, images=split_dir))
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert result.bytes < 0.6 * tiny_model.stat().st_size  # float16 weights
    assert 0 < result.max_vertex_difference_m < 1e-2 and result.part_agreement > 0.95
    model, info = load_reconstructor(out)
    assert info["fp16"] is True and info["exported_from"] == str(tiny_model)
    assert next(model.parameters()).dtype == torch.float32
    args = ["reconstruct", "export-model", str(tmp_path / "none"), "--out", str(out)]
    bad = runner.invoke(cli_app(), args)
    assert bad.exit_code == 1 and "no reconstruction network" in bad.output


def test_wheel_discs_ignore_keypoints_on_the_symmetry_plane():
    from assetgan.assets.taxonomy import KEYPOINT_ID, PART_ID
    from assetgan.inverse_graphics.reconstruct.asset_files import keep_wheel_discs

    keypoints = np.zeros((12, 3))
    for name, z in (("left_front_wheel", 1.4), ("right_front_wheel", 1.4)):
        keypoints[KEYPOINT_ID[name]] = (0.0, 0.35, z)  # collapsed onto x = 0
    for name, z in (("left_back_wheel", -1.3), ("right_back_wheel", -1.3)):
        keypoints[KEYPOINT_ID[name]] = (0.0, 0.35, z)
    parts = np.full(4, PART_ID["tire"])
    centroids = np.array(
        [(0.9, 0.35, 2.3), (-0.9, 0.35, 2.3), (0.9, 0.35, -2.2), (-0.9, 0.3, -2.2)]
    )
    assert keep_wheel_discs(parts, centroids, keypoints).tolist() == parts.tolist()
