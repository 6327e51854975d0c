"""`assetgan render` via CliRunner: a real sheet, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from assetgan.cli import app
from assetgan.render.mesh import icosphere, save_mesh

runner = CliRunner()


def test_render_turntable(tmp_path):
    mesh_path = save_mesh(icosphere(2), tmp_path / "ball.obj")
    out = tmp_path / "sheet.png"
    result = runner.invoke(
        app, ["render", str(mesh_path), "--out", str(out), "--views", "4", "--size", "32"]
    )
    assert result.exit_code == 0, result.output
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (2 + 32 + 2, 2 + 4 * 34, 3)
    assert (sheet < 200).any()  # the sphere is drawn, not a blank page


def test_render_bad_inputs(tmp_path):
    result = runner.invoke(
        app, ["render", str(tmp_path / "none.obj"), "--out", str(tmp_path / "x.png")]
    )
    assert result.exit_code == 1
    assert "no such mesh file" in result.output
    (tmp_path / "empty.obj").write_text("")
    result = runner.invoke(
        app, ["render", str(tmp_path / "empty.obj"), "--out", str(tmp_path / "x.png")]
    )
    assert result.exit_code == 1
    assert "no triangles" in result.output
    assert not (tmp_path / "x.png").exists()
