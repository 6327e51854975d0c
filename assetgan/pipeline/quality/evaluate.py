"""`gan eval`: generator quality measured by a network that knows car parts.

The training-time KID (random conv features) is blind to what the mission needs: small parts,
part proportions, and a car that stays itself across view codes. This stage measures those with
the CarWorld segmenter (assets/segmenter64), on generated samples (psi `config.psi`) against
CarWorld renders, and prints every figure beside its real-vs-real floor (two disjoint sets of
renders of the same split, same size):

- `seg_fd`: Fréchet distance between the segmenter's pooled encoder features (the two deepest
  UNet levels, global-average-pooled and concatenated).
- `precision` / `recall` (Kynkäänniemi et al., k = 3) in the same feature space.
- `area_fd`: Fréchet distance between the per-image vectors of the 20 car_20 area fractions
  (segmenter labels on both sides: the same labeller, so its errors largely cancel).
- `small_part_area`: mean share of the image labelled as a small part (lights, plates, grilles,
  mirrors, handles), generated / real (1 = as in the renders).
- multi-view identity (generated only; view code = ws[:view_layers]): content codes held fixed
  while the view code changes. `paint_identity` = 1 - (mean body-colour distance between views
  of one content) / (mean distance between contents seen from the same view): 1 = the paint
  survives a change of view, 0 = it changes as much as between different cars.
  `paint_retrieval`: share of images whose nearest image by body colour among the other view
  codes shows the same content (chance = 1 / contents). The shape side of identity needs 3D
  (the multiview stage's cameras); the visible-part set is view-dependent and not used.
  CarWorld has no view code, so these have no real floor.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assetgan.assets.taxonomy import CAR_5, CAR_20, PART_ID, car20_to_car5
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.metrics import frechet_distance, precision_recall
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.downstream.checkpoint import load_segmenter
from assetgan.pipeline.downstream.model import Segmenter, UNet
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import crossover, synthesize_uint8, ws_from_seeds

SCHEMA_VERSION = 1
DEFAULT_SEGMENTER = Path(__file__).resolve().parents[2] / "assets/segmenter64/segmenter.safetensors"
SMALL_PARTS = ("car_lights", "tailLight", "licensePlate", "grilles", "mirror", "handles")
BODY_5 = CAR_5.index("body")


@dataclass(frozen=True)
class GanEvalConfig:
    """Inputs and settings of `gan eval`."""

    generator: Path  # generator checkpoint (.safetensors)
    segmenter: Path  # CarWorld segmenter checkpoint (a UNet `downstream_segmenter`)
    reals: Path  # a CarWorld split directory (images/*.png) with at least 2 * n images
    out: Path | None = None  # metrics JSON to write (None: write nothing)
    n: int = 400  # generated images, and real images per real set
    psi: float = 1.0  # truncation of the generated samples
    seed: int = 0  # first latent seed
    view_layers: int = 2  # leading ws that hold the view (gan viewcode's best K)
    contents: int = 24  # content codes for multi-view identity
    views: int = 6  # view codes per content code
    batch: int = 32  # images per generator / segmenter forward
    device: Device = Device.auto  # where the networks run

    def validate(self) -> GanEvalConfig:
        if self.n < 8:
            raise AssetganError(f"--n must be at least 8, got {self.n}")
        if self.contents < 2 or self.views < 2:
            raise AssetganError("multi-view identity needs at least 2 contents and 2 views")
        if self.batch < 1:
            raise AssetganError(f"--batch must be positive, got {self.batch}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class GanEvalResult:
    """The figures of one generator (file: the `out` JSON, schema_version 1)."""

    config: dict[str, Any]  # GanEvalConfig.to_dict()
    generated: dict[str, float]  # figure -> value for the generator
    floor: dict[str, float]  # figure -> value for real set B against real set A
    ratios: dict[str, float]  # figure -> generated / floor where a ratio means something

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **dataclasses.asdict(self)}

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> GanEvalResult:
        from assetgan.core.io_utils import read_json_object

        document = read_json_object(path)
        if document.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(f"{path}: schema_version is not {SCHEMA_VERSION}")
        try:
            return cls(**{f.name: document[f.name] for f in dataclasses.fields(cls)})
        except KeyError as error:
            raise AssetganError(f"{path}: missing field {error}") from None


@dataclass(frozen=True)
class Labelled:
    """What the segmenter sees in a set of images."""

    features: np.ndarray  # [N, D] pooled encoder features
    areas: np.ndarray  # [N, 20] car_20 area fractions
    body_colour: np.ndarray  # [N, 3] mean RGB in [0, 1] of car_5 body pixels (nan if none)


@torch.no_grad()
def label_images(model: Segmenter, images: np.ndarray, batch: int = 64) -> Labelled:
    """Pooled features, area fractions and body colour of uint8 images [N, H, W, 3]."""
    if not isinstance(model.net, UNet):
        raise AssetganError("gan eval needs a UNet segmenter (its encoder features are the space)")
    device = next(model.parameters()).device
    taps: list[torch.Tensor] = []
    hooks = [
        block.register_forward_hook(lambda _m, _i, out: taps.append(out.mean((2, 3))))
        for block in model.net.down[-2:]
    ]
    features, areas, colours = [], [], []
    try:
        for start in range(0, len(images), batch):
            chunk = images[start : start + batch]
            taps.clear()
            logits, _ = model(
                torch.from_numpy(np.array(chunk)).to(device).permute(0, 3, 1, 2).float()
            )
            features.append(torch.cat(taps, 1).float().cpu().numpy())
            part_ids = logits.argmax(1).cpu().numpy()  # [B, H, W]
            counts = np.stack([np.bincount(p.ravel(), minlength=len(CAR_20)) for p in part_ids])
            areas.append(counts / part_ids[0].size)
            body = car20_to_car5(part_ids) == BODY_5
            for image, mask in zip(chunk, body, strict=True):
                colours.append(image[mask].mean(0) / 255.0 if mask.any() else np.full(3, np.nan))
    finally:
        for hook in hooks:
            hook.remove()
    return Labelled(np.concatenate(features), np.concatenate(areas), np.stack(colours))


def small_part_area(areas: np.ndarray) -> float:
    """Mean share of the image covered by SMALL_PARTS, from [N, 20] area fractions."""
    return float(areas[:, [PART_ID[name] for name in SMALL_PARTS]].sum(1).mean())


def read_real_images(split: Path, count: int) -> np.ndarray:
    """The first `count` images [count, H, W, 3] uint8 of a CarWorld split directory."""
    from PIL import Image

    files = sorted((split / "images").glob("*.png"))
    if len(files) < count:
        raise AssetganError(
            f"{split}: has {len(files)} images under images/, gan eval needs {count} (2 x --n); "
            "render a bigger split with `assetgan world render`"
        )
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files[:count]])


def identity_scores(labels: Labelled, contents: int, views: int) -> dict[str, float]:
    """paint_identity and paint_retrieval from images ordered content-major [contents * views]."""
    colours = labels.body_colour.reshape(contents, views, 3)
    pairwise = np.linalg.norm(colours[:, :, None, None] - colours[None, None], axis=-1)
    # pairwise[i, j, k, l]: body-colour distance of (content i, view j) and (content k, view l)
    same_content = np.eye(contents, dtype=bool)[:, None, :, None]
    same_view = np.eye(views, dtype=bool)[None, :, None, :]
    finite = np.isfinite(pairwise)
    within = pairwise[same_content & ~same_view & finite].mean()
    across = pairwise[~same_content & same_view & finite].mean()
    # retrieval: for each image, the nearest image taken from another view code
    candidates = np.where(same_view | ~finite, np.inf, pairwise).reshape(contents, views, -1)
    nearest = candidates.argmin(-1) // views  # [contents, views] content index of the match
    hits = nearest == np.arange(contents)[:, None]
    usable = np.isfinite(candidates.min(-1))
    return {
        "paint_identity": float(1.0 - within / across) if across > 0 else float("nan"),
        "paint_retrieval": float(hits[usable].mean()) if usable.any() else float("nan"),
        "paint_retrieval_chance": 1.0 / contents,
    }


def set_figures(real_a: Labelled, other: Labelled) -> dict[str, float]:
    """The figures of `other` (generated or real set B) against real set A."""
    precision, recall = precision_recall(real_a.features, other.features)
    return {
        "seg_fd": frechet_distance(real_a.features, other.features),
        "precision": precision,
        "recall": recall,
        "area_fd": frechet_distance(real_a.areas, other.areas),
        "small_part_area": small_part_area(other.areas) / max(small_part_area(real_a.areas), 1e-12),
    }


@dataclass(frozen=True)
class RealReference:
    """The real side, labelled once: set A (what generated images are compared with), and the
    real-vs-real floor (set B against set A)."""

    real_a: Labelled  # labels of the first n renders
    floor: dict[str, float]  # set_figures(real_a, labels of the next n renders)


def real_reference(
    segmenter: Segmenter, reals: Path, n: int, batch: int = 32, progress: Progress | None = None
) -> RealReference:
    """Label 2 n renders of a CarWorld split and compute the floor."""
    emit(progress, 0, 2 * n, "real images")
    images = read_real_images(Path(reals), 2 * n)
    real_a = label_images(segmenter, images[:n], batch)
    floor = set_figures(real_a, label_images(segmenter, images[n:], batch))
    emit(progress, 2 * n, 2 * n, "real images")
    return RealReference(real_a, floor)


@torch.no_grad()
def generator_figures(
    generator: Generator,
    segmenter: Segmenter,
    reference: RealReference,
    config: GanEvalConfig,
    progress: Progress | None = None,
) -> dict[str, float]:
    """The generated side of every figure (module docstring) for an in-memory generator."""
    if not 1 <= config.view_layers < generator.num_ws:
        raise AssetganError(
            f"--view-layers must be in 1..{generator.num_ws - 1} for this generator, got "
            f"{config.view_layers}"
        )
    total = config.n + config.contents * config.views
    fakes = []
    for start in range(0, config.n, config.batch):
        seeds = list(range(config.seed + start, config.seed + min(start + config.batch, config.n)))
        ws = ws_from_seeds(generator, seeds, psi=config.psi)
        fakes.append(synthesize_uint8(generator, ws))
        emit(progress, start + len(seeds), total, "generated images")
    figures = set_figures(
        reference.real_a, label_images(segmenter, np.concatenate(fakes), config.batch)
    )
    # multi-view identity: content-major grid of mixes ws[:K] from a view code, ws[K:] a content
    base = config.seed + config.n
    content_ws = ws_from_seeds(generator, list(range(base, base + config.contents)), psi=config.psi)
    view_seeds = list(range(base + config.contents, base + config.contents + config.views))
    view_ws = ws_from_seeds(generator, view_seeds, psi=config.psi)
    mixes = []
    for index in range(config.contents):
        content = content_ws[index : index + 1].expand(config.views, -1, -1)
        mixes.append(synthesize_uint8(generator, crossover(view_ws, content, config.view_layers)))
        emit(progress, config.n + (index + 1) * config.views, total, "view codes")
    labels = label_images(segmenter, np.concatenate(mixes), config.batch)
    figures.update(identity_scores(labels, config.contents, config.views))
    return figures


def run(config: GanEvalConfig, progress: Progress | None = None) -> GanEvalResult:
    """Measure a generator against CarWorld renders (module docstring); writes config.out."""
    config = config.validate()
    device = resolve_device(config.device)
    segmenter, _ = load_segmenter(config.segmenter, device)
    generator = load_generator(config.generator, device)
    reference = real_reference(segmenter, Path(config.reals), config.n, config.batch, progress)
    generated = generator_figures(generator, segmenter, reference, config, progress)
    floor = reference.floor
    ratios = {k: generated[k] / floor[k] for k in ("seg_fd", "area_fd") if floor[k] > 0}
    result = GanEvalResult(config.to_dict(), generated, floor, ratios)
    if config.out is not None:
        result.save(config.out)
    return result


class SnapshotCarMetric:
    """`gan train`'s snapshot hook: the figures of `gan eval` for G_ema, prefixed `car_`, with
    the real floors (`car_<figure>_floor`) in every metrics.jsonl line. The real side is
    labelled once, when the hook is built."""

    def __init__(
        self,
        reals: Path,  # CarWorld split with at least 2 * n images
        n: int = 200,  # generated images per snapshot, real images per real set
        view_layers: int = 2,  # leading ws that hold the view
        segmenter: Path = DEFAULT_SEGMENTER,  # CarWorld UNet segmenter checkpoint
        device: Device | str = Device.cpu,  # where the segmenter runs
    ) -> None:
        config = GanEvalConfig(
            Path("(G_ema in memory)"), segmenter, reals, None, n, view_layers=view_layers,
            device=Device(device),
        )  # fmt: skip
        self.config = config.validate()
        device = resolve_device(config.device)
        self.segmenter, _ = load_segmenter(config.segmenter, device)
        self.reference = real_reference(self.segmenter, Path(config.reals), config.n, config.batch)

    def __call__(self, generator: Generator) -> dict[str, float]:
        figures = generator_figures(generator, self.segmenter, self.reference, self.config)
        line = {f"car_{k}": float(v) for k, v in figures.items() if k != "paint_retrieval_chance"}
        line.update({f"car_{k}_floor": float(v) for k, v in self.reference.floor.items()})
        return line


def summary_lines(result: GanEvalResult) -> list[str]:
    """One line per figure: generated, real floor, ratio."""
    lines = [f"{'figure':16s} {'generated':>10s} {'real floor':>10s} {'ratio':>7s}"]
    for name, value in result.generated.items():
        floor = result.floor.get(name)
        ratio = result.ratios.get(name)
        lines.append(
            f"{name:16s} {value:10.4f} "
            f"{'' if floor is None else f'{floor:10.4f}':>10s} "
            f"{'' if ratio is None else f'{ratio:6.2f}x':>7s}"
        )
    return lines


def to_json_line(result: GanEvalResult) -> str:
    return json.dumps({"generated": result.generated, "floor": result.floor}, sort_keys=True)
