"""The 3D keypoint template: where the 12 PASCAL3D+ keypoints sit on an average CarWorld car.

`run(TemplateConfig)` (`multiview template`) draws `count` cars with CarWorld's own sampler
(carworld/params.py `sample_car_params`, the training distribution, one generator seeded with
`seed`), builds each (carworld/model.py `build_car`) and reads its keypoints, divides them by the
car's length, and takes the per-coordinate median over the cars, made exactly left-right
symmetric (the mean of a left keypoint and its mirrored right twin). The frame is
docs/conventions.md's: +Y up, front +Z, left +X, the ground at y = 0, the car centred in x and z;
the unit is the car's length. `points_m()` scales by the mean length (metres) for PnP.

It also holds a visibility model per keypoint, p(visible | view direction) = sigmoid(w . d + b)
with d the unit vector from the keypoint to the camera (car frame): a logistic regression fitted
on `views` CarWorld renders (random cars and scenes from CarWorld's samplers, 64 px, the
keypoints' own visibility rule: visible v = 2 against occluded v = 1). PnP uses it to reject
cameras under which a keypoint the image does not show would face the camera (render/pnp.py).

Written as OUT/template.json (`KeypointTemplate.save/load`, schema_version) and OUT/README.md
(the card: command, seed, count, spread per keypoint). The shipped copy is
assetgan/assets/keypoint_template/ (`load_shipped_template`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assetgan.assets.taxonomy import KEYPOINT_FLIP, KEYPOINTS
from assetgan.core.errors import AssetganError
from assetgan.core.io_utils import atomic_write_json, atomic_write_text, read_json_object
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.carworld.model import build_car
from assetgan.pipeline.carworld.params import sample_car_params
from assetgan.pipeline.carworld.render import render_batch, single_thread
from assetgan.pipeline.carworld.scene import sample_scene

SCHEMA_VERSION = 1
TEMPLATE_FILE = "template.json"
CARD_FILE = "README.md"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "assets" / "keypoint_template"


@dataclass(frozen=True)
class KeypointTemplate:
    """The 3D keypoint template (module docstring): a file format, template.json."""

    names: tuple[str, ...]  # keypoint names (taxonomy.KEYPOINTS order)
    points: np.ndarray  # [K, 3] robust mean keypoints in car lengths (docs/conventions.md frame)
    mean_length: float  # mean car length (m) of the cars drawn: points_m() = points * this
    spread: np.ndarray  # [K] median 3D distance of a car's keypoint from the template (lengths)
    spread_xyz: np.ndarray  # [K, 3] median absolute deviation per axis (lengths)
    visibility: np.ndarray  # [K, 4] logistic model (w_x, w_y, w_z, b) of p(visible | direction)
    visibility_accuracy: np.ndarray  # [K] share of the fitting views the model gets right
    count: int  # cars drawn
    views: int  # CarWorld renders the visibility model was fitted on
    seed: int  # seed of the car sampler
    command: str  # the command that wrote it
    schema_version: int = SCHEMA_VERSION

    def points_m(self) -> np.ndarray:
        """[K, 3] template keypoints in metres (a car of the mean length)."""
        return self.points * self.mean_length

    def to_json(self) -> dict:
        return {
            "schema_version": self.schema_version,
            "frame": "docs/conventions.md: +Y up, front +Z, left +X, ground y = 0, centred in x, z",
            "unit": "car length",
            "names": list(self.names),
            "points": np.round(self.points, 6).tolist(),
            "mean_length_m": round(self.mean_length, 6),
            "spread": np.round(self.spread, 6).tolist(),
            "spread_xyz": np.round(self.spread_xyz, 6).tolist(),
            "visibility": np.round(self.visibility, 6).tolist(),
            "visibility_accuracy": np.round(self.visibility_accuracy, 4).tolist(),
            "count": self.count,
            "views": self.views,
            "seed": self.seed,
            "command": self.command,
        }

    def save(self, path: str | Path) -> Path:
        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> KeypointTemplate:
        obj = read_json_object(path)
        if obj.get("schema_version") != SCHEMA_VERSION:
            raise AssetganError(
                f"{path}: keypoint template schema_version {obj.get('schema_version')!r}, this "
                f"version reads {SCHEMA_VERSION}: rerun `assetgan multiview template`"
            )
        try:
            template = cls(
                names=tuple(str(n) for n in obj["names"]),
                points=np.asarray(obj["points"], dtype=np.float64),
                mean_length=float(obj["mean_length_m"]),
                spread=np.asarray(obj["spread"], dtype=np.float64),
                spread_xyz=np.asarray(obj["spread_xyz"], dtype=np.float64),
                visibility=np.asarray(obj["visibility"], dtype=np.float64),
                visibility_accuracy=np.asarray(obj["visibility_accuracy"], dtype=np.float64),
                count=int(obj["count"]),
                views=int(obj["views"]),
                seed=int(obj["seed"]),
                command=str(obj["command"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(
                f"{path}: keypoint template field missing or bad: {error}"
            ) from None
        k = len(KEYPOINTS)
        if (
            template.names != KEYPOINTS
            or template.points.shape != (k, 3)
            or template.visibility.shape != (k, 4)
        ):
            raise AssetganError(
                f"{path}: keypoint template must list the {k} taxonomy keypoints in order with "
                f"[K, 3] points and [K, 4] visibility, got {len(template.names)} names, points "
                f"{list(template.points.shape)}, visibility {list(template.visibility.shape)}"
            )
        if not template.mean_length > 0:
            raise AssetganError(f"{path}: mean_length_m must be > 0, got {template.mean_length}")
        return template


@dataclass(frozen=True)
class TemplateConfig:
    """One `multiview template` run."""

    out: Path  # directory for template.json and README.md (the card)
    count: int = 2000  # CarWorld cars drawn (training distribution) for the keypoint positions
    views: int = 768  # CarWorld renders (64 px) for the visibility model
    seed: int = 0  # seed of CarWorld's car and scene samplers

    def to_dict(self) -> dict:
        return {"out": str(self.out), "count": self.count, "views": self.views, "seed": self.seed}

    @classmethod
    def from_dict(cls, obj: dict) -> TemplateConfig:
        return cls(
            out=Path(obj["out"]), count=int(obj["count"]), views=int(obj["views"]),
            seed=int(obj["seed"]),
        )  # fmt: skip


def car_keypoints(count: int, seed: int, progress: Progress | None = None):
    """(keypoints [count, K, 3] in metres, lengths [count]) of `count` CarWorld cars."""
    if count < 1:
        raise AssetganError(f"template count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    keypoints = np.zeros((count, len(KEYPOINTS), 3))
    lengths = np.zeros(count)
    for index in range(count):
        params = sample_car_params(rng)
        keypoints[index] = build_car(params).keypoints.double().numpy()
        lengths[index] = params.length
        emit(progress, index + 1, count, task="cars")
    return keypoints, lengths


def robust_template(keypoints: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """keypoints [N, K, 3] (m), lengths [N] -> (template [K, 3] in lengths, the per-car normalised
    keypoints [N, K, 3]): coordinate-wise median, then left/right averaged with mirrored twins."""
    normalised = keypoints / lengths[:, None, None]
    median = np.median(normalised, axis=0)
    mirror = np.array([-1.0, 1.0, 1.0])
    symmetric = 0.5 * (median + median[list(KEYPOINT_FLIP)] * mirror)
    return symmetric, normalised


def view_visibility(
    views: int, seed: int, progress: Progress | None = None, chunk: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """(directions [N, K, 3] from each keypoint to the camera, car frame, unit; visibility [N, K]
    in {0, 1, 2}) of `views` CarWorld renders at 64 px (random cars and scenes)."""
    if views < 1:
        raise AssetganError(f"template views must be >= 1, got {views}")
    rng = np.random.default_rng([seed, 1])  # its own stream: count does not change the views
    directions = np.zeros((views, len(KEYPOINTS), 3))
    visibility = np.zeros((views, len(KEYPOINTS)), dtype=np.int64)
    with single_thread():
        for first in range(0, views, chunk):
            cars, scenes = [], []
            for _ in range(first, min(first + chunk, views)):
                params = sample_car_params(rng)
                cars.append(build_car(params))
                scenes.append(sample_scene(rng, params, degrade=0.0))
            rendered = render_batch(cars, scenes, 64, supersample=1)
            for b, (car, camera) in enumerate(zip(cars, rendered.cameras, strict=True)):
                to_eye = camera.eye.double().numpy()[None] - car.keypoints.double().numpy()
                directions[first + b] = to_eye / np.linalg.norm(to_eye, axis=-1, keepdims=True)
                visibility[first + b] = rendered.keypoints[b, :, 2]
            emit(progress, min(first + chunk, views), views, task="views")
    return directions, visibility


def fit_visibility(
    directions: np.ndarray,  # [N, K, 3] unit vectors keypoint -> camera
    visibility: np.ndarray,  # [N, K] COCO visibility 0/1/2 (0 = outside the image: not used)
    l2: float = 1e-3,  # ridge on the weights
    steps: int = 50,  # Newton steps
) -> tuple[np.ndarray, np.ndarray]:
    """Per keypoint a logistic regression of visible (2) vs occluded (1) on the direction:
    (model [K, 4] = (w, b), accuracy [K] on the data it was fitted to). A keypoint and its
    mirror twin share their data (x mirrored), so the models are exact mirror images."""
    count = directions.shape[1]
    model = np.zeros((count, 4))
    accuracy = np.zeros(count)
    mirror = np.array([-1.0, 1.0, 1.0])
    for k in range(count):
        twin = KEYPOINT_FLIP[k]
        pooled_dirs = np.concatenate([directions[:, k], directions[:, twin] * mirror])
        pooled_vis = np.concatenate([visibility[:, k], visibility[:, twin]])
        used = pooled_vis > 0
        features = np.concatenate([pooled_dirs[used], np.ones((int(used.sum()), 1))], axis=1)
        target = (pooled_vis[used] == 2).astype(np.float64)
        weights = np.zeros(4)
        for _ in range(steps):
            prob = 1.0 / (1.0 + np.exp(-features @ weights))
            gradient = features.T @ (prob - target) + l2 * weights
            hessian = (features * (prob * (1 - prob))[:, None]).T @ features + l2 * np.eye(4)
            weights = weights - np.linalg.solve(hessian, gradient)
        model[k] = weights
        accuracy[k] = float((((features @ weights) > 0) == (target > 0.5)).mean())
    return model, accuracy


def render_card(template: KeypointTemplate) -> str:
    """The model card (README.md) of a template."""
    rows = []
    for index, name in enumerate(template.names):
        point, spread, mad = (
            template.points[index],
            template.spread[index],
            template.spread_xyz[index],
        )
        cm = spread * template.mean_length * 100.0
        rows.append(
            f"| {name} | {point[0]:+.4f} | {point[1]:+.4f} | {point[2]:+.4f} | {spread:.4f} "
            f"({cm:.1f} cm) | {mad[0]:.4f} / {mad[1]:.4f} / {mad[2]:.4f} | "
            f"{template.visibility_accuracy[index]:.3f} |"
        )
    return "\n".join(
        [
            "# Keypoint template (12 PASCAL3D+ car keypoints)",
            "",
            "Where the keypoints sit on an average CarWorld car: the coordinate-wise median over "
            f"{template.count} cars drawn from CarWorld's training distribution, each divided by "
            "its length, made left-right symmetric. Used by PnP (assetgan/render/pnp.py) to find "
            "cameras from predicted keypoints (docs/multiview.md).",
            "",
            f"- command: `{template.command}`",
            f"- seed: {template.seed}; cars: {template.count}",
            f"- mean car length: {template.mean_length:.4f} m (points x this = metres)",
            "- frame (docs/conventions.md): +Y up, front +Z, left +X, ground y = 0, centred in "
            "x and z; unit: car length",
            "- spread: median 3D distance of a car's keypoint from the template (length units and "
            "cm at the mean length); per axis: median absolute deviation x / y / z",
            f"- visibility: logistic regression of visible vs occluded on the view direction, "
            f"fitted on {template.views} CarWorld renders at 64 px (seed stream [seed, 1]); "
            "`vis acc` = share of those views it classifies right",
            "",
            "| keypoint | x | y | z | spread | MAD x / y / z | vis acc |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def run(config: TemplateConfig, progress: Progress | None = None) -> KeypointTemplate:
    """Compute the template of `config.count` CarWorld cars; write OUT/template.json and
    OUT/README.md."""
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise AssetganError(f"--out {out} is a file: give a directory for template.json")
    keypoints, lengths = car_keypoints(config.count, config.seed, progress)
    points, normalised = robust_template(keypoints, lengths)
    deviation = normalised - points[None]
    visibility, accuracy = fit_visibility(*view_visibility(config.views, config.seed, progress))
    template = KeypointTemplate(
        names=KEYPOINTS,
        points=points,
        mean_length=float(lengths.mean()),
        spread=np.median(np.linalg.norm(deviation, axis=-1), axis=0),
        spread_xyz=np.median(np.abs(deviation), axis=0),
        visibility=visibility,
        visibility_accuracy=accuracy,
        count=config.count,
        views=config.views,
        seed=config.seed,
        command=f"assetgan multiview template --count {config.count} --views {config.views} "
        f"--seed {config.seed} --out {config.out}",
    )
    template.save(out / TEMPLATE_FILE)
    atomic_write_text(out / CARD_FILE, render_card(template))
    return template


def load_shipped_template() -> KeypointTemplate:
    """The template shipped in assetgan/assets/keypoint_template/."""
    return KeypointTemplate.load(SHIPPED_DIR / TEMPLATE_FILE)
