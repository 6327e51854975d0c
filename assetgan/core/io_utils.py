"""Atomic file writes (a crash or kill never leaves a half-written output behind) and the JSON
reader whose errors name the file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assetgan.core.errors import AssetganError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` on a temp file in the target directory, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(payload))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json_object(path: str | Path) -> dict[str, Any]:
    """Parse a JSON file holding an object; AssetganError naming the file if it cannot be read."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AssetganError(f"{path}: not readable JSON ({error})") from None
    if not isinstance(document, dict):
        raise AssetganError(f"{path}: expected a JSON object, got {type(document).__name__}")
    return document


def check_same_header(
    path: Path,
    existing: dict[str, Any],  # the header file's object as read
    header: dict[str, Any],  # what this run would write
    what: str,  # e.g. "a dataset made with different settings"
    hint: str,  # what to do, e.g. "use a new --out"
) -> None:
    """Refuse to reuse a directory whose header file `path` differs from `header`:
    AssetganError naming the file, the keys that differ and what to do."""
    if existing == header:
        return
    changed = sorted(k for k in set(existing) | set(header) if existing.get(k) != header.get(k))
    raise AssetganError(f"{path}: this directory holds {what} ({', '.join(changed)}); {hint}")
