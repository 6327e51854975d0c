"""The demo's 2D steps (steps.DemoSteps runs each in OUT/steps/<step>/): a CarWorld split, the
generator's samples, simulated annotations -> interpreter -> a labeled dataset, a segmenter
trained on it and scored on the split, a multi-view set."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from assetgan.core.hashing import file_sha256
from assetgan.core.progress import Progress
from assetgan.demo.config import DemoConfig
from assetgan.demo.steps import SHEET_IMAGES, DemoSteps, write_pair_sheet
from assetgan.pipeline.paper.protocol import headline

IMAGE_SIZE = 64  # the shipped generator's, segmenter's and reconstructor's resolution
SPLIT = "demo"  # CarWorld split name: its images are seeded apart from train and test
DATASET_SEED_START = 100_000  # generated pairs never reuse an annotated seed
DROP = 0.1  # share of the most uncertain generated pairs left out (DatasetGAN: 10 %)


# ---- 1. CarWorld ---------------------------------------------------------------------------


def world(steps: DemoSteps, config: DemoConfig) -> Path:
    """A small CarWorld split with meshes (the test cars) and its contact sheet."""
    from assetgan.pipeline.carworld import generate as world_generate
    from assetgan.pipeline.carworld.split import WorldConfig

    world_config = WorldConfig(
        SPLIT, config.sizes.world_images, IMAGE_SIZE, config.seed, meshes=True
    )

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        split = world_generate.run(
            world_generate.WorldRenderConfig(world_config, folder / "split"), progress
        )
        first = split.records[:SHEET_IMAGES]
        pairs = [
            (folder / "split" / r["files"]["image"], folder / "split" / r["files"]["parts"])
            for r in first
        ]
        write_pair_sheet(folder / "sheet.png", pairs)
        return {"images": len(split.records)}

    settings = {"world": dataclasses.asdict(world_config)}
    return steps.run("world", settings, body) / "split"


# ---- 2. the generator ----------------------------------------------------------------------


def samples(steps: DemoSteps, config: DemoConfig) -> Path:
    """A sheet of generator samples (psi 0.7 on the first 8 ws, as the dataset is sampled)."""
    from assetgan.pipeline.stylegan import sample as gan_sample

    seeds = tuple(range(config.seed, config.seed + config.sizes.samples))

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        gan_sample.run(
            gan_sample.GanSampleConfig(
                generator=config.generator,
                out=folder / "samples.png",
                seeds=seeds,
                psi=0.7,
                cutoff=8,
                columns=8,
                device=config.device,
            ),
            progress,
        )
        return {"images": len(seeds)}

    settings = {"generator": file_sha256(config.generator), "seeds": list(seeds)}
    return steps.run("samples", settings, body) / "samples.png"


# ---- 3. annotations -> interpreter -> labeled dataset ---------------------------------------


def annotations(steps: DemoSteps, config: DemoConfig) -> Path:
    """Simulated LabelMe annotations of generator samples (the shipped segmenter draws them)."""
    from assetgan.pipeline.annotate import simulate

    seeds = tuple(range(config.seed, config.seed + config.sizes.annotations))

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        result = simulate.run(
            simulate.SimulateConfig(
                generator=config.generator,
                segmenter=config.segmenter,
                out=folder / "annotations",
                seeds=seeds,
                device=config.device,
            ),
            progress,
        )
        root = folder / "annotations"
        pairs = [(root / "images" / f"{n}.png", root / "masks" / f"{n}.png") for n in result.names]
        write_pair_sheet(folder / "sheet.png", pairs[:SHEET_IMAGES])
        return {
            "samples": len(result.names),
            "mean_iou": result.mean_iou,
            "mean_pixel_accuracy": result.mean_pixel_accuracy,
        }

    settings = {
        "generator": file_sha256(config.generator),
        "segmenter": file_sha256(config.segmenter),
        "seeds": list(seeds),
    }
    return steps.run("annotations", settings, body) / "annotations"


def interpreter(steps: DemoSteps, config: DemoConfig, annotation_set: Path) -> Path:
    """The Style Interpreter (parts + keypoints ensembles) trained on the annotations."""
    from assetgan.pipeline.interpreter import train as interpreter_train
    from assetgan.pipeline.interpreter.config import (
        InterpreterTrainConfig,
        InterpreterTrainSettings,
    )

    training = InterpreterTrainSettings(
        members=config.sizes.interpreter_members,
        max_iterations=config.sizes.interpreter_iterations,
        seed=config.seed,
    )

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        result = interpreter_train.run(
            InterpreterTrainConfig(
                annotations=annotation_set,
                generator=config.generator,
                out=folder / "I.safetensors",
                training=training,
                device=config.device,
            ),
            progress,
        )
        return {"images": result.images, "iterations": dict(result.iterations)}

    settings = {"annotations": steps.digest("annotations"), "training": training.to_dict()}
    return steps.run("interpreter", settings, body) / "I.safetensors"


def dataset(steps: DemoSteps, config: DemoConfig, interpreter_path: Path) -> Path:
    """Generated labeled pairs (the most uncertain 10 % left out) and their HTML gallery."""
    from assetgan.pipeline.datasets import generate as dataset_generate
    from assetgan.pipeline.datasets import view as dataset_view
    from assetgan.pipeline.datasets.layout import DatasetConfig, GeneratedDataset

    settings_ = DatasetConfig(
        n=config.sizes.pairs, seed_start=DATASET_SEED_START + config.seed, drop=DROP
    )

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        root = folder / "dataset"
        dataset_generate.run(
            dataset_generate.DatasetGenerateConfig(
                generator=config.generator,
                interpreter=interpreter_path,
                out=root,
                dataset=settings_,
                device=config.device,
            ),
            progress,
        )
        view = dataset_view.run(
            dataset_view.DatasetViewConfig(
                dataset=root, out=folder / "gallery.html", limit=config.sizes.gallery
            ),
            progress,
        )
        records = GeneratedDataset.load(root).records()
        kept = [r for r in records if r.get("kept", True)]
        pairs = [(root / r["image"], root / r["parts"]) for r in kept[:SHEET_IMAGES]]
        write_pair_sheet(folder / "sheet.png", pairs)
        return {
            "pairs": len(records),
            "kept": len(kept),
            "shown": view.shown,
            "mean_score": float(np.mean([r["score"] for r in records])),
        }

    settings = {"interpreter": steps.digest("interpreter"), "dataset": settings_.to_dict()}
    return steps.run("dataset", settings, body) / "dataset"


# ---- 4. the downstream segmenter --------------------------------------------------------------


def segmenter(steps: DemoSteps, config: DemoConfig, dataset_root: Path) -> Path:
    """A fresh segmenter trained on the kept generated pairs only (no real label is seen: the
    shipped segmenter, trained on real renders, is not its starting point)."""
    from assetgan.pipeline.downstream import train as segment_train

    recipe = segment_train.SegmentTrainConfig(
        data=dataset_root,
        out=Path("-"),
        epochs=config.sizes.segment_epochs,
        batch=config.sizes.segment_batch,
        class_weight_power=0.5,
        flip=0.5,
        seed=config.seed,
        device=config.device,
    )

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        result = segment_train.run(dataclasses.replace(recipe, out=folder / "run"), progress)
        return {
            "images": result.images,
            "steps": result.steps,
            "epochs": result.epochs,
            "train_seconds": result.seconds,
        }

    settings = {"dataset": steps.digest("dataset"), "recipe": recipe.to_dict()}
    return steps.run("segmenter", settings, body) / "run" / "segmenter.safetensors"


def eval_figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The paper protocol's headline figures of a `segment eval` metrics dict (mIoU car_20 /
    12 / 5, pck@0.05, pck@0.1) and the IoU of every car_20 and car_5 class."""
    seg = metrics["segmentation"]
    return {
        **headline(metrics),
        "per_class_iou_car_20": seg["car_20"]["per_class_iou"],
        "per_class_iou_car_5": seg["car_5"]["per_class_iou"],
    }


def segment_eval(steps: DemoSteps, config: DemoConfig, model: Path, split: Path) -> dict[str, Any]:
    """`segment eval` on the world split's ground truth: the segmenter trained on generated pairs
    ("ours") and, as the real-data reference, the shipped segmenter (10,000 real renders)."""
    from assetgan.core.io_utils import read_json_object
    from assetgan.pipeline.downstream import evaluate as segment_evaluate

    models = {"ours": model, "real": config.segmenter}

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        summary = {}
        for name, path in models.items():
            result = segment_evaluate.run(
                segment_evaluate.SegmentEvalConfig(
                    model=path,
                    data=split,
                    out=folder / f"{name}.json",
                    sheet=folder / f"{name}_sheet.png",
                    sheet_count=SHEET_IMAGES,
                    device=config.device,
                ),
                progress,
            )
            summary[name] = {
                "images": result.images,
                **eval_figures(read_json_object(result.metrics)),
            }
        return summary

    settings = {
        "segmenter": steps.digest("segmenter"),
        "world": steps.digest("world"),
        "real": file_sha256(config.segmenter),
    }
    steps.run("segment_eval", settings, body)
    return steps.summary("segment_eval")


# ---- 5. a multi-view set ----------------------------------------------------------------------


def multiview(steps: DemoSteps, config: DemoConfig, interpreter_path: Path) -> Path:
    """View codes x content codes of the generator, labeled by the interpreter, with cameras
    (PnP of its keypoints against the shipped template) and a sheet: one column per view."""
    from assetgan.pipeline.multiview import sample as multiview_sample

    settings_ = multiview_sample.MultiviewSettings(
        views=config.sizes.views, contents=config.sizes.contents, seed=config.seed
    )

    def body(folder: Path, progress: Progress | None) -> dict[str, Any]:
        root = folder / "set"
        result = multiview_sample.run(
            multiview_sample.MultiviewSampleConfig(
                generator=config.generator,
                interpreter=interpreter_path,
                out=root,
                settings=settings_,
                device=config.device,
            ),
            progress,
        )
        pairs = [
            (root / f"images/{name}.png", root / f"parts/{name}.png")
            for content in range(min(settings_.contents, 4))
            for name in (
                multiview_sample.image_name(content, view) for view in range(settings_.views)
            )
        ]
        write_pair_sheet(folder / "sheet.png", pairs, columns=settings_.views)
        summary = dict(result.summary or {})
        summary["view_layers"] = result.settings.view_layers
        summary["views"], summary["contents"] = settings_.views, settings_.contents
        return summary

    settings = {"interpreter": steps.digest("interpreter"), "set": settings_.to_dict()}
    return steps.run("multiview", settings, body) / "set"
