"""docs/cli.md is generated from the typer app (tools/cli_reference.py) and must be current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "tools/cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current_and_lists_every_command():
    tool = _tool()
    text = tool.cli_reference()
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == text, "docs/cli.md is stale: run `python tools/cli_reference.py`"
    for command in ("assetgan world render", "assetgan reconstruct image", "assetgan gan train"):
        assert f"## `{command}`" in text
    assert "| `--camera` | head\\|pnp | pnp |" in text
    assert tool.main(["--check"]) == 0
