"""The paper report's contract: `PaperSizes` (how big every experiment is), `PaperReportConfig`
(inputs, output, sizes, seed, device) and `PaperReportResult` (what was written). No torch here.

`PaperSizes()` is the full protocol (docs/paper.md gives its measured per-step times and the
expected wall time); `QUICK_SIZES` runs the same steps on tiny inputs in a few minutes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.core.fields import known_fields

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SHIPPED_GENERATOR = ASSETS / "carworld64" / "G.safetensors"
SHIPPED_SEGMENTER = ASSETS / "segmenter64" / "segmenter.safetensors"


@dataclass(frozen=True)
class PaperSizes:
    """Sizes of every experiment (the defaults are the full protocol, issue 13)."""

    test_images: int = 500  # held-out CarWorld test renders, in-domain and `--shift all` each
    folds: int = 5  # test folds: fold 0 chooses the snapshot, the others give mean +- std
    few_images: int = 16  # real labeled images of the `few` row (and HandsOff's inversions)
    full_images: int = 2600  # real labeled images of the `full` row
    annotations: int = 16  # simulated annotations of ours-DatasetGAN
    pairs: int = 1500  # generated pairs the ours rows train on (before filtering)
    drop: float = 0.1  # share of the most uncertain generated pairs left out (the ours rows)
    dataset_sizes: tuple[int, ...] = (500, 1500, 5000)  # Table 3: generated pairs
    drop_ratios: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)  # Table 4: filtering ratios
    annotation_counts: tuple[int, ...] = (1, 7, 13, 19)  # Table 6: annotated samples
    annotation_pairs: int = 1500  # Table 6: generated pairs per annotation count
    candidates: int = 200  # Table 6: candidate seeds the selections choose from
    segment_steps: int = 1200  # optimiser steps of every segmenter (the same for every row)
    segment_batch: int = 16  # images per segmenter step (<= few_images)
    snapshots: int = 4  # evenly spaced segmenter snapshots the checkpoint is chosen among
    interpreter_members: int = 10  # ensemble members per interpreter head
    interpreter_iterations: int | None = None  # cap on interpreter iterations; None = paper's
    invert_steps: int = 300  # Adam steps of every inversion (HandsOff, held-out renders)
    label_eval_images: int = 48  # held-out test renders inverted to score the interpreters

    def validate(self) -> PaperSizes:
        counts = {
            "test_images": self.test_images,
            "few_images": self.few_images,
            "full_images": self.full_images,
            "annotations": self.annotations,
            "pairs": self.pairs,
            "annotation_pairs": self.annotation_pairs,
            "segment_steps": self.segment_steps,
            "snapshots": self.snapshots,
            "interpreter_members": self.interpreter_members,
            "invert_steps": self.invert_steps,
            "label_eval_images": self.label_eval_images,
        }
        for name, value in counts.items():
            if value < 1:
                raise AssetganError(f"paper sizes: {name} must be >= 1, got {value}")
        if self.folds < 2 or self.test_images < self.folds:
            raise AssetganError(
                f"paper sizes: need folds >= 2 and test_images >= folds, got folds {self.folds}, "
                f"test_images {self.test_images}"
            )
        if not 1 <= self.segment_batch <= min(self.few_images, self.full_images):
            raise AssetganError(
                f"paper sizes: segment_batch {self.segment_batch} must be in 1..few_images "
                f"({self.few_images}): every row trains with the same batch"
            )
        if self.snapshots > self.segment_steps:
            raise AssetganError("paper sizes: snapshots must be <= segment_steps")
        if not all(0 <= r < 1 for r in (self.drop, *self.drop_ratios)):
            raise AssetganError("paper sizes: filtering ratios must be in [0, 1)")
        if not self.dataset_sizes or min(self.dataset_sizes) < 1:
            raise AssetganError("paper sizes: dataset_sizes must be positive")
        if not self.annotation_counts or min(self.annotation_counts) < 1:
            raise AssetganError("paper sizes: annotation_counts must be positive")
        if max(self.annotation_counts) > self.candidates:
            raise AssetganError("paper sizes: candidates must be >= every annotation count")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PaperSizes:
        values = known_fields(cls, obj, "paper sizes")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values).validate()

    def updated(self, obj: dict[str, Any]) -> PaperSizes:
        """These sizes with the fields of `obj` (e.g. a --sizes JSON file) replaced."""
        return PaperSizes.from_dict({**self.to_dict(), **obj})


QUICK_SIZES = PaperSizes(
    test_images=15,
    few_images=4,
    full_images=12,
    annotations=2,
    pairs=8,
    drop=0.25,
    dataset_sizes=(4, 8),
    drop_ratios=(0.0, 0.25),
    annotation_counts=(1, 2),
    annotation_pairs=6,
    candidates=4,
    segment_steps=4,
    segment_batch=4,
    snapshots=2,
    interpreter_members=2,
    interpreter_iterations=20,
    invert_steps=5,
    label_eval_images=4,
)


@dataclass(frozen=True)
class PaperReportConfig:
    """One `report paper` run: every input path, the output directory, the sizes and the seed."""

    out: Path  # report directory: report.md, report.json, *.png, steps/<name>/
    generator: Path = SHIPPED_GENERATOR  # the generator every ours row samples from
    segmenter: Path = SHIPPED_SEGMENTER  # labels the simulated annotations (the "annotator")
    train: Path | None = None  # CarWorld train split (few / full / HandsOff); None = render it
    test: Path | None = None  # held-out CarWorld test split; None = render it
    test_shifted: Path | None = None  # its `--shift all` twin; None = render it
    sizes: PaperSizes = field(default_factory=PaperSizes)  # experiment sizes (quick: QUICK_SIZES)
    seed: int = 0  # seeds the renders, samples, selections, interpreters and segmenters
    device: Device = Device.auto  # where every network runs

    def validate(self) -> PaperReportConfig:
        self.sizes.validate()
        for name in ("generator", "segmenter"):
            if not Path(getattr(self, name)).is_file():
                raise AssetganError(f"--{name} {getattr(self, name)}: no such checkpoint file")
        for name in ("train", "test", "test_shifted"):
            path = getattr(self, name)
            if path is not None and not (Path(path) / "split.json").is_file():
                raise AssetganError(
                    f"--{name.replace('_', '-')} {path}: not a CarWorld split (no split.json); "
                    f"make one with `assetgan world render` or leave it out to render it here"
                )
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise AssetganError(f"--out {self.out}: exists and is not a directory")
        if self.seed < 0:
            raise AssetganError(f"--seed must be >= 0, got {self.seed}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form in report.json (paths as strings)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = None if value is None else str(value)
        out["sizes"] = self.sizes.to_dict()
        out["seed"] = self.seed
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PaperReportConfig:
        values = dict(obj)
        for name in ("out", "generator", "segmenter", "train", "test", "test_shifted"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        values["sizes"] = PaperSizes.from_dict(values.get("sizes", {}))
        values["device"] = Device(values.get("device", "auto"))
        return cls(**values)


@dataclass(frozen=True)
class PaperReportResult:
    """What `report paper` wrote."""

    out: Path  # the report directory
    report_md: Path  # report.md: the tables, the targets and what limits them
    report_json: Path  # report.json: configs, seeds, wall times, every figure
    plots: tuple[Path, ...]  # the PNG figures beside report.md
    steps_run: tuple[str, ...]  # steps computed by this call
    steps_skipped: tuple[str, ...]  # steps found finished and reused
    steps_replaced: tuple[str, ...]  # steps recomputed because their settings changed
    seconds: float  # wall time of this call
