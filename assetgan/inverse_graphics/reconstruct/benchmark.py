"""Issue 11 section 5: reconstruction rows side by side on a CarWorld split rendered with
--meshes (benchmarks/reconstruct.py is the thin script; docs/reconstruct.md the results).

Rows: any number of trained networks (their own camera: the camera head) and optionally the
template row (c): the untrained network's mean shape (offsets 0: the car template), its 3D
keypoints the shipped keypoint template's, posed by the PnP camera of the shipped segmenter's
keypoints against that template (pipeline/multiview/cameras.py, as benchmarks/cameras.py).
Its texture (flow into the input) and parts come from the untrained decoder: a floor, not a fit.

Figures per row on the first `n` images (frames: docs/conventions.md; the reconstruction and
the ground-truth GLB are both in the car frame, which `frame_check` tests by rendering the GLB
in the true camera against the split's own label masks):
- input view, in the true camera and in the row's own camera: evaluate.ViewScores (silhouette
  IoU, part mIoU car_20 / car_12 / car_5, PCK@0.1);
- unseen views (input azimuth + 45, 90, 135, 180; elevation, distance, fov and target of the
  image's orbit camera): silhouette IoU and part mIoU against the ground-truth mesh rendered the
  same way by the same rasterizer (ids from the GLB's part nodes);
- 3D: Chamfer-L2 (mean squared nearest-neighbour distance, both ways, summed) between surface
  samples of prediction and truth, each centred on its bounding-box centre and scaled to unit
  length along z; 3D keypoint error and wheel-centre error in % of the true car's length (its
  mesh's extent along z), in the car frame without alignment. Predicted wheel centres: per
  quadrant (sign of x, sign of z) the area-weighted centroid of the reconstruction's faces
  labelled tire / wheelhub (asset_files.reconstruction_asset, side-facing ones), the wheel
  keypoint where a quadrant has none (counted as `wheel_from_keypoints`). True: meta wheels.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assetgan.assets.taxonomy import PART_ID, colorize
from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.images import atomic_write_png, contact_sheet
from assetgan.core.io_utils import atomic_write_json
from assetgan.core.progress import Progress, emit
from assetgan.inverse_graphics.reconstruct.asset_files import reconstruction_asset
from assetgan.inverse_graphics.reconstruct.data import ArrayData, load_carworld
from assetgan.inverse_graphics.reconstruct.evaluate import ViewScores, predicted_camera
from assetgan.inverse_graphics.reconstruct.model import (
    Reconstruction,
    ReconstructNet,
    ReconstructNetConfig,
    load_reconstructor,
)
from assetgan.inverse_graphics.reconstruct.pose import (
    SHIPPED_SEGMENTER,
    CameraSource,
    detect_keypoints,
    input_cameras,
    pnp_cameras,
)
from assetgan.inverse_graphics.reconstruct.render import (
    RenderedView,
    render_reconstruction,
    render_views,
)
from assetgan.inverse_graphics.reconstruct.sheet import on_white, part_picture
from assetgan.inverse_graphics.reconstruct.template import Template
from assetgan.render.asset import CarAsset, read_part_glb
from assetgan.render.backends import TorchBackend
from assetgan.render.camera import Camera, stack_mvp, transform_points
from assetgan.render.mesh import Mesh
from assetgan.render.scene import render_shaded
from assetgan.render.shading import to_image

TEMPLATE_ROW = "c"
# Used for the template row where PnP finds no camera: CarWorld's mean orbit, azimuth 0.
FALLBACK_CAMERA = (0.0, 17.5, 10.0, 32.0, 0.0, 0.7, 0.0)
WHEEL_PARTS = (PART_ID["tire"], PART_ID["wheelhub"])
QUADRANTS = ((1, 1), (-1, 1), (1, -1), (-1, -1))  # (sign x, sign z): wheel keypoint / pivot order
SHEET_AZIMUTHS = (0.0, 90.0, 180.0, 270.0)  # turntables.png: input azimuth + these


@dataclass(frozen=True)
class ReconstructBenchConfig:
    """What benchmarks/reconstruct.py compares, on which images, and where it writes."""

    split: Path  # CarWorld split rendered with --meshes (meshes/ID.glb, meta/ID.json)
    out: Path  # directory: reconstruct_bench.json, turntables.png
    models: tuple[tuple[str, Path], ...] = ()  # (row name, reconstruct_net checkpoint) rows
    template: bool = True  # add the template row (c), posed by PnP
    n: int | None = None  # first n images of the split (None: all)
    segmenter: Path = SHIPPED_SEGMENTER  # keypoint detector of the template row's PnP
    pnp_fov: float = 32.0  # field of view PnP assumes (degrees; a generator image's)
    unseen_azimuths: tuple[float, ...] = (45.0, 90.0, 135.0, 180.0)  # offsets from the input
    sheet_cars: int = 16  # cars in turntables.png (0: no sheet)
    sheet_size: int = 96  # pixels per sheet tile
    surface_samples: int = 2000  # points per mesh for Chamfer
    batch: int = 25  # images per forward / render batch
    seed: int = 0  # the template row's untrained network and the surface samples
    device: Device = Device.cpu  # torch device of networks and renders

    def validate(self) -> ReconstructBenchConfig:
        if not self.models and not self.template:
            raise AssetganError(
                "nothing to compare: give --model NAME=PATH and/or the template row"
            )
        names = [name for name, _ in self.models] + ([TEMPLATE_ROW] if self.template else [])
        if len(set(names)) != len(names) or not all(names):
            raise AssetganError(f"row names must be distinct and non-empty, got {names}")
        for name, path in self.models:
            if not Path(path).is_file():
                raise AssetganError(f"--model {name}={path}: no such file")
        if self.n is not None and self.n < 1:
            raise AssetganError(f"--n must be at least 1, got {self.n}")
        if min(self.batch, self.surface_samples, self.sheet_size) < 1 or self.sheet_cars < 0:
            raise AssetganError(
                "batch, surface_samples and sheet_size must be >= 1, sheet_cars >= 0"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for name in ("split", "out", "segmenter"):
            out[name] = str(getattr(self, name))
        out["models"] = {name: str(path) for name, path in self.models}
        out["unseen_azimuths"] = list(self.unseen_azimuths)
        out["device"] = self.device.value
        return out


@dataclass(frozen=True)
class ReconstructBenchResult:
    """What a benchmark run wrote and measured."""

    json_path: Path  # OUT/reconstruct_bench.json (the figures below)
    sheet: Path | None  # OUT/turntables.png
    figures: dict[str, Any]  # {config, images, frame_check, rows: {name: {...}}, seconds}
    seconds: float  # wall time of run()


@dataclass(frozen=True)
class BenchTruth:
    """The split's images and labels (ArrayData), with the 3D truth of every image."""

    data: ArrayData  # images, masks, parts, keypoints, true mvp, orbit parameters
    meshes: list[CarAsset]  # meshes/ID.glb (car frame, metres, car_20 per face)
    keypoints: np.ndarray  # [N, 12, 3] CarWorld's 3D keypoints (meta keypoints.world)
    wheels: np.ndarray  # [N, 4, 3] wheel pivots (meta wheels.pivots, QUADRANTS order)


def load_truth(root: Path, n: int | None, progress: Progress | None = None) -> BenchTruth:
    from assetgan.pipeline.carworld.split import WorldSplit

    split = WorldSplit.load(root)
    if not split.config.meshes:
        raise AssetganError(
            f"{root}: rendered without meshes; render it with `world render --meshes`"
        )
    data = load_carworld(root, n, progress)
    meshes, keypoints, wheels = [], [], []
    for index in range(len(data)):
        meta = split.meta(index)
        keypoints.append(meta["keypoints"]["world"])
        meshes.append(read_part_glb(Path(root) / meta["files"]["mesh"], keypoints[-1]))
        wheels.append(meta["wheels"]["pivots"])
        emit(progress, index + 1, len(data), task="meshes")
    return BenchTruth(
        data, meshes, np.asarray(keypoints, np.float64), np.asarray(wheels, np.float64)
    )


def orbit_cameras(params: np.ndarray, azimuth_offset: float, side: int) -> list[Camera]:
    """CarWorld's orbit camera of each row of `params` [B, 7] (CAMERA_FIELDS) with the azimuth
    turned by `azimuth_offset` degrees, for side x side images."""
    turned = np.array(params, dtype=np.float64)
    turned[:, 0] = (turned[:, 0] + azimuth_offset) % 360.0
    return [predicted_camera(torch.tensor(row), side) for row in turned]


def render_ids(asset: CarAsset, mvp: torch.Tensor, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A part-labelled mesh in cameras mvp [B, 4, 4] with the project's rasterizer -> (covered
    [B, S, S] bool, car_20 ids [B, S, S] uint8), row 0 at the top."""
    faces = torch.from_numpy(asset.faces)
    clip = transform_points(torch.from_numpy(asset.vertices), mvp)
    face_id = TorchBackend().rasterize(clip, faces, (size, size))[..., 3].long().flip(1) - 1
    parts = torch.from_numpy(asset.face_parts)[face_id.clamp(min=0)]
    covered = face_id >= 0
    return covered.numpy(), torch.where(covered, parts, 0).numpy().astype(np.uint8)


def surface_samples(
    vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """[count, 3] points uniform on the surface, centred on the bounding-box centre and scaled
    to unit length along z."""
    corners = vertices[faces].astype(np.float64)  # [T, 3, 3]
    area = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    chosen = rng.choice(len(faces), size=count, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(count)), rng.random(count)
    weights = np.stack([1.0 - r1, r1 * (1.0 - r2), r1 * r2], axis=1)[:, :, None]
    points = (corners[chosen] * weights).sum(1)
    low, high = vertices.min(0), vertices.max(0)
    return (points - (low + high) / 2.0) / max(float(high[2] - low[2]), 1e-9)


def chamfer_l2(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared distance to the nearest point of the other set, both ways, summed."""
    distances = torch.cdist(torch.from_numpy(a), torch.from_numpy(b)) ** 2
    return float(distances.min(1).values.mean() + distances.min(0).values.mean())


def wheel_centres(asset: CarAsset) -> tuple[np.ndarray, np.ndarray]:
    """([4, 3] wheel centres in QUADRANTS order, [4] bool: taken from the wheel keypoints
    because no face of that quadrant is labelled tire / wheelhub)."""
    corners = asset.vertices[asset.faces].astype(np.float64)
    centroids = corners.mean(1)
    area = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1
    )
    wheel = np.isin(asset.face_parts, WHEEL_PARTS)
    centres, fallback = np.zeros((4, 3)), np.zeros(4, bool)
    for slot, (sign_x, sign_z) in enumerate(QUADRANTS):
        pick = wheel & (np.sign(centroids[:, 0]) == sign_x) & (np.sign(centroids[:, 2]) == sign_z)
        if pick.any() and area[pick].sum() > 0:
            centres[slot] = (centroids[pick] * area[pick, None]).sum(0) / area[pick].sum()
        else:
            centres[slot], fallback[slot] = asset.keypoints[slot], True
    return centres, fallback


def render_copies(
    reconstruction: Reconstruction, index: int, template: Template, mvp: torch.Tensor, size: int
) -> RenderedView:
    """Reconstruction `index` rendered in every camera of mvp [K, 4, 4]."""
    rows = torch.full((mvp.shape[0],), index, dtype=torch.long, device=mvp.device)
    tensors = [
        getattr(reconstruction, name).index_select(0, rows)
        for name in ("vertices", "texture", "part_logits", "keypoints")
    ]
    return render_views(*tensors, template, mvp, (size, size))


class Row:
    """One compared source: a network and its camera head, or the template posed by PnP."""

    def __init__(
        self,
        name: str,  # row name in tables and JSON
        model: ReconstructNet,  # trained (a, b) or untrained (the template row)
        pnp: list[Camera | None] | None = None,  # the template row's PnP camera per image
        keypoints: torch.Tensor | None = None,  # [12, 3] the template row's 3D keypoints
    ) -> None:
        self.name, self.model, self.pnp, self.keypoints = name, model, pnp, keypoints

    @torch.no_grad()
    def predict(
        self, images: torch.Tensor, indices: np.ndarray
    ) -> tuple[Reconstruction, torch.Tensor]:
        """(the reconstruction of images [B, 3, S, S], its own input cameras mvp [B, 4, 4])."""
        side = images.shape[-1]
        reconstruction = self.model(images)
        if self.pnp is None or self.keypoints is None:
            cameras = [predicted_camera(row, side) for row in reconstruction.camera.cpu()]
            return reconstruction, stack_mvp(cameras).to(images.device)
        batch = images.shape[0]
        reconstruction = dataclasses.replace(
            reconstruction,
            vertices=self.model.template_vertices.expand(batch, -1, -1).clone(),
            offsets=torch.zeros_like(reconstruction.offsets),
            mean_offsets=torch.zeros_like(reconstruction.mean_offsets),
            log_scale=torch.zeros_like(reconstruction.log_scale),
            keypoints=self.keypoints.to(images.device).expand(batch, -1, -1).clone(),
        )
        fallback = predicted_camera(torch.tensor(FALLBACK_CAMERA), side)
        cameras = [self.pnp[i] or fallback for i in indices.tolist()]
        return reconstruction, stack_mvp(cameras).to(images.device)


def template_row(
    config: ReconstructBenchConfig, truth: BenchTruth, detected: np.ndarray, device: str
) -> tuple[Row, int]:
    """(the template row: an untrained network (seed) posed by PnP cameras of the segmenter's
    keypoints `detected` against the keypoint template, the number of images PnP found no
    camera for)."""
    from assetgan.pipeline.multiview.template import load_shipped_template

    side = truth.data.image_size
    points = load_shipped_template().points_m()
    cameras = pnp_cameras(np.repeat(points[None], len(detected), 0), detected, side, config.pnp_fov)
    torch.manual_seed(config.seed)
    model = ReconstructNet(ReconstructNetConfig(image_size=side)).to(device).eval()
    row = Row(TEMPLATE_ROW, model, cameras, torch.tensor(points, dtype=torch.float32))
    return row, sum(c is None for c in cameras)


class RowScores:
    """Every figure of one row, accumulated over batches."""

    def __init__(self, azimuths: tuple[float, ...]) -> None:
        self.truth_view, self.own_view, self.pnp_view = ViewScores(), ViewScores(), ViewScores()
        self.unseen = {offset: ViewScores() for offset in azimuths}
        self.chamfer: list[float] = []
        self.keypoint_error: list[float] = []  # % of the car length, per image
        self.wheel_error: list[float] = []  # % of the car length, per image
        self.wheel_fallbacks = 0  # wheel centres taken from keypoints

    def figures(self) -> dict[str, Any]:
        unseen = {f"az+{offset:g}": s.figures() for offset, s in self.unseen.items()}
        keys = ("silhouette_iou", "miou_car_5", "miou_car_12", "miou_car_20")
        mean = {k: float(np.mean([u[k] for u in unseen.values()])) for k in keys}
        return {
            "input_true_camera": self.truth_view.figures(),
            "input_own_camera": self.own_view.figures(),
            "input_pnp_camera": self.pnp_view.figures(),
            "unseen": {**unseen, "mean": mean},
            "3d": {
                "chamfer_l2": float(np.mean(self.chamfer)),
                "keypoint_error_pct": float(np.mean(self.keypoint_error)),
                "wheel_error_pct": float(np.mean(self.wheel_error)),
                "wheel_from_keypoints": self.wheel_fallbacks,
            },
        }


@dataclass(frozen=True)
class TruthViews:
    """The ground-truth meshes rendered once for every row."""

    unseen: dict[float, tuple[np.ndarray, np.ndarray]]  # offset -> (covered, ids) [N, S, S]
    samples: list[np.ndarray]  # per image [count, 3] normalised surface samples
    lengths: np.ndarray  # [N] car length: the mesh's extent along z (m)
    frame_check: dict[str, Any]  # the meshes in the true cameras vs the label maps


def truth_views(
    config: ReconstructBenchConfig, truth: BenchTruth, progress: Progress | None
) -> TruthViews:
    """Render every truth mesh in its true camera (frame check against the split's own labels)
    and in the unseen cameras; sample its surface."""
    data, side = truth.data, truth.data.image_size
    rng = np.random.default_rng(config.seed)
    covered_by, ids_by = (
        {o: [] for o in config.unseen_azimuths},
        {o: [] for o in config.unseen_azimuths},
    )
    check, samples = ViewScores(), []
    for index, asset in enumerate(truth.meshes):
        params = data.camera_params[index : index + 1]
        mvp = [torch.from_numpy(data.mvp[index])]
        mvp += [orbit_cameras(params, offset, side)[0].mvp for offset in config.unseen_azimuths]
        covered, ids = render_ids(asset, torch.stack(mvp), side)
        labels = data.part_ids[index : index + 1]
        check.add(covered[:1], data.masks[index : index + 1], ids[:1], labels)
        for slot, offset in enumerate(config.unseen_azimuths, start=1):
            covered_by[offset].append(covered[slot])
            ids_by[offset].append(ids[slot])
        samples.append(surface_samples(asset.vertices, asset.faces, config.surface_samples, rng))
        emit(progress, index + 1, len(truth.meshes), task="ground-truth views")
    figures = check.figures()
    return TruthViews(
        unseen={o: (np.stack(covered_by[o]), np.stack(ids_by[o])) for o in covered_by},
        samples=samples,
        lengths=np.array([np.ptp(a.vertices[:, 2]) for a in truth.meshes], dtype=np.float64),
        frame_check={
            "what": "ground-truth GLB rendered in the true camera vs the split's label maps",
            "silhouette_iou": figures["silhouette_iou"],
            "miou_car_20": figures["miou_car_20"],
        },
    )


def sheet_tiles(
    reconstruction: Reconstruction, slot: int, template: Template, params: np.ndarray, size: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(texture tiles, part tiles) of reconstruction `slot` at input azimuth + 0/90/180/270."""
    mvp = stack_mvp([orbit_cameras(params, o, size)[0] for o in SHEET_AZIMUTHS])
    rendered = render_copies(
        reconstruction, slot, template, mvp.to(reconstruction.vertices.device), size
    )
    views = range(len(SHEET_AZIMUTHS))
    return [on_white(rendered, k) for k in views], [part_picture(rendered, k) for k in views]


def truth_tiles(
    truth: BenchTruth, index: int, size: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(input, truth textured x 4), (label parts, truth parts x 4): the sheet's truth tiles."""
    from PIL import Image

    params = truth.data.camera_params[index : index + 1]
    cameras = [orbit_cameras(params, o, size)[0] for o in SHEET_AZIMUTHS]
    asset = truth.meshes[index]
    mesh = Mesh(
        torch.from_numpy(asset.vertices),
        torch.from_numpy(asset.faces),
        face_colors=torch.from_numpy(asset.face_colors),
    )
    rgb, _ = render_shaded(mesh, cameras)
    _, ids = render_ids(asset, stack_mvp(cameras), size)

    def big(picture: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(picture).resize((size, size), Image.NEAREST))

    label = colorize(truth.data.part_ids[index])
    textured = [big(truth.data.images[index])] + [to_image(rgb[k]) for k in range(len(cameras))]
    return textured, [big(label)] + [colorize(ids[k]) for k in range(len(cameras))]


def score_row(
    row: Row,
    truth: BenchTruth,
    views: TruthViews,
    config: ReconstructBenchConfig,
    device: str,
    progress: Progress | None,
    tiles: dict[int, list[tuple[list[np.ndarray], list[np.ndarray]]]],
    detected: np.ndarray | None = None,
) -> dict[str, Any]:
    """The row's figures; its sheet tiles appended to `tiles[index]` for the sheet's cars.
    With `detected` (the segmenter's keypoints [N, 12, 3]) a network row is also scored in the
    PnP camera of its own 3D keypoints (pose.py, what `reconstruct image` uses); the template
    row's own camera is already PnP."""
    data, side = truth.data, truth.data.image_size
    template = row.model.template_tables(device)
    scores = RowScores(config.unseen_azimuths)
    rng = np.random.default_rng([config.seed, 1])
    for start in range(0, len(data), config.batch):
        indices = np.arange(start, min(start + config.batch, len(data)))
        item = data.batch(indices, np.zeros(len(indices), bool)).to(device)
        reconstruction, own_mvp = row.predict(item.images, indices)
        labels = (data.masks[indices], data.part_ids[indices], data.keypoints_xyv[indices])
        pnp_mvp = own_mvp
        if detected is not None and row.pnp is None:
            head = reconstruction.camera
            cameras, _ = input_cameras(
                CameraSource.pnp,
                head,
                reconstruction.keypoints,
                detected[indices],
                side,
                config.pnp_fov,
            )
            pnp_mvp = stack_mvp(cameras).to(device)
        cameras_by_view = (
            (scores.truth_view, item.mvp),
            (scores.own_view, own_mvp),
            (scores.pnp_view, pnp_mvp),
        )
        for view_scores, mvp in cameras_by_view:
            view_scores.add_rendered(
                render_reconstruction(reconstruction, template, mvp, (side, side)), *labels
            )
        for offset, view_scores in scores.unseen.items():
            params = data.camera_params[indices]
            mvp = stack_mvp(orbit_cameras(params, offset, side)).to(device)
            covered, ids = views.unseen[offset]
            rendered = render_reconstruction(reconstruction, template, mvp, (side, side))
            view_scores.add_rendered(rendered, covered[indices], ids[indices])
        for slot, index in enumerate(indices.tolist()):
            asset = reconstruction_asset(reconstruction, slot, template, row.name)
            length = views.lengths[index]
            points = surface_samples(asset.vertices, asset.faces, config.surface_samples, rng)
            scores.chamfer.append(chamfer_l2(points, views.samples[index]))
            keypoint_error = np.linalg.norm(asset.keypoints - truth.keypoints[index], axis=1)
            scores.keypoint_error.append(100.0 * float(keypoint_error.mean()) / length)
            centres, fallback = wheel_centres(asset)
            wheel_error = np.linalg.norm(centres - truth.wheels[index], axis=1)
            scores.wheel_error.append(100.0 * float(wheel_error.mean()) / length)
            scores.wheel_fallbacks += int(fallback.sum())
            if index < config.sheet_cars:
                params = data.camera_params[index : index + 1]
                tiles.setdefault(index, []).append(
                    sheet_tiles(reconstruction, slot, template, params, config.sheet_size)
                )
        emit(progress, indices[-1] + 1, len(data), task=f"row {row.name}")
    return scores.figures()


def write_sheet(
    path: Path,
    truth: BenchTruth,
    tiles: dict[int, list[tuple[list[np.ndarray], list[np.ndarray]]]],
    size: int,
) -> Path:
    """Per car two rows (texture, part colours); columns: input (label parts) | each row's 4
    views | the truth's 4 views, at input azimuth + 0, 90, 180, 270."""
    pictures: list[np.ndarray] = []
    for index in sorted(tiles):
        (input_tile, *truth_textured), (label_tile, *truth_parts) = truth_tiles(truth, index, size)
        pictures += [input_tile] + [t for textured, _ in tiles[index] for t in textured]
        pictures += truth_textured + [label_tile]
        pictures += [t for _, parts in tiles[index] for t in parts] + truth_parts
    columns = 1 + len(SHEET_AZIMUTHS) * (len(next(iter(tiles.values()))) + 1)
    return atomic_write_png(path, contact_sheet(pictures, columns))


def run(config: ReconstructBenchConfig, progress: Progress | None = None) -> ReconstructBenchResult:
    """Load the split and the rows, score every row, write the sheet and the JSON figures."""
    config = config.validate()
    started = time.perf_counter()
    device = resolve_device(config.device)
    truth = load_truth(config.split, config.n, progress)
    views = truth_views(config, truth, progress)
    rows, pnp_failed = [], None
    for name, path in config.models:
        model, _ = load_reconstructor(path, device)
        if model.config.image_size != truth.data.image_size:
            raise AssetganError(
                f"--model {name}={path}: the network takes {model.config.image_size} px images, "
                f"the split has {truth.data.image_size} px"
            )
        rows.append(Row(name, model))
    detected = detect_keypoints(truth.data.images, config.segmenter)
    if config.template:
        row, pnp_failed = template_row(config, truth, detected, device)
        rows.append(row)
    tiles: dict[int, list] = {}
    figures_by_row = {
        row.name: score_row(row, truth, views, config, device, progress, tiles, detected)
        for row in rows
    }
    if pnp_failed is not None:
        figures_by_row[TEMPLATE_ROW]["pnp_failed"] = pnp_failed
    sheet = None
    if tiles:
        sheet = write_sheet(config.out / "turntables.png", truth, tiles, config.sheet_size)
    seconds = time.perf_counter() - started
    figures = {
        "split": str(config.split),
        "images": len(truth.data),
        "rows": figures_by_row,
        "frame_check": views.frame_check,
        "config": config.to_dict(),
        "seconds": seconds,
    }
    json_path = atomic_write_json(config.out / "reconstruct_bench.json", figures)
    return ReconstructBenchResult(json_path, sheet, figures, seconds)


TABLE_COLUMNS = (  # (header, section, figure)
    ("IoU", "input_true_camera", "silhouette_iou"),
    ("c5", "input_true_camera", "miou_car_5"),
    ("c12", "input_true_camera", "miou_car_12"),
    ("c20", "input_true_camera", "miou_car_20"),
    ("PCK", "input_true_camera", "pck_0_1"),
    ("IoU", "input_own_camera", "silhouette_iou"),
    ("c5", "input_own_camera", "miou_car_5"),
    ("c12", "input_own_camera", "miou_car_12"),
    ("PCK", "input_own_camera", "pck_0_1"),
    ("IoU", "input_pnp_camera", "silhouette_iou"),
    ("c5", "input_pnp_camera", "miou_car_5"),
    ("IoU", "unseen", "mean"),
    ("c5", "unseen", "mean"),
    ("c12", "unseen", "mean"),
    ("CD", "3d", "chamfer_l2"),
    ("kp%", "3d", "keypoint_error_pct"),
    ("whl%", "3d", "wheel_error_pct"),
)


def table_lines(figures: dict[str, Any]) -> list[str]:
    """The printed table: one line per row; groups true camera | own camera | unseen mean | 3D
    (CD = Chamfer-L2 x 1000 in squared car lengths), then unseen IoU per azimuth."""
    lines = [
        f"{figures['images']} images of {figures['split']}; frame check (truth GLB in the true "
        f"camera vs label maps): IoU {figures['frame_check']['silhouette_iou']:.3f}, "
        f"mIoU car_20 {figures['frame_check']['miou_car_20']:.3f}",
        f"{'':6s} | {'input view, true camera':^29s} | {'input, own camera':^23s} | "
        f"{'PnP cam':^11s} | "
        f"{'unseen (mean)':^17s} | {'3D':^17s}",
        f"{'row':6s} | " + " ".join(f"{h:>5s}" for h, _, _ in TABLE_COLUMNS),
    ]
    unseen_keys = {"IoU": "silhouette_iou", "c5": "miou_car_5", "c12": "miou_car_12"}
    for name, row in figures["rows"].items():
        values = []
        for header, section, key in TABLE_COLUMNS:
            if section == "unseen":
                value = row["unseen"]["mean"][unseen_keys[header]]
            else:
                value = row[section][key]
            value = 1000.0 * value if key == "chamfer_l2" else value
            values.append(f"{value:5.3f}" if value < 10 else f"{value:5.1f}")
        lines.append(f"{name:6s} | " + " ".join(values))
    first = next(iter(figures["rows"].values()))
    offsets = [k for k in first["unseen"] if k != "mean"]
    lines.append(f"{'row':6s} | unseen silhouette IoU " + " ".join(f"{k:>7s}" for k in offsets))
    for name, row in figures["rows"].items():
        cells = " ".join(f"{row['unseen'][k]['silhouette_iou']:7.3f}" for k in offsets)
        lines.append(f"{name:6s} | {'':21s} {cells}")
    return lines
