"""The view-code measurement (pipeline/multiview/viewcode.py) on a generator whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from assetgan.assets.taxonomy import PART_ID
from assetgan.core.errors import AssetganError
from assetgan.pipeline.multiview.viewcode import (
    ViewCodeConfig,
    mean_colour,
    measure_view_code,
    part_miou,
    run,
    visible_jaccard,
)
from assetgan.pipeline.stylegan.checkpoint import save_generator
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.networks import Generator

SIZE = 16
BODY = PART_ID["car_body"]


class _Mapping(torch.nn.Module):
    def __init__(self, num_ws: int, w_dim: int) -> None:
        super().__init__()
        self.num_ws = num_ws
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, update_w_avg: bool = True) -> torch.Tensor:
        return z.unsqueeze(1).repeat(1, self.num_ws, 1)


class _Synthesis(torch.nn.Module):
    """ws[0] places the car (left or right half), the mean of ws[LAYOUT_WS:] paints it."""

    def __init__(self, layout_ws: int) -> None:
        super().__init__()
        self.layout_ws = layout_ws

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        images = torch.zeros(ws.shape[0], 3, SIZE, SIZE)  # grey background (0 in [-1, 1])
        paint = torch.tanh(ws[:, self.layout_ws :, :3].mean(dim=1))  # [B, 3]
        for i in range(ws.shape[0]):
            cols = slice(0, SIZE // 2) if ws[i, 0, 0] > 0 else slice(SIZE // 2, SIZE)
            images[i, :, 4:12, cols] = paint[i].reshape(3, 1, 1) * 0.4 + 0.55
        return images


class _ToyGenerator(torch.nn.Module):
    def __init__(self, num_ws: int = 6, layout_ws: int = 2, w_dim: int = 8) -> None:
        super().__init__()
        self.z_dim = w_dim
        self.num_ws = num_ws
        self.mapping = _Mapping(num_ws, w_dim)
        self.synthesis = _Synthesis(layout_ws)


def _toy_predictor(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Anything brighter than the grey background is car body; no keypoints."""
    parts = np.where(images.astype(int).sum(axis=3) > 3 * 138, BODY, 0).astype(np.uint8)
    return parts, np.zeros((len(images), 12, 3))


def toy_predictor_factory(checkpoint: Path, device: str):
    """A predictor factory (`--predictor test_viewcode:toy_predictor_factory`): the toy labels."""
    return _toy_predictor


TOY_SPEC = "test_viewcode:toy_predictor_factory"


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> tuple[Path, Path]:
    """A random 8x8 Generator checkpoint and a stand-in segmenter file."""
    root = tmp_path_factory.mktemp("viewcode")
    torch.manual_seed(0)
    config = GeneratorConfig(resolution=8, z_dim=8, w_dim=8, channel_base=32, channel_max=8)
    ckpt = save_generator(Generator(config), root / "G.safetensors")
    segmenter = root / "S.safetensors"
    segmenter.write_bytes(b"read by the toy factory only")
    return ckpt, segmenter


def test_helpers_by_hand() -> None:
    a = np.array([[0, 0], [3, 3]])
    b = np.array([[0, 3], [3, 3]])
    # class 0: 1/2, class 3: 2/3
    assert part_miou(a, b, 21) == pytest.approx((0.5 + 2 / 3) / 2)
    ka = np.zeros((12, 3))
    kb = np.zeros((12, 3))
    ka[[0, 1, 2], 2] = 2
    kb[[1, 2, 3], 2] = 1
    assert visible_jaccard(ka, kb) == pytest.approx(2 / 4)
    assert visible_jaccard(np.zeros((12, 3)), np.zeros((12, 3))) == 1.0
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = 255
    assert np.allclose(mean_colour(image, np.array([[True, True], [False, False]])), 0.5)
    assert mean_colour(image, np.zeros((2, 2), bool)) is None


def test_layout_split_is_found() -> None:
    generator = _ToyGenerator(num_ws=6, layout_ws=2)
    report = measure_view_code(generator, _toy_predictor, list(range(40)), list(range(40, 80)))
    assert [s.k for s in report.splits] == [1, 2, 3, 4, 5]
    by_k = {s.k: s for s in report.splits}
    # The layout lives in ws[0]: every K >= 1 takes it from A.
    assert by_k[1].layout_vs_view == pytest.approx(1.0)
    assert by_k[1].view_held > 0.3  # ties (A and B on the same side) do not count as held
    # The paint is the mean of ws[2:]: K <= 2 keeps B's paint exactly, K = 5 mostly A's.
    assert by_k[2].paint_vs_content == pytest.approx(0.0, abs=1e-6)
    assert by_k[5].paint_vs_content > by_k[2].paint_vs_content + 0.05
    assert by_k[5].paint_held < by_k[2].paint_held
    assert report.best_k in (1, 2)
    assert json.loads(json.dumps(report.to_dict()))["best_k"] == report.best_k
    assert report.table()[-1].startswith(f"best K = {report.best_k} ")


def test_run_writes_report_and_mixing_grid(tmp_path, tiny_files) -> None:
    ckpt, segmenter = tiny_files
    events = []
    config = ViewCodeConfig(ckpt, segmenter, tmp_path / "vc", pairs=3, predictor=TOY_SPEC)
    result = run(config, events.append)
    num_ws = result.report.num_ws
    assert [(e.done, e.total, e.task) for e in events] == [
        (k, num_ws - 1, "split points") for k in range(1, num_ws)
    ]
    assert result.report.pairs == 3 and len(result.report.splits) == num_ws - 1
    assert json.loads(result.report_path.read_text()) == json.loads(
        json.dumps(result.report.to_dict())
    )
    assert result.mix_grid == tmp_path / "vc" / f"mix_K{result.report.best_k}.png"
    # A row of the 3 view sources over 3 content rows, each behind its source (first column).
    assert Image.open(result.mix_grid).size == (4 * 8, 4 * 8)
    again = run(config)  # deterministic per seed
    assert again.report == result.report
    with pytest.raises(AssetganError, match="--pairs must be at least 1"):
        run(ViewCodeConfig(ckpt, segmenter, tmp_path / "x", pairs=0, predictor=TOY_SPEC))


def test_bad_input() -> None:
    generator = _ToyGenerator()
    with pytest.raises(AssetganError, match="equal length"):
        measure_view_code(generator, _toy_predictor, [0, 1], [2])

    def broken(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(images.shape[:2], np.uint8), np.zeros((len(images), 12, 3))

    with pytest.raises(AssetganError, match="segmenter returned"):
        measure_view_code(generator, broken, [0], [1])


def test_cli_viewcode_and_bad_input(tmp_path, tiny_files) -> None:
    from assetgan.cli import app

    ckpt, segmenter = tiny_files
    args = ["gan", "viewcode", "--ckpt", str(ckpt), "--pairs", "2", "--threads", "1"]
    result = CliRunner().invoke(
        app, [*args, "--segmenter", str(segmenter), "--predictor", TOY_SPEC, "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "viewcode.json").read_text())
    assert f"best K = {report['best_k']} " in result.output and report["pairs"] == 2
    result = CliRunner().invoke(app, [*args, "--segmenter", str(tmp_path / "no.st")])
    assert result.exit_code == 1
    assert "no such segmenter checkpoint" in result.output
    result = CliRunner().invoke(app, [*args, "--segmenter", str(segmenter), "--predictor", "x"])
    assert result.exit_code == 1 and "must look like package.module:function" in result.output
