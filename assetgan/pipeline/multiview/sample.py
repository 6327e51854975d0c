"""run(MultiviewSampleConfig) -> MultiviewSet: the same cars in many views from the generator,
labeled by the interpreter, with cameras found from the labels (GANverse3D, ANCHORS.md).

View codes x content codes: image (content j, view i) has ws[:K] from view seed i and ws[K:]
from content seed j (K = `view_layers`: the generator's view-code measurement, `gan viewcode`'s
viewcode.json `best_k`, unless given). Each image is labeled by the interpreter (car_20 part
ids by the ensemble's vote, JS uncertainty and the image score, the 12 keypoints); the car mask
is the union of car parts. Its camera comes from PnP of its keypoints with v >= `pnp_visibility`
against the shipped keypoint template (render/pnp.py), and each view code's camera is the robust
mean over its images (pipeline/multiview/cameras.py).

Determinism: a content code's views are computed together in batches of `batch` views, so an
image's bytes depend on its content code only, never on shards or resumes. Every file is written
atomically and meta/cJJJJJ.json last; a rerun skips content codes whose meta exists. Once every
content code is present, `finalize` (a pure function of the metas) applies the drop rules, in
this order, and writes cameras.json, manifest.jsonl and the summary in multiview.json:
1. mask: the car covers less than `min_mask` of the image (GANverse3D drops masks under 10%);
2. uncertain: the `drop_uncertain` share of the remaining images with the highest image score;
3. view: the image's own camera is more than `max_view_deviation` degrees of azimuth away from
   its view code's mean camera (the view code did not hold the view for this content); off by
   default (180), since per-image cameras from interpreter keypoints are noisy (docs/multiview.md).
Images without a camera of their own (too few keypoints) are kept and use the view code's.

Identity across views (`identity_figures`), measured on every image that passes the mask rule:
paint (body colour distance within a content code vs within a view code, and retrieval of the
content code from another view), size and part layout (does a content code keep its rank in
mask area and in each car_12 part's share of the car across view codes: mean Spearman
correlation over view-code pairs).

    OUT/multiview.json           kind, schema_version, settings, hashes, names; summary (final)
    OUT/images/cJJJJJ_vIII.png   RGB uint8
    OUT/parts/cJJJJJ_vIII.png    car_20 ids (the ensemble's vote)
    OUT/latents/views.npy        float32 [views, num_ws, w_dim]: the view seeds' ws
    OUT/latents/cJJJJJ.npy       float32 [num_ws, w_dim]: content seed j's ws
    OUT/meta/cJJJJJ.json         per view: score, mask, keypoints, body colour, areas, camera
    OUT/cameras.json             per view code: robust mean orbit + its Camera (final step)
    OUT/manifest.jsonl           one line per image: files, kept, reason (final step)
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import torch

from assetgan.assets.taxonomy import CAR_5, CAR_12, car20_to_car5, car20_to_car12
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_same_header,
    read_json_object,
)
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.interpreter.checkpoint import load_interpreter
from assetgan.pipeline.interpreter.checks import check_generator_match
from assetgan.pipeline.interpreter.evaluate import visibility_thresholds
from assetgan.pipeline.interpreter.predict import decode_keypoints, image_score, predict
from assetgan.pipeline.multiview.cameras import mean_cameras
from assetgan.pipeline.multiview.template import SHIPPED_DIR, TEMPLATE_FILE, KeypointTemplate
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.sampling import crossover, ws_from_seeds
from assetgan.render.pnp import OrbitMean, PnPResult, PnPSettings, angle_difference, solve_pnp

SCHEMA_VERSION = 1
KIND = "assetgan_multiview_set"
SEED_STRIDE = (
    1_000_003  # seed s: view seeds s * SEED_STRIDE + i, content seeds + CONTENT_OFFSET + j
)
CONTENT_OFFSET = 500_000
BODY_5 = CAR_5.index("body")


@dataclass(frozen=True)
class MultiviewSettings:
    """What a multi-view set is: the same settings, models and template give the same files."""

    views: int = 12  # view codes (view seeds)
    contents: int = 64  # content codes (content seeds)
    view_layers: int | None = None  # K leading ws from the view code; None = viewcode.json best_k
    seed: int = 0  # seeds: view i = seed * SEED_STRIDE + i, content j = ... + CONTENT_OFFSET + j
    psi: float = 0.7  # truncation psi of both codes
    truncation_cutoff: int | None = 8  # truncate ws[:, :cutoff] only (as dataset generate)
    batch: int = 4  # views per forward (part of the identity: it changes rounding)
    fov_y: float = 32.0  # PnP field of view (degrees): CarWorld draws 22..42
    pnp_visibility: int = 1  # PnP uses keypoints with v >= this (1: also the weak peaks)
    min_mask: float = 0.1  # drop images whose car mask covers less of the image
    drop_uncertain: float = 0.1  # drop this share of the most uncertain images (image score)
    max_view_deviation: float = 180.0  # drop images whose camera is this far (azimuth) from
    # the view code's mean camera; 180 keeps all
    top_fraction: float = 0.1  # image score = mean JS of this top share of pixels

    def validate(self) -> MultiviewSettings:
        checks = [
            (self.views >= 2, f"--views must be >= 2, got {self.views}"),
            (self.contents >= 2, f"--contents must be >= 2, got {self.contents}"),
            (self.view_layers is None or self.view_layers >= 1, "--view-layers must be >= 1"),
            (0 <= self.seed and self.seed * SEED_STRIDE + SEED_STRIDE < 2**32, "--seed too big"),
            (self.batch >= 1, f"batch must be >= 1, got {self.batch}"),
            (0.0 <= self.min_mask < 1.0, f"min_mask must be in [0, 1), got {self.min_mask}"),
            (0.0 <= self.drop_uncertain < 1.0, "drop_uncertain must be in [0, 1)"),
            (0.0 < self.max_view_deviation <= 180.0, "max_view_deviation must be in (0, 180]"),
            (0.0 < self.top_fraction <= 1.0, "top_fraction must be in (0, 1]"),
            (0.0 < self.fov_y < 180.0, f"fov_y must be in (0, 180), got {self.fov_y}"),
            (self.pnp_visibility in (1, 2), "pnp_visibility must be 1 or 2"),
        ]
        for ok, message in checks:
            if not ok:
                raise AssetganError(f"multiview settings: {message}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, obj: dict[str, Any], where: str = "multiview settings") -> MultiviewSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        if set(obj) != names:
            raise AssetganError(
                f"{where}: expected the fields {sorted(names)}, got {sorted(obj)}; "
                "sample the set again with this version of assetgan"
            )
        return cls(**obj)

    def view_seeds(self) -> list[int]:
        return [self.seed * SEED_STRIDE + i for i in range(self.views)]

    def content_seed(self, content: int) -> int:
        return self.seed * SEED_STRIDE + CONTENT_OFFSET + content


@dataclass(frozen=True)
class MultiviewSampleConfig:
    """One `multiview sample` run (one shard of a set)."""

    generator: Path  # generator checkpoint (.safetensors) the interpreter was trained on
    interpreter: Path  # Style Interpreter checkpoint with a keypoint head
    out: Path  # the set's directory (shards of one set share it)
    settings: MultiviewSettings = field(default_factory=MultiviewSettings)  # what the set is
    viewcode: Path | None = None  # viewcode.json for K; None = GENERATOR_DIR/viewcode/viewcode.json
    template: Path | None = None  # keypoint template.json; None = the shipped one
    shard: tuple[int, int] = (0, 1)  # (index, count): this run writes content range `index`
    device: Device = Device.auto  # where the generator and interpreter run


def image_name(content: int, view: int) -> str:
    return f"c{content:05d}_v{view:03d}"


def content_files(content: int, views: int) -> dict[str, Any]:
    """Files of one content code, relative to the set directory."""
    return {
        "meta": f"meta/c{content:05d}.json",
        "w": f"latents/c{content:05d}.npy",
        "images": [f"images/{image_name(content, v)}.png" for v in range(views)],
        "parts": [f"parts/{image_name(content, v)}.png" for v in range(views)],
    }


def shard_contents(contents: int, shard: tuple[int, int]) -> range:
    index, count = shard
    if not 0 <= index < count:
        raise AssetganError(f"shard {index}/{count}: need 0 <= index < count")
    return range(index * contents // count, (index + 1) * contents // count)


def resolve_view_layers(
    settings: MultiviewSettings, generator: Path, viewcode: Path | None, num_ws: int
) -> int:
    """K: the setting, else best_k of the generator's view-code measurement."""
    if settings.view_layers is not None:
        k = settings.view_layers
    else:
        path = viewcode or Path(generator).parent / "viewcode" / "viewcode.json"
        if not Path(path).is_file():
            raise AssetganError(
                f"{path}: no view-code measurement for {generator}; run `assetgan gan viewcode` "
                "or pass --view-layers K"
            )
        try:
            k = int(read_json_object(path)["best_k"])
        except (KeyError, TypeError, ValueError):
            raise AssetganError(
                f"{path}: no integer best_k; rerun `assetgan gan viewcode`"
            ) from None
    if not 1 <= k < num_ws:
        raise AssetganError(
            f"view layers K = {k} must be in 1..{num_ws - 1} (the G has {num_ws} ws)"
        )
    return k


@dataclass(frozen=True)
class MultiviewSet:
    """A multi-view set directory: multiview.json's header, and its summary once finalized."""

    schema_version: ClassVar[int] = SCHEMA_VERSION
    root: Path  # the set directory
    settings: MultiviewSettings  # what the set is (view_layers resolved)
    generator_sha256: str  # file_sha256 of the generator checkpoint
    interpreter_sha256: str  # file_sha256 of the interpreter checkpoint
    template_sha256: str  # file_sha256 of the keypoint template used by PnP
    num_ws: int  # the generator's ws per image
    image_size: tuple[int, int]  # (H, W) px
    class_names: tuple[str, ...]  # part names by id (car_20)
    keypoint_names: tuple[str, ...]  # keypoint names in order
    summary: dict[str, Any] | None = None  # counts, drops, identity, cameras; None until final
    present: int = 0  # content codes whose meta exists (counted by load, never saved)
    written: int = 0  # content codes written by the run that returned this

    @property
    def finished(self) -> bool:
        return self.summary is not None

    def header(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "schema_version": SCHEMA_VERSION,
            "settings": self.settings.to_dict(),
            "generator_sha256": self.generator_sha256,
            "interpreter_sha256": self.interpreter_sha256,
            "template_sha256": self.template_sha256,
            "num_ws": self.num_ws,
            "image_size": list(self.image_size),
            "class_names": list(self.class_names),
            "keypoint_names": list(self.keypoint_names),
        }

    def save(self) -> Path:
        """Write root/multiview.json (with the summary when there is one), or refuse when the
        directory holds a set made with other settings or models."""
        path = self.root / "multiview.json"
        header = self.header()
        if path.is_file():
            existing = {k: v for k, v in read_json_object(path).items() if k != "summary"}
            what = "a multi-view set made with different settings or models"
            check_same_header(path, existing, header, what, "use a new --out")
        document = header if self.summary is None else {**header, "summary": self.summary}
        return atomic_write_json(path, document)

    @classmethod
    def load(cls, root: str | Path) -> MultiviewSet:
        root = Path(root)
        path = root / "multiview.json"
        if not path.is_file():
            raise AssetganError(
                f"{root}: not a multi-view set (no multiview.json); make one with "
                "`assetgan multiview sample`"
            )
        document = read_json_object(path)
        if document.get("kind") != KIND or document.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(f"{path}: not a schema-{SCHEMA_VERSION} {KIND}")
        try:
            settings = MultiviewSettings.from_dict(document["settings"], f"{path}: settings")
            loaded = cls(
                root=root,
                settings=settings,
                generator_sha256=str(document["generator_sha256"]),
                interpreter_sha256=str(document["interpreter_sha256"]),
                template_sha256=str(document["template_sha256"]),
                num_ws=int(document["num_ws"]),
                image_size=tuple(int(v) for v in document["image_size"]),
                class_names=tuple(document["class_names"]),
                keypoint_names=tuple(document["keypoint_names"]),
                summary=document.get("summary"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(f"{path}: bad or missing field ({error})") from None
        present = sum(
            (root / content_files(j, settings.views)["meta"]).is_file()
            for j in range(settings.contents)
        )
        return dataclasses.replace(loaded, present=present)

    def cameras(self) -> dict[int, OrbitMean]:
        """The view codes' mean cameras from cameras.json (after the final step)."""
        document = read_json_object(self.root / "cameras.json")
        return {int(k): OrbitMean.from_json(v["orbit"]) for k, v in document["views"].items()}

    def manifest(self) -> list[dict[str, Any]]:
        """manifest.jsonl's records (after the final step)."""
        path = self.root / "manifest.jsonl"
        if not path.is_file():
            raise AssetganError(f"{path}: missing; the set is not finished (run every shard)")
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def image_record(
    image: np.ndarray,  # [H, W, 3] uint8
    part_ids: np.ndarray,  # [H, W] car_20
    js: np.ndarray,  # [H, W] JS uncertainty
    keypoints: np.ndarray,  # [K, 4] (x, y, v, peak)
    template: KeypointTemplate,
    settings: MultiviewSettings,
) -> dict[str, Any]:
    """One image's meta: score, mask share, keypoints, body colour, car_12 areas, PnP camera."""
    car = part_ids > 0
    body = car20_to_car5(part_ids) == BODY_5
    areas = np.bincount(car20_to_car12(part_ids).ravel(), minlength=len(CAR_12)) / part_ids.size
    visible = keypoints[:, :3].astype(np.float64)
    visible[:, 2] = np.where(visible[:, 2] >= settings.pnp_visibility, 2, 0)
    camera: dict[str, Any] | None = None
    try:
        result: PnPResult = solve_pnp(
            visible,
            template.points_m(),
            part_ids.shape,
            PnPSettings(fov_y=settings.fov_y),
            template.visibility,
        )
        camera = {k: v for k, v in result.to_json().items() if k != "camera"}
    except AssetganError:  # too few keypoints: no camera of its own
        camera = None
    return {
        "score": round(image_score(js, settings.top_fraction), 6),
        "mask": round(float(car.mean()), 6),
        "keypoints": {
            "xyv": [
                [round(float(x), 3), round(float(y), 3), int(v)] for x, y, v in keypoints[:, :3]
            ],
            "peak": [round(float(p), 4) for p in keypoints[:, 3]],
        },
        "body_rgb": [round(float(c), 5) for c in image[body].mean(0) / 255.0]
        if body.any()
        else None,
        "areas_car12": [round(float(a), 6) for a in areas],
        "camera": camera,
    }


def write_content(
    root: Path,
    content: int,
    content_ws: np.ndarray,  # [num_ws, w_dim]
    images: np.ndarray,  # [views, H, W, 3] uint8
    part_ids: np.ndarray,  # [views, H, W]
    records: list[dict[str, Any]],  # image_record per view
) -> dict[str, Any]:
    """Write one content code's files (meta last) and return its meta."""
    files = content_files(content, len(records))
    for view in range(len(records)):
        atomic_write_png(root / files["images"][view], np.ascontiguousarray(images[view]))
        atomic_write_png(root / files["parts"][view], np.ascontiguousarray(part_ids[view]))
    atomic_write_bytes(root / files["w"], _npy_bytes(content_ws.astype(np.float32)))
    meta = {"content": content, "files": files, "views": records}
    atomic_write_json(root / files["meta"], meta)
    return meta


def run(config: MultiviewSampleConfig, progress: Progress | None = None) -> MultiviewSet:
    """Sample (the missing content codes of) a shard; finalize when every content is present.
    Progress: images written by this run out of those it will write."""
    settings = config.settings.validate()
    contents = shard_contents(settings.contents, config.shard)
    device = resolve_device(config.device)
    interpreter = load_interpreter(config.interpreter, device=device)
    if interpreter.keypoints is None:
        raise AssetganError(
            f"{config.interpreter}: this interpreter has no keypoint head; cameras come from "
            "keypoints: train one on annotations with keypoints"
        )
    generator = load_generator(config.generator, device=device)
    generator_sha = file_sha256(config.generator)
    check_generator_match(interpreter, generator_sha, config.interpreter, config.generator)
    template_path = config.template or SHIPPED_DIR / TEMPLATE_FILE
    template = KeypointTemplate.load(template_path)
    num_ws = generator.num_ws
    settings = dataclasses.replace(
        settings,
        view_layers=resolve_view_layers(settings, config.generator, config.viewcode, num_ws),
    )
    root = Path(config.out)
    root.mkdir(parents=True, exist_ok=True)
    header = MultiviewSet(
        root=root,
        settings=settings,
        generator_sha256=generator_sha,
        interpreter_sha256=file_sha256(config.interpreter),
        template_sha256=file_sha256(template_path),
        num_ws=num_ws,
        image_size=tuple(interpreter.config.geometry.image_size),
        class_names=tuple(interpreter.config.class_names),
        keypoint_names=tuple(interpreter.config.keypoint_names),
    )
    existing = root / "multiview.json"
    if existing.is_file():
        header = dataclasses.replace(header, summary=read_json_object(existing).get("summary"))
    header.save()

    with torch.no_grad():
        view_ws = ws_from_seeds(
            generator, settings.view_seeds(), settings.psi, settings.truncation_cutoff
        )
    atomic_write_bytes(root / "latents" / "views.npy", _npy_bytes(view_ws.cpu().numpy()))
    todo = [j for j in contents if not (root / content_files(j, settings.views)["meta"]).is_file()]
    thresholds = visibility_thresholds(interpreter)
    total, written = len(todo) * settings.views, 0
    emit(progress, 0, total, task="images")
    for content in todo:
        with torch.no_grad():
            content_ws = ws_from_seeds(
                generator,
                [settings.content_seed(content)],
                settings.psi,
                settings.truncation_cutoff,
            )
        images, part_ids, records = [], [], []
        for first in range(0, settings.views, settings.batch):
            views = range(first, min(first + settings.batch, settings.views))
            mixed = crossover(
                view_ws[list(views)], content_ws.expand(len(views), -1, -1), settings.view_layers
            )
            prediction = predict(interpreter, generator, mixed)
            for index in range(len(views)):
                keypoints = decode_keypoints(prediction.heatmaps[index], *thresholds)
                records.append(
                    image_record(
                        prediction.images[index],
                        prediction.part_ids[index],
                        prediction.uncertainty[index],
                        keypoints,
                        template,
                        settings,
                    )
                )
                written += 1
                emit(progress, written, total, task="images")
            images.append(prediction.images)
            part_ids.append(prediction.part_ids)
        write_content(
            root,
            content,
            content_ws[0].cpu().numpy(),
            np.concatenate(images),
            np.concatenate(part_ids),
            records,
        )
    loaded = MultiviewSet.load(root)
    if loaded.present == settings.contents:
        loaded = finalize(loaded)
    return dataclasses.replace(loaded, written=len(todo))


def finalize(multiview: MultiviewSet) -> MultiviewSet:
    """Drop rules, cameras.json, manifest.jsonl and the summary (module docstring); a pure
    function of the metas."""
    settings, root = multiview.settings, multiview.root
    metas = [
        read_json_object(root / content_files(j, settings.views)["meta"])
        for j in range(settings.contents)
    ]
    records = [(m["content"], view, r) for m in metas for view, r in enumerate(m["views"])]
    reason = ["" for _ in records]
    for index, (_, _, record) in enumerate(records):  # 1. mask
        if record["mask"] < settings.min_mask:
            reason[index] = "mask"
    candidates = [i for i in range(len(records)) if not reason[i]]  # 2. uncertainty
    dropped = int(np.floor(settings.drop_uncertain * len(candidates)))
    by_score = sorted(candidates, key=lambda i: (-records[i][2]["score"], i))
    for index in by_score[:dropped]:
        reason[index] = "uncertain"
    passing = [i for i in range(len(records)) if not reason[i]]
    orbits = [_orbit(records[i][2]["camera"]) for i in passing]
    means = mean_cameras(orbits, [records[i][1] for i in passing])
    for index, orbit in zip(passing, orbits, strict=True):  # 3. view
        view = records[index][1]
        if orbit is not None and view in means:
            if angle_difference(orbit.azimuth, means[view].azimuth) > settings.max_view_deviation:
                reason[index] = "view"
    kept = [i for i in range(len(records)) if not reason[i]]
    means = mean_cameras(
        [_orbit(records[i][2]["camera"]) for i in kept], [records[i][1] for i in kept]
    )
    height, width = multiview.image_size
    cameras = {
        str(view): {
            "orbit": orbit.to_json(),
            "camera": orbit.camera(settings.fov_y, (height, width)).to_json(),
        }
        for view, orbit in means.items()
    }
    atomic_write_json(
        root / "cameras.json",
        {"schema_version": SCHEMA_VERSION, "fov_y": settings.fov_y, "views": cameras},
    )
    lines = []
    for index, (content, view, record) in enumerate(records):
        files = content_files(content, settings.views)
        lines.append(
            json.dumps(
                {
                    "content": content,
                    "view": view,
                    "image": files["images"][view],
                    "parts": files["parts"][view],
                    "w": files["w"],
                    "score": record["score"],
                    "mask": record["mask"],
                    "has_camera": record["camera"] is not None,
                    "kept": not reason[index],
                    "reason": reason[index],
                },
                sort_keys=True,
            )
        )
    atomic_write_text(root / "manifest.jsonl", "".join(line + "\n" for line in lines))
    passing_mask = [i for i in range(len(records)) if reason[i] != "mask"]
    summary = {
        "images": len(records),
        "kept": len(kept),
        "dropped": {name: reason.count(name) for name in ("mask", "uncertain", "view")},
        "without_camera": sum(records[i][2]["camera"] is None for i in range(len(records))),
        "view_codes_with_camera": len(means),
        "identity": {  # nan (not measurable) is written as null
            name: None if not np.isfinite(value) else round(value, 6)
            for name, value in identity_figures(
                [records[i] for i in passing_mask], settings.contents, settings.views
            ).items()
        },
    }
    finished = dataclasses.replace(multiview, summary=summary)
    finished.save()
    return finished


def _orbit(camera: dict[str, Any] | None) -> SimpleNamespace | None:
    """An image's orbit parameters (the attributes mean_orbit reads), None without a camera."""
    if camera is None:
        return None
    return SimpleNamespace(**{**camera, "target": np.asarray(camera["target"], dtype=float)})


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long vectors (ties share their mean rank; nan
    when one is constant)."""
    from scipy.stats import rankdata

    ranks_a, ranks_b = rankdata(a), rankdata(b)
    if ranks_a.std() == 0 or ranks_b.std() == 0:
        return float("nan")
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


def identity_figures(
    records: list[tuple[int, int, dict[str, Any]]],  # (content, view, meta record)
    contents: int,
    views: int,
) -> dict[str, float]:
    """How well a content code keeps its identity across view codes (module docstring): paint
    identity = 1 - (mean body-colour distance, same content, other view) / (same view, other
    content), paint retrieval (chance = 1 / contents), and mean Spearman correlations over view
    pairs of the mask area (size) and of each car_12 part's share of the car (layout)."""
    colour = np.full((contents, views, 3), np.nan)
    area = np.full((contents, views), np.nan)
    shares = np.full((contents, views, len(CAR_12) - 1), np.nan)
    for content, view, record in records:
        if record["body_rgb"] is not None:
            colour[content, view] = record["body_rgb"]
        areas = np.asarray(record["areas_car12"])
        area[content, view] = record["mask"]
        shares[content, view] = areas[1:] / max(areas[1:].sum(), 1e-9)
    pairwise = np.linalg.norm(colour[:, :, None, None] - colour[None, None], axis=-1)
    same_content = np.eye(contents, dtype=bool)[:, None, :, None]
    same_view = np.eye(views, dtype=bool)[None, :, None, :]
    finite = np.isfinite(pairwise)
    within = pairwise[same_content & ~same_view & finite]
    across = pairwise[~same_content & same_view & finite]
    candidates = np.where(same_view | ~finite, np.inf, pairwise).reshape(contents, views, -1)
    nearest = candidates.argmin(-1) // views
    usable = np.isfinite(candidates.min(-1)) & np.isfinite(colour[..., 0])
    hits = nearest == np.arange(contents)[:, None]

    def rank_agreement(values: np.ndarray) -> float:  # [contents, views]
        scores = []
        for a in range(views):
            for b in range(a + 1, views):
                both = np.isfinite(values[:, a]) & np.isfinite(values[:, b])
                if both.sum() >= 3:
                    scores.append(_spearman(values[both, a], values[both, b]))
        scores = [s for s in scores if np.isfinite(s)]
        return float(np.mean(scores)) if scores else float("nan")

    layout = [rank_agreement(shares[..., k]) for k in range(shares.shape[-1])]
    layout = [v for v in layout if np.isfinite(v)]
    return {
        "paint_identity": float(1.0 - within.mean() / across.mean())
        if within.size and across.size and across.mean() > 0
        else float("nan"),
        "paint_retrieval": float(hits[usable].mean()) if usable.any() else float("nan"),
        "paint_retrieval_chance": 1.0 / contents,
        "size_rank_agreement": rank_agreement(area),
        "layout_rank_agreement": float(np.mean(layout)) if layout else float("nan"),
    }
