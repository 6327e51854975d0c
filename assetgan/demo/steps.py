"""The demo's steps, one function each; every step calls stages' `run` from Python and fills
OUT/steps/<step>/ (core.steps.StepRunner: built in a temp folder, renamed when done,
step.json with its settings, summary and wall seconds). A finished step is skipped on re-run
when its settings are the same; a step whose settings changed is deleted and recomputed. Every
step's settings hold a digest of the settings of the steps it reads, so a change flows down.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from assetgan.assets.taxonomy import IGNORE_ID, colorize
from assetgan.core.images import atomic_write_png, contact_sheet
from assetgan.core.io_utils import read_json_object
from assetgan.core.progress import Progress, ProgressEvent, emit
from assetgan.core.steps import StepRunner

SHEET_IMAGES = 16  # images on each contact sheet of the report

Body = Callable[[Path, Progress | None], dict[str, Any]]  # (folder, progress) -> summary


def settings_digest(settings: dict[str, Any]) -> str:
    """A short hash of a step's settings (JSON, keys sorted)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass
class DemoSteps:
    """The step runner of one demo call, and the messages of steps that could not run."""

    root: Path  # OUT/steps
    progress: Progress | None = None
    total: int | None = None  # steps in this run (the progress count)
    missing: list[str] = dataclasses.field(default_factory=list)  # why a step did not run

    def __post_init__(self) -> None:
        self.runner = StepRunner(self.root, self.progress, self.total)

    def digest(self, name: str) -> str:
        """Digest of finished step `name`'s settings (the key of the steps that read it)."""
        return settings_digest(self.runner.records[name]["settings"])

    def summary(self, name: str) -> dict[str, Any]:
        return self.runner.records[name]["summary"]

    def run(self, name: str, settings: dict[str, Any], body: Body) -> Path:
        """The finished folder of step `name` (computed unless done with the same settings)."""
        final = self.runner.path(name)
        wanted = json.loads(json.dumps(settings, default=str))
        if (final / "step.json").is_file():
            if read_json_object(final / "step.json").get("settings") != wanted:
                shutil.rmtree(final)  # made with other settings: recompute
        step_progress = self._within(name)
        folder = self.runner.run(name, settings, lambda temp: body(temp, step_progress))
        if name in self.runner.skipped:
            seconds = self.runner.records[name]["seconds"]
            emit(
                self.progress,
                len(self.runner.ran) + len(self.runner.skipped),
                self.total,
                task=name,
                message=f"{name}: done before ({seconds} s then), skipped",
            )
        return folder

    def _within(self, name: str) -> Progress | None:
        """The progress callback handed to the stages of step `name` (task prefixed)."""
        if self.progress is None:
            return None
        outer = self.progress

        def forward(event: ProgressEvent) -> None:
            task = f"{name}: {event.task}" if event.task else name
            outer(dataclasses.replace(event, task=task, message=""))

        return forward


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def write_pair_sheet(path: Path, pairs: list[tuple[Path, Path]], columns: int = 8) -> None:
    """A sheet of (image PNG, car_20 id PNG) pairs: a row of images, then a row of their parts."""
    images, parts = [], []
    for image_path, parts_path in pairs:
        images.append(np.asarray(Image.open(image_path).convert("RGB")))
        parts.append(read_png(parts_path))
    rows: list[np.ndarray] = []
    for start in range(0, len(images), columns):
        chunk = slice(start, start + columns)
        pad = [np.full_like(images[0], 255)] * (columns - len(images[chunk]))
        rows += images[chunk] + pad
        coloured = [colorize(np.where(p == IGNORE_ID, 0, p)) for p in parts[chunk]]
        rows += coloured + pad
    atomic_write_png(path, contact_sheet(rows, columns))
