"""The steps of the paper report, one function per kind of step; each returns the finished step
folder (core.steps.StepRunner: atomic, skipped when done). report.run calls them in order."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from assetgan.core.hashing import file_sha256
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.steps import StepRunner
from assetgan.pipeline.annotate import invert, select, simulate
from assetgan.pipeline.carworld import generate as world_generate
from assetgan.pipeline.carworld.params import Shift
from assetgan.pipeline.carworld.split import WorldConfig
from assetgan.pipeline.datasets import generate as dataset_generate
from assetgan.pipeline.datasets.layout import DatasetConfig, GeneratedDataset
from assetgan.pipeline.downstream.checkpoint import save_segmenter
from assetgan.pipeline.downstream.config import SegmenterConfig
from assetgan.pipeline.downstream.data import LabeledArrays, load_labeled
from assetgan.pipeline.downstream.train import SegmentTrainConfig
from assetgan.pipeline.interpreter import evaluate as interpreter_evaluate
from assetgan.pipeline.interpreter import train as interpreter_train
from assetgan.pipeline.interpreter.config import InterpreterTrainConfig, InterpreterTrainSettings
from assetgan.pipeline.paper.config import PaperReportConfig
from assetgan.pipeline.paper.protocol import (
    choose_and_report,
    fold_scores,
    snapshot_steps,
    train_with_snapshots,
)

IMAGE_SIZE = 64  # the shipped generator's and segmenter's resolution
DATASET_SEED_START = 100_000  # generated pairs never reuse an annotated seed


@dataclasses.dataclass
class Experiments:
    """The run's config, step runner and the test arrays (read once)."""

    config: PaperReportConfig
    steps: StepRunner
    tests: dict[str, LabeledArrays] = dataclasses.field(default_factory=dict)
    generator_sha256: str = ""  # of config.generator: every generator-dependent step records it

    def __post_init__(self) -> None:
        self.generator_sha256 = file_sha256(self.config.generator)

    def _generated(self, settings: dict[str, Any]) -> dict[str, Any]:
        """`settings` of a step that depends on the generator: a new generator recomputes it."""
        return {**settings, "generator_sha256": self.generator_sha256}

    # ---- CarWorld splits -----------------------------------------------------------------------

    def split(self, name: str, given: Path | None, world: WorldConfig) -> Path:
        """`given`, or the split `world` rendered into steps/<name>."""
        if given is not None:
            return Path(given)

        def body(folder: Path) -> dict[str, Any]:
            split = world_generate.run(world_generate.WorldRenderConfig(world, folder / "split"))
            return {"images": len(split.records)}

        return self.steps.run(name, {"world": dataclasses.asdict(world)}, body) / "split"

    def splits(self) -> tuple[Path, Path, Path]:
        """(train, test, shifted test) split folders."""
        sizes, seed = self.config.sizes, self.config.seed
        train_n = max(sizes.full_images, sizes.few_images)
        train = self.split(
            "world_train", self.config.train, WorldConfig("train", train_n, IMAGE_SIZE, seed)
        )
        test = self.split(
            "world_test", self.config.test, WorldConfig("test", sizes.test_images, IMAGE_SIZE, seed)
        )
        shifted = self.split(
            "world_test_shifted",
            self.config.test_shifted,
            WorldConfig("test", sizes.test_images, IMAGE_SIZE, seed, Shift.all),
        )
        for key, path in (("in_domain", test), ("shifted", shifted)):
            self.tests[key] = load_labeled(path, limit=sizes.test_images)
        return train, test, shifted

    # ---- annotations, interpreters, generated datasets ----------------------------------------

    def simulated(self, name: str, seeds: tuple[int, ...]) -> Path:
        """Simulated LabelMe annotations of generator `seeds` (the CarWorld segmenter draws)."""
        settings = {"seeds": list(seeds), "annotator_sha256": file_sha256(self.config.segmenter)}

        def body(folder: Path) -> dict[str, Any]:
            result = simulate.run(
                simulate.SimulateConfig(
                    generator=self.config.generator,
                    segmenter=self.config.segmenter,
                    out=folder / "annotations",
                    seeds=seeds,
                    device=self.config.device,
                )
            )
            return {"samples": len(result.names), "mean_iou": result.mean_iou}

        return self.steps.run(name, self._generated(settings), body) / "annotations"

    def inverted(self, name: str, images: Path, count: int) -> Path:
        """HandsOff: the first `count` images of split `images` inverted into the generator."""
        settings = invert.InversionSettings(steps=self.config.sizes.invert_steps)
        record = {"images": images, "n": count, "settings": dataclasses.asdict(settings)}

        def body(folder: Path) -> dict[str, Any]:
            result = invert.run(
                invert.InvertConfig(
                    generator=self.config.generator,
                    images=images,
                    out=folder / "annotations",
                    n=count,
                    settings=settings,
                    device=self.config.device,
                )
            )
            return {"mean_mse": float(np.mean(result.mse)), "images": len(result.names)}

        return self.steps.run(name, self._generated(record), body) / "annotations"

    def interpreter(self, name: str, annotations: Path) -> Path:
        sizes = self.config.sizes
        training = InterpreterTrainSettings(
            members=sizes.interpreter_members,
            max_iterations=sizes.interpreter_iterations,
            seed=self.config.seed,
        )

        def body(folder: Path) -> dict[str, Any]:
            result = interpreter_train.run(
                InterpreterTrainConfig(
                    annotations=annotations,
                    generator=self.config.generator,
                    out=folder / "I.safetensors",
                    training=training,
                    device=self.config.device,
                )
            )
            return {"images": result.images, "iterations": dict(result.iterations)}

        record = {"annotations": annotations, "training": training.to_dict()}
        return self.steps.run(name, self._generated(record), body) / "I.safetensors"

    def dataset(self, name: str, interpreter: Path, count: int) -> Path:
        """`count` generated pairs, none dropped (the filtering happens when a row reads them)."""
        settings = DatasetConfig(n=count, seed_start=DATASET_SEED_START + self.config.seed, drop=0)

        def body(folder: Path) -> dict[str, Any]:
            result = dataset_generate.run(
                dataset_generate.DatasetGenerateConfig(
                    generator=self.config.generator,
                    interpreter=interpreter,
                    out=folder / "dataset",
                    dataset=settings,
                    device=self.config.device,
                )
            )
            return {"samples": result.config.n}

        record = {"interpreter": interpreter, "dataset": settings.to_dict()}
        return self.steps.run(name, self._generated(record), body) / "dataset"

    def selection(
        self, name: str, method: str, count: int, interpreter: Path | None
    ) -> tuple[int, ...]:
        """Seeds chosen by `annotate select` (random, or uncertainty = JS + coreset)."""
        sizes = self.config.sizes
        settings = {"method": method, "k": count, "candidates": sizes.candidates}
        settings["interpreter"] = interpreter

        def body(folder: Path) -> dict[str, Any]:
            result = select.run(
                select.SelectConfig(
                    generator=self.config.generator,
                    out=folder / "export",
                    method=select.SelectMethod(method),
                    candidates=sizes.candidates,
                    k=count,
                    seed=self.config.seed,
                    interpreter=interpreter,
                    device=self.config.device,
                )
            )
            return {"seeds": list(result.selection.seeds)}

        self.steps.run(name, self._generated(settings), body)
        return tuple(self.steps.records[name]["summary"]["seeds"])

    # ---- segmenters ---------------------------------------------------------------------------

    def recipe(self, images: int) -> SegmentTrainConfig:
        """The one segmenter recipe of every row: same network, steps, batch, loss, x-flip."""
        sizes = self.config.sizes
        steps_per_epoch = max(1, images // sizes.segment_batch)
        return SegmentTrainConfig(
            data=Path("-"),
            out=Path("-"),
            device=self.config.device,
            model=SegmenterConfig(),
            epochs=sizes.segment_steps / steps_per_epoch,
            batch=sizes.segment_batch,
            class_weight_power=0.5,
            flip=0.5,
            seed=self.config.seed,
        )

    def segmenter(self, name: str, source: dict[str, Any], read: Any) -> dict[str, Any]:
        """Train the recipe on `read()` (LabeledArrays), score every snapshot on every test fold
        of both test splits; step summary = the protocol's figures per split."""
        sizes = self.config.sizes

        def body(folder: Path) -> dict[str, Any]:
            data = read()
            recipe = self.recipe(len(data))
            snapshots = snapshot_steps(sizes.segment_steps, sizes.snapshots)
            scores: dict[str, dict[str, list]] = {key: {} for key in self.tests}

            def on_snapshot(step: int, model: Any) -> None:
                save_segmenter(model, folder / f"segmenter_step{step}.safetensors")
                for key, test in self.tests.items():
                    scores[key][str(step)] = fold_scores(model, test, sizes.folds)

            train_with_snapshots(recipe, data, snapshots, on_snapshot)
            atomic_write_json(folder / "scores.json", scores)
            return {
                "images": len(data),
                "recipe": recipe.to_dict(),
                "protocol": {key: choose_and_report(value) for key, value in scores.items()},
            }

        fields = ("test_images", "folds", "segment_steps", "segment_batch", "snapshots")
        protocol = {k: getattr(sizes, k) for k in fields}  # what the training and scores depend on
        self.steps.run(
            name, {"source": source, "protocol": protocol, "seed": self.config.seed}, body
        )
        return {**self.steps.records[name]["summary"], "step": name}

    def real_row(self, name: str, train: Path, count: int) -> dict[str, Any]:
        return self.segmenter(
            name, {"split": train, "images": count}, lambda: load_labeled(train, limit=count)
        )

    def generated_row(self, name: str, dataset: Path, count: int, drop: float) -> dict[str, Any]:
        source = self._generated({"dataset": dataset, "pairs": count, "drop": drop})
        return self.segmenter(name, source, lambda: filtered_pairs(dataset, count, drop))

    # ---- evidence -----------------------------------------------------------------------------

    def interpreter_scores(self, name: str, interpreter: Path, held_out: Path) -> dict[str, Any]:
        """`interpreter eval` on inverted held-out renders (labels the factory would make)."""

        def body(folder: Path) -> dict[str, Any]:
            result = interpreter_evaluate.run(
                interpreter_evaluate.InterpreterEvalConfig(
                    interpreter=interpreter,
                    generator=self.config.generator,
                    annotations=held_out,
                    out=folder / "metrics.json",
                    device=self.config.device,
                )
            )
            metrics = result.metrics
            merged = metrics.get("merged", {})
            return {
                "images": metrics.get("images"),
                "miou_car_20": metrics.get("miou"),
                "miou_car_12": merged.get("car_12", {}).get("miou"),
                "miou_car_5": merged.get("car_5", {}).get("miou"),
                "pck": metrics.get("pck"),
            }

        settings = self._generated({"interpreter": interpreter, "held_out": held_out})
        self.steps.run(name, settings, body)
        return self.steps.records[name]["summary"]


def filtered_pairs(dataset: Path, count: int, drop: float) -> LabeledArrays:
    """The first `count` pairs of a generated dataset (seed order) without the `drop` share with
    the highest uncertainty score (ties by seed), as `dataset generate --drop` would keep them."""
    records = GeneratedDataset.load(dataset).records()[:count]
    dropped_count = int(np.floor(drop * len(records) + 0.5))
    ranked = sorted(records, key=lambda r: (-r["score"], r["seed"]))
    dropped = {r["id"] for r in ranked[:dropped_count]}
    arrays = load_labeled(dataset, limit=count)
    keep = np.array([name not in dropped for name in arrays.names])
    return dataclasses.replace(
        arrays,
        names=tuple(n for n, k in zip(arrays.names, keep, strict=True) if k),
        images=arrays.images[keep],
        part_ids=arrays.part_ids[keep],
        keypoints_xyv=arrays.keypoints_xyv[keep],
    )
