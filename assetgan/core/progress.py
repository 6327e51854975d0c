"""The one progress protocol: library code reports `ProgressEvent`s to an optional callback.

Library code never prints or draws; it calls `progress(event)` (or `emit(progress, ...)`, which
does nothing when no callback was given). The CLI turns events into one rich progress bar
(`assetgan.commands.app.progress_bar`); tests and the demo collect them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    """One report from a long-running stage."""

    done: float  # units finished so far (images, kimg, iterations, ...)
    total: float | None  # units in all; None when open-ended
    task: str = ""  # what is being counted now, e.g. "images", "loading", "parts"
    message: str = ""  # a line worth keeping in a log (a training tick); "" for none
    metrics: Mapping[str, float] = field(default_factory=dict)  # latest figures (losses, ...)


Progress = Callable[[ProgressEvent], None]


def emit(
    progress: Progress | None,
    done: float,
    total: float | None,
    task: str = "",
    message: str = "",
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Report to `progress` if there is one."""
    if progress is not None:
        progress(ProgressEvent(done, total, task, message, dict(metrics or {})))


def counter(progress: Progress | None, task: str = "") -> Callable[[int, int], None]:
    """A `(done, total)` callable that reports to `progress` under `task` (for inner loops)."""
    return lambda done, total: emit(progress, done, total, task)
