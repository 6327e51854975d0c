"""The Khronos glTF validator (npm `gltf-validator`, run with node through validate.mjs): used by
the tests on every GLB they write and by docs/export.md. Needs `node` and `npm ci` at the
repository root; `validator_missing()` says what is absent."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from assetgan.core.errors import AssetganError

SCRIPT = Path(__file__).with_name("validate.mjs")
# Info codes muted by default, each with the reason (docs/export.md "Validation").
MUTED_INFOS: dict[str, str] = {}


def _repo_node_modules() -> Path:
    return Path(__file__).resolve().parents[3] / "node_modules" / "gltf-validator"


def validator_missing() -> str | None:
    """None when the validator can run, else why not (for skips and errors)."""
    if shutil.which("node") is None:
        return "node is not on PATH (install Node.js, then `npm ci` in the repository root)"
    if not _repo_node_modules().is_dir():
        return f"{_repo_node_modules()} is missing (run `npm ci` in the repository root)"
    return None


def validate_gltf(path: str | Path, ignored: tuple[str, ...] = ()) -> dict[str, Any]:
    """The validator's report (issues.numErrors, numWarnings, numInfos, messages[...]) for one
    .glb / .gltf file; AssetganError when the validator cannot run."""
    missing = validator_missing()
    if missing:
        raise AssetganError(f"cannot validate {path}: {missing}")
    codes = tuple(ignored) + tuple(MUTED_INFOS)
    done = subprocess.run(
        ["node", str(SCRIPT), str(path), *codes],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssetganError(f"gltf-validator failed on {path}: {done.stderr.strip()[:300]}")
    return json.loads(done.stdout)


def issue_counts(report: dict[str, Any]) -> dict[str, int]:
    """{errors, warnings, infos, hints} of a report."""
    issues = report["issues"]
    return {
        "errors": int(issues["numErrors"]),
        "warnings": int(issues["numWarnings"]),
        "infos": int(issues["numInfos"]),
        "hints": int(issues["numHints"]),
    }
