"""Resumable, atomic steps: each step builds OUT/steps/.<name>.tmp/ and renames it to
OUT/steps/<name>/ when done, with step.json (its settings, summary and wall seconds) inside.
A finished step is skipped on re-run when its settings are the same; a step whose settings
changed (e.g. the generator's SHA-256, which every generator-dependent step records) is
computed again and replaces the old folder only once the new one is complete. A killed step
leaves only its temp folder, which the next run deletes and rebuilds."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetgan.core.io_utils import atomic_write_json, read_json_object
from assetgan.core.progress import Progress, emit

StepBody = Callable[[Path], dict[str, Any]]  # (folder to fill) -> summary (JSON-able figures)


@dataclass
class StepRunner:
    """Runs steps under `root` (OUT/steps) and remembers which ran and which were reused."""

    root: Path  # OUT/steps
    progress: Progress | None = None  # one event per step (task = the step's name)
    total: int | None = None  # steps expected in this run, for the progress count
    ran: list[str] = field(default_factory=list)  # steps computed by this run
    skipped: list[str] = field(default_factory=list)  # steps found finished
    replaced: list[str] = field(default_factory=list)  # steps recomputed: their settings changed
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> step.json

    def path(self, name: str) -> Path:
        return self.root / name

    def run(self, name: str, settings: dict[str, Any], body: StepBody) -> Path:
        """The finished folder of step `name`, computing it with `body` unless it exists."""
        final = self.path(name)
        settings = json.loads(json.dumps(settings, default=str))  # paths/enums as strings
        done = len(self.ran) + len(self.skipped)
        if (final / "step.json").is_file():
            record = read_json_object(final / "step.json")
            if record.get("settings") == settings:
                if name not in self.ran and name not in self.skipped:
                    self.skipped.append(name)
                self.records[name] = record
                emit(self.progress, done + 1, self.total, task=f"{name} (done before)")
                return final
            self.replaced.append(name)
        emit(self.progress, done, self.total, task=name)
        temp = self.root / f".{name}.tmp"
        if temp.exists():
            shutil.rmtree(temp)  # a killed run's partial step
        temp.mkdir(parents=True)
        started = time.perf_counter()
        summary = body(temp)
        record = {
            "name": name,
            "settings": settings,
            "summary": json.loads(json.dumps(summary, default=str)),
            "seconds": round(time.perf_counter() - started, 2),
        }
        atomic_write_json(temp / "step.json", record)
        if final.exists():
            shutil.rmtree(final)  # a folder without step.json: an interrupted rename
        os.replace(temp, final)
        self.ran.append(name)
        self.records[name] = record
        emit(
            self.progress, done + 1, self.total, task=name, message=f"{name}: {record['seconds']} s"
        )
        return final
