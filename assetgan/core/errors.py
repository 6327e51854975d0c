"""The one user-facing error type. The CLI renders it as a single line and exits non-zero."""

from __future__ import annotations


class AssetganError(Exception):
    """A problem the user can fix: say what was wrong, where (file, field, index) and what to do."""
