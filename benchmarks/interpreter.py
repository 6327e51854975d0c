"""Style Interpreter memory and speed: assetgan's algorithm vs the released DatasetGAN algorithm.

Same generator, same annotation set, same ensemble code; only the feature path differs:
- ours, training: native-resolution taps (float16) + a 4-neighbour bilinear gather per sampled
  pixel; generation: project each resolution with its slice of W1, up-sample the projections.
- reference (nv-tlabs/datasetGAN_release): every annotated pixel's up-sampled, concatenated
  feature vector held in RAM (float16 matrix + the float32 copy its data loader makes); at
  generation the full [C, H, W] feature tensor per image, then the MLPs per pixel.

Configurations: `demo` (64x64, cpu64 channels, 736-d features) and `car` (random-weight config-f
512 generator cropped to 512x384, 5056-d features). Where the reference training set cannot fit
in RAM (car: 16 x 384 x 512 x 5056 x 6 bytes) its memory is computed from the array shapes and
marked "computed"; the formula is checked against a measured run at the demo size.
Each measured configuration runs in its own subprocess and reports its own ru_maxrss.

    python benchmarks/interpreter.py                 # demo + car (car takes tens of minutes)
    python benchmarks/interpreter.py --configs demo  # minutes
    python benchmarks/interpreter.py --precision     # bf16 autocast vs fp32, demo config

`--precision` (issue 13, "Speed it needs"): the interpreter's training and dataset generation in
fp32 and under `torch.autocast("cpu", torch.bfloat16)` side by side on the demo config: seconds
per training iteration and per generated image, a bare matmul of the first ensemble layer's
shape, the pixel agreement of the generated labels (bf16 vs fp32, same checkpoint; and the
bf16-trained checkpoint vs the fp32-trained one), and the mIoU of both against the toy ground
truth (the toy labels are a function of the seed, so generated seeds have them too).
Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "demo": {"resolution": 64, "channels": [128, 128, 64, 32, 16], "crop_rows": None},
    "car": {"resolution": 512, "channels": None, "crop_rows": [64, 448]},
}
CLASSES = 5  # toy labels: four horizontal bands + a central ellipse


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def generator_config(name: str):
    from assetgan.pipeline.stylegan.config import GeneratorConfig

    spec = CONFIGS[name]
    channels = None if spec["channels"] is None else tuple(spec["channels"])
    crop = None if spec["crop_rows"] is None else tuple(spec["crop_rows"])
    return GeneratorConfig(resolution=spec["resolution"], channels=channels, crop_rows=crop)


def toy_labels(height: int, width: int, seed: int):
    """[H, W] uint8: bands by row, shifted per seed, and an ellipse (learnable from position)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = np.arange(height)[:, None] + 0.5
    cols = np.arange(width)[None, :] + 0.5
    shift = rng.uniform(-0.1, 0.1) * height
    bands = np.clip(((rows + shift) / height * 4).astype(int), 0, 3) + np.zeros_like(cols, int)
    cy, cx = height * rng.uniform(0.4, 0.6), width * rng.uniform(0.4, 0.6)
    ellipse = ((rows - cy) / (0.2 * height)) ** 2 + ((cols - cx) / (0.25 * width)) ** 2 < 1
    return np.where(ellipse, 4, bands).astype(np.uint8)


def setup(name: str, work: Path, images: int) -> None:
    """Random-weight generator file + an annotation set of `images` seeds with toy labels."""
    import numpy as np
    import torch

    from assetgan.core.hashing import file_sha256
    from assetgan.pipeline.annotations import AnnotatedSample, AnnotationSet
    from assetgan.pipeline.stylegan.checkpoint import save_generator
    from assetgan.pipeline.stylegan.networks import Generator
    from assetgan.pipeline.stylegan.sampling import ws_from_seeds

    torch.manual_seed(0)
    generator = Generator(generator_config(name)).eval()
    path = save_generator(generator, work / "G.safetensors")
    sha = file_sha256(path)
    _c, height, width = generator.config.image_shape
    annotation_set = AnnotationSet.empty("car_20")
    ws = ws_from_seeds(generator, list(range(images)), psi=0.7, cutoff=8)
    for seed in range(images):
        annotation_set.samples.append(
            AnnotatedSample(
                name=f"seed{seed:04d}",
                generator_path=str(path),
                generator_sha256=sha,
                seed=seed,
                ws=ws[seed].numpy().astype(np.float32),
                part_ids=toy_labels(height, width, seed),
                keypoints_xyv=np.zeros((12, 3), np.float32),
            )
        )
    annotation_set.save(work / "annotations")


class ReleasedFeatureStore:
    """The released training data: float16 matrix of all pixels plus the float32 copy."""

    def __init__(self, geometry):
        import torch

        from assetgan.pipeline.interpreter.features import MaterialisedFeatureStore

        self.half = MaterialisedFeatureStore(geometry, dtype=torch.float16)
        self.geometry = geometry
        self.full = None

    def add(self, features) -> None:
        self.half.add(features)

    def nbytes(self) -> int:
        full = 0 if self.full is None else self.full.numel() * 4
        return self.half.nbytes() + full

    def gather(self, image, row, col):
        import torch

        if self.full is None:
            self.half.gather(image[:1], row[:1], col[:1])  # stacks the float16 matrix
            self.full = self.half._matrix.to(torch.float32)
        height, width = self.geometry.image_size
        return self.full.index_select(0, (image * height + row) * width + col)


def worker_train(args) -> dict:
    import torch

    from assetgan.core.hashing import file_sha256
    from assetgan.pipeline.annotations import AnnotationSet
    from assetgan.pipeline.interpreter.checkpoint import save_interpreter
    from assetgan.pipeline.interpreter.config import InterpreterTrainSettings
    from assetgan.pipeline.interpreter.train import generator_geometry, train
    from assetgan.pipeline.stylegan.checkpoint import load_generator

    work = Path(args.work)
    generator = load_generator(work / "G.safetensors")
    annotations = AnnotationSet.load(work / "annotations")
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # its lazy imports: ~150 MB of RSS
    baseline = peak_rss_bytes()
    store = (
        ReleasedFeatureStore(generator_geometry(generator)) if args.impl == "reference" else None
    )
    config = InterpreterTrainSettings(
        members=10, batch_pixels=64, keypoints=False, max_iterations=args.iterations
    )
    marks = {}

    def on_event(event) -> None:  # core.progress.ProgressEvent
        if event.task == "features" and event.done == event.total:
            marks["training"] = time.perf_counter()  # features extracted, training starts

    started = time.perf_counter()
    interpreter = train(
        annotations,
        generator,
        file_sha256(work / "G.safetensors"),
        config,
        progress=on_event,
        store=store,
    )
    ended = time.perf_counter()
    save_interpreter(interpreter, work / f"I_{args.impl}.safetensors")
    iterations = interpreter.summary["parts"]["iterations"]
    return {
        "peak_rss": peak_rss_bytes(),
        "baseline_rss": baseline,
        "feature_store_bytes": (store.nbytes() if store else interpreter.summary["feature_bytes"]),
        "feature_seconds": marks["training"] - started,
        "train_seconds": ended - marks["training"],
        "iterations": iterations,
        "seconds_per_iteration": (ended - marks["training"]) / max(iterations, 1),
        "stopped_at": [m["iteration"] for m in interpreter.summary["parts"]["members"]],
        "torch_threads": torch.get_num_threads(),
    }


def worker_standin(args) -> dict:
    """The reference's training step cost where its feature matrix cannot be built: the same loop
    on a random float32 stand-in matrix of 65536 rows (step cost does not depend on the rows)."""
    import torch
    import torch.nn.functional as F

    from assetgan.pipeline.interpreter.config import InterpreterTrainSettings
    from assetgan.pipeline.interpreter.model import PixelEnsemble
    from assetgan.pipeline.interpreter.train import generator_geometry, train_head
    from assetgan.pipeline.stylegan.checkpoint import load_generator

    geometry = generator_geometry(load_generator(Path(args.work) / "G.safetensors"))
    rows = 65536
    gen = torch.Generator().manual_seed(0)
    matrix = torch.randn(rows, geometry.channels, generator=gen)
    labels = torch.randint(0, CLASSES, (rows,), generator=gen)

    class StandIn:
        def __init__(self):
            self.geometry = geometry

        def gather(self, image, row, col):
            height, width = geometry.image_size
            return matrix.index_select(0, ((image * height + row) * width + col) % rows)

    def loss(out, ids):
        target = labels[ids % rows]
        return F.cross_entropy(out.permute(0, 2, 1), target, reduction="none").mean(dim=1)

    ensemble = PixelEnsemble(10, geometry.channels, 20, generator=gen)
    config = InterpreterTrainSettings(members=10, batch_pixels=64, max_iterations=args.iterations)
    height, width = geometry.image_size
    pool = torch.arange(args.images * height * width)
    started = time.perf_counter()
    summary = train_head(ensemble, StandIn(), pool, loss, config, 0, "parts")
    seconds = time.perf_counter() - started
    return {"seconds_per_iteration": seconds / summary["iterations"], "rows": rows}


def worker_generate(args) -> dict:
    import numpy as np
    import torch

    from assetgan.pipeline.interpreter.checkpoint import load_interpreter
    from assetgan.pipeline.interpreter.predict import predict
    from assetgan.pipeline.stylegan.checkpoint import load_generator
    from assetgan.pipeline.stylegan.sampling import ws_from_seeds

    work = Path(args.work)
    generator = load_generator(work / "G.safetensors")
    interpreter = load_interpreter(work / f"I_{args.interpreter}.safetensors")
    baseline = peak_rss_bytes()
    seeds = list(range(1000, 1000 + args.images))
    ws = ws_from_seeds(generator, seeds, psi=0.7, cutoff=8)
    synth_seconds, total_seconds, members, votes = [], [], [], []
    with torch.no_grad():
        for idx in range(len(seeds)):
            t0 = time.perf_counter()
            generator.synthesis(ws[idx : idx + 1], noise_mode="const", return_features=True)
            t1 = time.perf_counter()
            result = predict(
                interpreter,
                generator,
                ws[idx : idx + 1],
                materialised=args.impl == "reference",
                keep_members=True,
            )
            t2 = time.perf_counter()
            synth_seconds.append(t1 - t0)
            total_seconds.append(t2 - t1)
            members.append(result.member_labels)
            votes.append(result.part_ids)
    np.savez(
        work / f"pred_{args.impl}_{args.interpreter}.npz",
        members=np.concatenate(members, axis=1),
        votes=np.concatenate(votes),
    )
    return {
        "peak_rss": peak_rss_bytes(),
        "baseline_rss": baseline,
        "images": len(seeds),
        "synthesis_seconds_per_image": float(np.median(synth_seconds)),
        "seconds_per_image": float(np.median(total_seconds)),
        "interpreter_seconds_per_image": float(np.median(total_seconds) - np.median(synth_seconds)),
    }


def worker_gen_timing(args) -> dict:
    """Both generation paths in one process, alternating per image (load on a shared machine
    hits both alike), on the same checkpoint; also their agreement."""
    import numpy as np
    import torch

    from assetgan.pipeline.interpreter.checkpoint import load_interpreter
    from assetgan.pipeline.interpreter.predict import predict
    from assetgan.pipeline.stylegan.checkpoint import load_generator
    from assetgan.pipeline.stylegan.sampling import ws_from_seeds

    work = Path(args.work)
    generator = load_generator(work / "G.safetensors")
    interpreter = load_interpreter(work / "I_ours.safetensors")
    seeds = list(range(1000, 1000 + args.images))
    ws = ws_from_seeds(generator, seeds, psi=0.7, cutoff=8)
    times = {"synthesis": [], "ours": [], "reference": []}
    votes_same = members_same = pixels = 0
    with torch.no_grad():
        for idx in range(len(seeds)):
            w = ws[idx : idx + 1]
            t0 = time.perf_counter()
            generator.synthesis(w, noise_mode="const", return_features=True)
            times["synthesis"].append(time.perf_counter() - t0)
            results = {}
            order = ("ours", "reference") if idx % 2 == 0 else ("reference", "ours")
            for impl in order:
                t0 = time.perf_counter()
                results[impl] = predict(
                    interpreter, generator, w, materialised=impl == "reference", keep_members=True
                )
                times[impl].append(time.perf_counter() - t0)
            votes_same += int((results["ours"].part_ids == results["reference"].part_ids).sum())
            members_same += int(
                (results["ours"].member_labels == results["reference"].member_labels).sum()
            )
            pixels += results["ours"].part_ids.size
    median = {k: float(np.median(v)) for k, v in times.items()}
    return {
        "images": len(seeds),
        "synthesis_seconds_per_image": median["synthesis"],
        "ours_seconds_per_image": median["ours"],
        "reference_seconds_per_image": median["reference"],
        "ours_interpreter_seconds": median["ours"] - median["synthesis"],
        "reference_interpreter_seconds": median["reference"] - median["synthesis"],
        "all_seconds": times,
        "votes_identical": votes_same / pixels,
        "member_argmax_identical": members_same / (pixels * interpreter.config.members),
    }


def _toy_miou(votes, seeds, height: int, width: int) -> float:
    import numpy as np

    from assetgan.assets.taxonomy import CAR_20
    from assetgan.core.metrics import confusion, miou_from_confusion

    truth = np.stack([toy_labels(height, width, seed) for seed in seeds])
    matrix = confusion(truth, np.asarray(votes), len(CAR_20))  # the set's taxonomy: car_20
    return miou_from_confusion(matrix, CAR_20)["miou"]


def worker_precision(args) -> dict:
    """fp32 vs bf16 autocast: training, generation, agreement, toy mIoU (module docstring)."""
    import contextlib

    import numpy as np
    import torch

    from assetgan.core.hashing import file_sha256
    from assetgan.pipeline.annotations import AnnotationSet
    from assetgan.pipeline.interpreter.config import InterpreterTrainSettings
    from assetgan.pipeline.interpreter.predict import predict
    from assetgan.pipeline.interpreter.train import train
    from assetgan.pipeline.stylegan.checkpoint import load_generator
    from assetgan.pipeline.stylegan.sampling import ws_from_seeds

    work = Path(args.work)
    generator = load_generator(work / "G.safetensors")
    annotations = AnnotationSet.load(work / "annotations")
    sha = file_sha256(work / "G.safetensors")
    settings = InterpreterTrainSettings(
        members=10, batch_pixels=64, keypoints=False, max_iterations=args.iterations
    )

    def autocast(precision: str):
        if precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)

    out: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    interpreters = {}
    for precision in ("fp32", "bf16"):
        started = time.perf_counter()
        with autocast(precision):
            interpreters[precision] = train(annotations, generator, sha, settings)
        seconds = time.perf_counter() - started
        iterations = interpreters[precision].summary["parts"]["iterations"]
        out[f"train_{precision}_seconds"] = seconds
        out[f"train_{precision}_s_per_iteration"] = seconds / max(1, iterations)
    a = torch.randn(4096, interpreters["fp32"].config.geometry.channels)
    b = torch.randn(a.shape[1], 128)
    for precision, (x, y) in {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}.items():
        x @ y  # warm-up
        started = time.perf_counter()
        for _ in range(20):
            x @ y
        out[f"matmul_{precision}_ms"] = (time.perf_counter() - started) / 20 * 1000
    seeds = list(range(1000, 1000 + args.images))
    ws = ws_from_seeds(generator, seeds, psi=0.7, cutoff=8)
    # name -> (checkpoint trained in, generation precision, path); the factorised path keeps
    # float32 in-place accumulators, so bf16 generation runs the materialised (reference) path
    runs = {
        "fp32": ("fp32", "fp32", False),
        "fp32_materialised": ("fp32", "fp32", True),
        "bf16": ("fp32", "bf16", True),
        "bf16_trained": ("bf16", "fp32", False),
    }
    votes = {name: [] for name in runs}
    times = {name: [] for name in runs}
    with torch.no_grad():
        for index in range(len(seeds)):
            for name, (trained, precision, dense) in runs.items():  # alternate: load hits all
                started = time.perf_counter()
                with autocast(precision):
                    result = predict(
                        interpreters[trained], generator, ws[index : index + 1], materialised=dense
                    )
                times[name].append(time.perf_counter() - started)
                votes[name].append(result.part_ids)
    height, width = generator.config.image_shape[1:]
    labels = {name: np.concatenate(v) for name, v in votes.items()}
    for name in runs:
        out[f"gen_{name}_s_per_image"] = float(np.median(times[name]))
        out[f"toy_miou_{name}"] = _toy_miou(labels[name], seeds, height, width)
    out["agreement_bf16_generation"] = float((labels["bf16"] == labels["fp32"]).mean())
    out["agreement_materialised"] = float((labels["fp32_materialised"] == labels["fp32"]).mean())
    out["agreement_bf16_training"] = float((labels["bf16_trained"] == labels["fp32"]).mean())
    out["images"] = len(seeds)
    return out


def precision_benchmark(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="interp_bench_precision_"))
    setup("demo", work, args.images)
    result = run_worker(
        "precision",
        work=work,
        threads=args.threads,
        iterations=args.demo_iterations or 300,
        images=args.demo_gen_images,
    )
    print(f"\n== bf16 autocast vs fp32 (demo config, {args.images} annotated images) ==")
    print(f"{'':36s}{'fp32':>10s}{'bf16':>10s}{'bf16/fp32':>11s}")
    for label, fp32_key, bf16_key in (
        ("train s / iteration", "train_fp32_s_per_iteration", "train_bf16_s_per_iteration"),
        ("generation s / image (materialised)", "gen_fp32_materialised_s_per_image",
         "gen_bf16_s_per_image"),
        ("matmul [4096, C] x [C, 128] ms", "matmul_fp32_ms", "matmul_bf16_ms"),
    ):  # fmt: skip
        fp32, bf16 = result[fp32_key], result[bf16_key]
        print(f"{label:36s}{fp32:10.4f}{bf16:10.4f}{bf16 / fp32:11.2f}")
    print(f"{'generation s / image (factorised, fp32)':36s}{result['gen_fp32_s_per_image']:10.4f}")
    print(
        f"labels: bf16 generation agrees with fp32 on {100 * result['agreement_bf16_generation']:.2f}"
        f" % of pixels; the bf16-trained checkpoint on {100 * result['agreement_bf16_training']:.2f}"
        f" %; toy mIoU fp32 {result['toy_miou_fp32']:.4f}, bf16 generation "
        f"{result['toy_miou_bf16']:.4f}, bf16-trained {result['toy_miou_bf16_trained']:.4f}"
    )
    return result


def run_worker(kind: str, **kwargs) -> dict:
    command = [sys.executable, __file__, "--worker", kind]
    for key, value in kwargs.items():
        if value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference_training_bytes(images: int, height: int, width: int, channels: int) -> int:
    """The released code's training arrays: pixels x C float16 + the float32 copy."""
    return images * height * width * channels * (2 + 4)


def agreement(work: Path, a: str, b: str) -> dict:
    import numpy as np

    first, second = np.load(work / f"pred_{a}.npz"), np.load(work / f"pred_{b}.npz")
    return {
        "votes_identical": float((first["votes"] == second["votes"]).mean()),
        "member_argmax_identical": float((first["members"] == second["members"]).mean()),
    }


def gib(value: float) -> str:
    return f"{value / 2**30:.2f}"


def benchmark(name: str, args) -> dict:
    from assetgan.pipeline.interpreter.train import generator_geometry
    from assetgan.pipeline.stylegan.networks import Generator

    config = generator_config(name)
    geometry = generator_geometry(Generator(config))
    height, width = geometry.image_size
    images = args.images
    work = Path(tempfile.mkdtemp(prefix=f"interp_bench_{name}_"))
    iterations = args.demo_iterations if name == "demo" else args.car_iterations
    gen_images = args.demo_gen_images if name == "demo" else args.car_gen_images
    common = {"work": work, "threads": args.threads}
    t0 = time.perf_counter()
    setup(name, work, images)
    result = {
        "config": name,
        "feature_channels": geometry.channels,
        "image_size": [height, width],
        "annotated_images": images,
        "setup_seconds": time.perf_counter() - t0,
    }
    result["train_ours"] = run_worker("train", impl="ours", iterations=iterations, **common)
    computed = reference_training_bytes(images, height, width, geometry.channels)
    result["reference_arrays_bytes_computed"] = computed
    fits = computed < args.reference_limit_gb * 2**30
    if fits:
        result["train_reference"] = run_worker(
            "train", impl="reference", iterations=iterations, **common
        )
    else:
        result["train_reference_step_standin"] = run_worker(
            "standin", iterations=iterations or 200, images=images, **common
        )
    memory_images = 2 if name == "demo" else 1
    result["gen_ours"] = run_worker(
        "generate", impl="ours", interpreter="ours", images=memory_images, **common
    )
    result["gen_reference"] = run_worker(
        "generate", impl="reference", interpreter="ours", images=memory_images, **common
    )
    result["gen_timing"] = run_worker("gen_timing", images=gen_images, **common)
    if fits:
        run_worker("generate", impl="ours", interpreter="reference", images=memory_images, **common)
        result["trained_ours_vs_trained_reference"] = agreement(work, "ours_ours", "ours_reference")
    result["work_dir"] = str(work)
    return result


def summarise(result: dict) -> dict:
    ours, gen_ours, gen_ref = result["train_ours"], result["gen_ours"], result["gen_reference"]
    timing = result["gen_timing"]
    reference = result.get("train_reference")
    if reference is not None:
        ref_peak, ref_kind = reference["peak_rss"], "measured"
        ref_net = reference["peak_rss"] - reference["baseline_rss"]
    else:
        ref_net = result["reference_arrays_bytes_computed"]
        ref_peak, ref_kind = ours["baseline_rss"] + ref_net, "computed"
    ours_net = ours["peak_rss"] - ours["baseline_rss"]
    return {
        "config": result["config"],
        "train_peak_rss_ours_gib": round(ours["peak_rss"] / 2**30, 3),
        "train_peak_rss_reference_gib": round(ref_peak / 2**30, 3),
        "reference_memory": ref_kind,
        "train_peak_ratio": round(ref_peak / ours["peak_rss"], 2),
        "train_net_ratio": round(ref_net / max(ours_net, 1), 2),
        "train_s_per_it_ours": round(ours["seconds_per_iteration"], 4),
        "train_s_per_it_reference": round(
            (reference or result["train_reference_step_standin"])["seconds_per_iteration"], 4
        ),
        "gen_s_per_image_ours": round(timing["ours_seconds_per_image"], 3),
        "gen_s_per_image_reference": round(timing["reference_seconds_per_image"], 3),
        "gen_interpreter_s_ours": round(timing["ours_interpreter_seconds"], 3),
        "gen_interpreter_s_reference": round(timing["reference_interpreter_seconds"], 3),
        "gen_speedup_end_to_end": round(
            timing["reference_seconds_per_image"] / timing["ours_seconds_per_image"], 2
        ),
        "gen_speedup_interpreter": round(
            timing["reference_interpreter_seconds"] / max(timing["ours_interpreter_seconds"], 1e-9),
            2,
        ),
        "gen_peak_rss_ours_gib": round(gen_ours["peak_rss"] / 2**30, 3),
        "gen_peak_rss_reference_gib": round(gen_ref["peak_rss"] / 2**30, 3),
        "votes_identical": timing["votes_identical"],
        "member_argmax_identical": timing["member_argmax_identical"],
    }


def print_table(rows: list[dict], details: list[dict]) -> None:
    for row, detail in zip(rows, details, strict=True):
        ours = detail["train_ours"]
        print(
            f"\n== {row['config']}: {detail['feature_channels']}-d features, "
            f"{detail['image_size'][0]}x{detail['image_size'][1]}, "
            f"{detail['annotated_images']} annotated images =="
        )
        print(f"{'':34s}{'ours':>14s}{'reference':>14s}{'ratio':>10s}")
        print(
            f"{'train peak RSS (GiB)':34s}{row['train_peak_rss_ours_gib']:14.3f}"
            f"{row['train_peak_rss_reference_gib']:14.3f}{row['train_peak_ratio']:10.2f}"
            f"  ({row['reference_memory']})"
        )
        ref_net = (
            detail["train_reference"]["peak_rss"] - detail["train_reference"]["baseline_rss"]
            if "train_reference" in detail
            else detail["reference_arrays_bytes_computed"]
        )
        print(
            f"{'train peak above baseline (GiB)':34s}"
            f"{gib(ours['peak_rss'] - ours['baseline_rss']):>14s}{gib(ref_net):>14s}"
            f"{row['train_net_ratio']:10.2f}"
        )
        ref_store = detail.get("train_reference", {}).get("feature_store_bytes")
        print(
            f"{'training feature data (GiB)':34s}{gib(ours['feature_store_bytes']):>14s}"
            f"{gib(ref_store if ref_store else detail['reference_arrays_bytes_computed']):>14s}"
        )
        standin = "" if "train_reference" in detail else "  (reference: stand-in matrix)"
        print(
            f"{'train s / iteration (10 members)':34s}{row['train_s_per_it_ours']:14.4f}"
            f"{row['train_s_per_it_reference']:14.4f}{standin}"
        )
        print(
            f"{'generation s / image (all)':34s}{row['gen_s_per_image_ours']:14.3f}"
            f"{row['gen_s_per_image_reference']:14.3f}{row['gen_speedup_end_to_end']:10.2f}"
        )
        print(
            f"{'  of which interpreter':34s}{row['gen_interpreter_s_ours']:14.3f}"
            f"{row['gen_interpreter_s_reference']:14.3f}{row['gen_speedup_interpreter']:10.2f}"
        )
        print(
            f"{'generation peak RSS (GiB)':34s}{row['gen_peak_rss_ours_gib']:14.3f}"
            f"{row['gen_peak_rss_reference_gib']:14.3f}"
        )
        print(
            f"timing: median of {detail['gen_timing']['images']} images, both paths alternating "
            "in one process; peak RSS: separate processes"
        )
        print(
            f"same checkpoint, fast vs reference: votes identical {row['votes_identical']:.6f}, "
            f"member argmaxes identical {row['member_argmax_identical']:.6f}"
        )
        if "trained_ours_vs_trained_reference" in detail:
            agree = detail["trained_ours_vs_trained_reference"]
            print(
                "trained by ours vs trained by reference (same seeds; Adam amplifies rounding): "
                f"votes identical {agree['votes_identical']:.4f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="demo,car")
    parser.add_argument("--images", type=int, default=16, help="annotated images")
    parser.add_argument("--demo-iterations", type=int, default=None, help="None = early stopping")
    parser.add_argument("--car-iterations", type=int, default=200)
    parser.add_argument("--demo-gen-images", type=int, default=16)
    parser.add_argument("--car-gen-images", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--reference-limit-gb", type=float, default=12.0)
    parser.add_argument(
        "--worker",
        choices=["train", "generate", "standin", "gen_timing", "precision"],
        default=None,
    )
    parser.add_argument("--precision", action="store_true", help="bf16 autocast vs fp32 only")
    parser.add_argument("--impl", choices=["ours", "reference"], default="ours")
    parser.add_argument("--interpreter", choices=["ours", "reference"], default="ours")
    parser.add_argument("--work", default=None)
    parser.add_argument("--iterations", type=int, default=None)
    args = parser.parse_args()
    if args.worker is not None:
        import torch

        torch.set_num_threads(args.threads)
        worker = {
            "train": worker_train,
            "generate": worker_generate,
            "standin": worker_standin,
            "gen_timing": worker_gen_timing,
            "precision": worker_precision,
        }[args.worker]
        print(json.dumps(worker(args)))
        return
    if args.precision:
        print(json.dumps({"precision": precision_benchmark(args)}))
        return
    details = [benchmark(name, args) for name in args.configs.split(",")]
    rows = [summarise(d) for d in details]
    print_table(rows, details)
    print(json.dumps({"interpreter": rows, "details": details}, default=str))


if __name__ == "__main__":
    main()
