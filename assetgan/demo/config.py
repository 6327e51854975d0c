"""The demo's contract: `DemoSizes` (how big every step is), `DemoConfig` (inputs, output, sizes,
seed, device) and `DemoResult` (what was written). `EXPECTED` holds the range every figure of
the report must fall in (the CI check of `--quick`). No torch here.

`DemoSizes()` is the full demo (docs/demo.md gives its measured per-step times); `QUICK_SIZES`
runs the same steps on tiny inputs in under a minute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assetgan.core.device import Device
from assetgan.core.errors import AssetganError
from assetgan.core.fields import known_fields

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED_GENERATOR = ASSETS / "carworld64" / "G.safetensors"
SHIPPED_SEGMENTER = ASSETS / "segmenter64" / "segmenter.safetensors"
SHIPPED_RECONSTRUCTOR = ASSETS / "reconstruct64" / "model.safetensors"


@dataclass(frozen=True)
class DemoSizes:
    """Sizes of every step (the defaults are the full demo)."""

    world_images: int = 48  # CarWorld test renders (64 px, split "demo", with meshes)
    samples: int = 32  # generator samples on the sample sheet
    annotations: int = 16  # simulated annotations (generator seeds 0 .. n-1)
    interpreter_members: int = 10  # ensemble members per interpreter head (DatasetGAN: 10)
    interpreter_iterations: int | None = 1500  # cap on iterations per head; None = DatasetGAN's
    pairs: int = 300  # generated labeled pairs (10 % most uncertain left out of training)
    gallery: int | None = None  # pairs shown in the dataset gallery; None = all
    segment_epochs: float = 12.0  # passes of the fresh segmenter over the kept pairs
    segment_batch: int = 16  # images per segmenter step
    views: int = 8  # multi-view set: view codes
    contents: int = 8  # multi-view set: content codes
    reconstructions: int = 8  # test cars of the world split reconstructed and exported
    ground_truth_exports: int = 2  # ground-truth CarWorld cars (meshes/ID.glb) exported

    def validate(self) -> DemoSizes:
        counts = {
            "world_images": self.world_images,
            "samples": self.samples,
            "annotations": self.annotations,
            "interpreter_members": self.interpreter_members,
            "pairs": self.pairs,
            "segment_batch": self.segment_batch,
        }
        for name, value in counts.items():
            if value < 1:
                raise AssetganError(f"demo sizes: {name} must be >= 1, got {value}")
        if self.interpreter_iterations is not None and self.interpreter_iterations < 1:
            raise AssetganError("demo sizes: interpreter_iterations must be >= 1 (or None)")
        if self.gallery is not None and self.gallery < 1:
            raise AssetganError("demo sizes: gallery must be >= 1 (or None for all)")
        if self.segment_epochs <= 0:
            raise AssetganError(
                f"demo sizes: segment_epochs must be > 0, got {self.segment_epochs}"
            )
        if self.views < 2 or self.contents < 2:
            raise AssetganError("demo sizes: a multi-view set needs >= 2 views and >= 2 contents")
        for name in ("reconstructions", "ground_truth_exports"):
            if not 0 <= getattr(self, name) <= self.world_images:
                raise AssetganError(
                    f"demo sizes: {name} must be in 0..world_images ({self.world_images})"
                )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> DemoSizes:
        return cls(**known_fields(cls, obj, "demo sizes")).validate()


QUICK_SIZES = DemoSizes(
    world_images=8,
    samples=8,
    annotations=4,
    interpreter_members=2,
    interpreter_iterations=60,
    pairs=32,
    gallery=12,
    segment_epochs=12.0,
    segment_batch=8,
    views=2,
    contents=2,
    reconstructions=2,
    ground_truth_exports=1,
)


@dataclass(frozen=True)
class DemoConfig:
    """One `assetgan demo` run: every input path, the report directory, the sizes and the seed."""

    out: Path  # report directory: index.html, *.png, report.json, steps/<step>/
    generator: Path = SHIPPED_GENERATOR  # the StyleGAN every 2D step samples from
    segmenter: Path = SHIPPED_SEGMENTER  # draws the simulated annotations; PnP keypoints;
    # also scored on the world split as the real-data reference row
    reconstructor: Path = SHIPPED_RECONSTRUCTOR  # reconstruction network (reconstruct image)
    sizes: DemoSizes = field(default_factory=DemoSizes)  # step sizes (quick: QUICK_SIZES)
    seed: int = 0  # seeds the split, samples, annotations, interpreter and segmenter
    device: Device = Device.auto  # where every network runs

    @property
    def quick(self) -> bool:
        return self.sizes == QUICK_SIZES

    def validate(self) -> DemoConfig:
        self.sizes.validate()
        for name in ("generator", "segmenter"):
            if not Path(getattr(self, name)).is_file():
                raise AssetganError(f"--{name} {getattr(self, name)}: no such checkpoint file")
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise AssetganError(f"--out {out}: exists and is not a directory; give a directory")
        if self.seed < 0:
            raise AssetganError(f"--seed must be >= 0, got {self.seed}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The JSON form in report.json (paths as strings)."""
        return {
            "out": str(self.out),
            "generator": str(self.generator),
            "segmenter": str(self.segmenter),
            "reconstructor": str(self.reconstructor),
            "sizes": self.sizes.to_dict(),
            "seed": self.seed,
            "device": self.device.value,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> DemoConfig:
        values = dict(obj)
        for name in ("out", "generator", "segmenter", "reconstructor"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        values["sizes"] = DemoSizes.from_dict(values.get("sizes", {}))
        values["device"] = Device(values.get("device", "auto"))
        return cls(**values)


@dataclass(frozen=True)
class DemoResult:
    """What `assetgan demo` wrote."""

    out: Path  # the report directory
    index: Path  # index.html: galleries, metrics table, plots, viewers, step times
    report_json: Path  # report.json: config, every figure, step times
    plots: tuple[Path, ...]  # the PNG plots beside index.html
    viewers: tuple[Path, ...]  # three.js viewer pages: exported cars, then refused ones unrigged
    figures: dict[str, float | None]  # every measured figure by name (None = not measured)
    out_of_range: tuple[str, ...]  # figures outside their EXPECTED range (should be empty)
    steps_run: tuple[str, ...]  # steps computed by this call
    steps_skipped: tuple[str, ...]  # steps found finished and reused
    missing: tuple[str, ...]  # why steps could not run (e.g. no reconstruction network)
    seconds: float  # wall time of this call

    def summary(self) -> str:
        lines = [
            f"{self.index}  ({len(self.steps_run)} steps run, {len(self.steps_skipped)} reused, "
            f"{self.seconds:.0f} s)"
        ]
        lines += [f"missing: {reason}" for reason in self.missing]
        if self.out_of_range:
            lines.append(f"outside the expected range: {', '.join(self.out_of_range)}")
        return "\n".join(lines)
