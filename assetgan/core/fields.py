"""Reading a config dataclass back from its JSON form: the one unknown-field check."""

from __future__ import annotations

import dataclasses
from typing import Any

from assetgan.core.errors import AssetganError


def known_fields(cls: type, obj: dict[str, Any], what: str) -> dict[str, Any]:
    """A copy of `obj` after checking that every key is a field of dataclass `cls`;
    AssetganError naming `what` and the unknown keys otherwise."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(obj) - names)
    if unknown:
        raise AssetganError(f"{what} has unknown fields {unknown}")
    return dict(obj)
