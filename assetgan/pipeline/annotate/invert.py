"""`annotate invert` (HandsOff): real labeled images -> W+ latents by optimisation, paired with
their real labels in an annotation set.

Per image the objective is (docs/annotate.md "HandsOff inversion")

    pixel_weight * MSE(G(w), x) + multiscale_weight * sum_s MSE(pool_s G(w), pool_s x)
    + perceptual_weight * sum_l MSE(n(f_l(G(w))), n(f_l(x))) + w_avg_weight * mean((w - w_avg)^2)

over images in [-1, 1], where pool_s is s x s average pooling, f_l are the conv stages of the
project's fixed random feature net (stylegan/kid.py, RandomFeatureNet) and n normalises each
pixel's feature vector to unit length (LPIPS without learned weights). w starts at w_avg in every
layer; Adam with StyleGAN2's projector schedule (linear warm-up, cosine ramp-down). Each image
keeps the iterate with its lowest objective. Images are optimised jointly in batches: the loss
is a sum of per-image terms and Adam is element-wise, so this equals inverting them one by one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.hashing import file_sha256
from assetgan.core.images import atomic_write_png
from assetgan.core.io_utils import atomic_write_json, read_json_object
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.annotate.labeled import read_image_size
from assetgan.pipeline.annotations import AnnotatedSample, AnnotationSet
from assetgan.pipeline.stylegan.checkpoint import load_generator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import to_uint8, uint8_to_float


@dataclass(frozen=True)
class InversionSettings:
    """The optimisation (defaults: MEASURED.md's CPU recipe, which reached MSE 0.007); written
    as `config` into inversion.json."""

    steps: int = 300  # Adam steps per batch
    lr: float = 0.03  # peak learning rate
    lr_rampup: float = 0.05  # fraction of steps of linear warm-up
    lr_rampdown: float = 0.25  # fraction of steps of cosine ramp-down at the end
    pixel_weight: float = 1.0  # full-resolution MSE
    multiscale_weight: float = 1.0  # MSE of average-pooled images, summed over `scales`
    scales: tuple[int, ...] = (2, 4)  # pooling factors of the multi-scale term
    perceptual_weight: float = 0.0  # random-feature-net term (0 = off)
    w_avg_weight: float = 1e-3  # pull towards w_avg: mean((w - w_avg)^2)
    batch: int = 16  # images optimised jointly
    noise_mode: str = "const"  # synthesis noise; const = the image depends on w only

    def validate(self) -> InversionSettings:
        if self.steps < 1:
            raise AssetganError(f"--steps must be at least 1, got {self.steps}")
        if self.lr <= 0:
            raise AssetganError(f"--lr must be positive, got {self.lr}")
        if self.batch < 1:
            raise AssetganError(f"batch must be at least 1, got {self.batch}")
        weights = (self.pixel_weight, self.multiscale_weight, self.perceptual_weight)
        if min(weights) < 0 or self.w_avg_weight < 0 or max(weights) == 0:
            raise AssetganError("inversion loss weights must be >= 0 with one data term > 0")
        if any(s < 2 for s in self.scales):
            raise AssetganError(f"multi-scale factors must be >= 2, got {self.scales}")
        return self


@dataclass(frozen=True)
class InvertConfig:
    """What `annotate invert` inverts, how, and where it writes the annotation set."""

    generator: Path  # generator checkpoint (.safetensors)
    images: Path  # CarWorld split folder: images/, parts/, meta/
    out: Path  # the annotation set folder (with inversion.json and reconstructions.png)
    n: int = 16  # images to invert: the first n complete ones of the split
    settings: InversionSettings = field(default_factory=InversionSettings)  # the optimisation
    device: Device = Device.auto  # where the generator runs

    def validate(self) -> InvertConfig:
        if self.n < 1:
            raise AssetganError(f"--n must be at least 1, got {self.n}")
        self.settings.validate()
        return self


@dataclass(frozen=True)
class InvertResult:
    """What `annotate invert` wrote; per-image figures in the annotation set's order."""

    out: Path  # the annotation set folder
    names: tuple[str, ...]  # sample names (real + the split's image id)
    mse: tuple[float, ...]  # pixel MSE of G(w) against the real image, images in [-1, 1]
    initial_mse: tuple[float, ...]  # pixel MSE at w_avg, where the optimisation started
    report: Path  # inversion.json
    reconstructions: Path  # reconstructions.png: real images above their G(w)

    @property
    def mean_mse(self) -> float:
        return float(np.mean(self.mse))

    @property
    def mean_psnr_db(self) -> float:
        return float(np.mean(psnr(np.asarray(self.mse))))


@dataclass(frozen=True)
class Inversion:
    """Best latents and their reconstruction errors, one row per image."""

    ws: torch.Tensor  # [N, num_ws, w_dim] float32, the best iterate per image
    mse: np.ndarray  # [N] pixel MSE of G(ws) against the target, images in [-1, 1]
    initial_mse: np.ndarray  # [N] pixel MSE of G(w_avg) (where the optimisation started)
    loss: np.ndarray  # [N] objective at the best iterate
    best_step: np.ndarray  # [N] step of the best iterate (steps = after the last update)


def learning_rate(step: int, config: InversionSettings) -> float:
    """StyleGAN2 projector schedule: warm-up over lr_rampup, cosine down over lr_rampdown."""
    t = step / config.steps
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown) if config.lr_rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if config.lr_rampup > 0:
        ramp *= min(1.0, t / config.lr_rampup)
    return config.lr * ramp


class PerceptualFeatures(torch.nn.Module):
    """Unit-normalised conv feature maps of RandomFeatureNet's fixed weights, with gradients."""

    def __init__(self, stages: int = 3) -> None:
        super().__init__()
        from assetgan.pipeline.stylegan.kid import RandomFeatureNet

        net = RandomFeatureNet()
        self.weights = [getattr(net, f"conv{i}") for i in range(min(stages, len(net.widths)))]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images [B, 3, H, W] in [-1, 1] -> per stage [B, C_l, H_l, W_l], unit length per pixel."""
        maps, x = [], images
        for index, weight in enumerate(self.weights):
            x = F.relu(F.conv2d(x, weight.to(x.device), padding=1))
            maps.append(x / (x.norm(dim=1, keepdim=True) + 1e-8))
            if index < len(self.weights) - 1:
                x = F.avg_pool2d(x, 2)
        return maps


def per_image_loss(
    images: torch.Tensor,  # [B, 3, H, W] G(w)
    targets: torch.Tensor,  # [B, 3, H, W]
    ws: torch.Tensor,  # [B, num_ws, w_dim]
    w_avg: torch.Tensor,  # [w_dim]
    config: InversionSettings,
    target_features: list[torch.Tensor] | None,  # PerceptualFeatures(targets), if used
    features: PerceptualFeatures | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(objective [B], pixel MSE [B])."""
    pixel = (images - targets).square().mean(dim=(1, 2, 3))
    loss = config.pixel_weight * pixel
    for scale in config.scales:
        if config.multiscale_weight and min(images.shape[-2:]) >= scale:
            pooled = F.avg_pool2d(images, scale) - F.avg_pool2d(targets, scale)
            loss = loss + config.multiscale_weight * pooled.square().mean(dim=(1, 2, 3))
    if features is not None and target_features is not None:
        for got, want in zip(features(images), target_features, strict=True):
            loss = loss + config.perceptual_weight * (got - want).square().sum(1).mean(dim=(1, 2))
    loss = loss + config.w_avg_weight * (ws - w_avg).square().mean(dim=(1, 2))
    return loss, pixel


def invert(
    generator: Generator,
    targets: torch.Tensor,  # [N, 3, H, W] float in [-1, 1], H, W = the generator's output size
    config: InversionSettings = InversionSettings(),
    progress: Progress | None = None,  # task "inverting", done = steps, every step
) -> Inversion:
    """Optimise one W+ latent per target image (module docstring); deterministic."""
    config.validate()
    device = generator.mapping.w_avg.device
    generator = generator.eval().requires_grad_(False)
    w_avg = generator.mapping.w_avg.detach().float()
    out_size = _output_size(generator)
    if targets.ndim != 4 or targets.shape[1] != 3 or tuple(targets.shape[-2:]) != out_size:
        raise AssetganError(
            f"inversion targets must be [N, 3, {out_size[0]}, {out_size[1]}] (the generator's "
            f"image size), got {list(targets.shape)}"
        )
    features = PerceptualFeatures() if config.perceptual_weight > 0 else None
    count = targets.shape[0]
    batches = range(0, count, config.batch)
    total = len(batches) * config.steps
    rows: list[tuple] = []
    for batch_index, start in enumerate(batches):
        target = targets[start : start + config.batch].to(device).float()
        target_features = [f.detach() for f in features(target)] if features else None
        ws = w_avg.expand(target.shape[0], generator.num_ws, -1).clone().requires_grad_(True)
        optimiser = torch.optim.Adam([ws], lr=config.lr, betas=(0.9, 0.999))
        best_loss = torch.full((target.shape[0],), math.inf, device=device)
        best_ws = ws.detach().clone()
        best_mse = torch.zeros_like(best_loss)
        best_step = torch.zeros(target.shape[0], dtype=torch.long, device=device)
        initial_mse = None
        for step in range(config.steps + 1):  # the last pass only scores the final iterate
            images = generator.synthesis(ws, noise_mode=config.noise_mode)
            loss, pixel = per_image_loss(
                images, target, ws, w_avg, config, target_features, features
            )
            if initial_mse is None:
                initial_mse = pixel.detach().clone()
            with torch.no_grad():
                better = loss < best_loss
                best_loss = torch.where(better, loss, best_loss)
                best_mse = torch.where(better, pixel, best_mse)
                best_ws[better] = ws[better]
                best_step[better] = step
            if step == config.steps:
                break
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(step, config)
            optimiser.zero_grad(set_to_none=True)
            loss.sum().backward()
            optimiser.step()
            if progress is not None:
                done, mse = batch_index * config.steps + step + 1, float(pixel.detach().mean())
                emit(progress, done, total, task="inverting", metrics={"mse": mse})
        rows.append((best_ws, best_mse, initial_mse, best_loss, best_step))
    return Inversion(
        ws=torch.cat([r[0] for r in rows]).detach().cpu(),
        mse=torch.cat([r[1] for r in rows]).detach().cpu().numpy(),
        initial_mse=torch.cat([r[2] for r in rows]).detach().cpu().numpy(),
        loss=torch.cat([r[3] for r in rows]).detach().cpu().numpy(),
        best_step=torch.cat([r[4] for r in rows]).cpu().numpy(),
    )


def _output_size(generator: Generator) -> tuple[int, int]:
    crop = generator.config.crop_rows
    side = generator.img_resolution
    return (crop[1] - crop[0], side) if crop else (side, side)


# ---- CarWorld splits -> annotation set ----------------------------------------------------------


@dataclass(frozen=True)
class RealItem:
    """One labeled real image of a CarWorld split (images/, parts/, meta/)."""

    name: str  # file stem, e.g. 000012
    image: np.ndarray  # [H, W, 3] uint8
    part_ids: np.ndarray  # [H, W] uint8 car_20 ids
    keypoints_xyv: np.ndarray  # [12, 3] float32
    source: str  # the image file


def read_split_items(root: Path, n: int) -> list[RealItem]:
    """The first `n` complete images of a CarWorld split (meta/ID.json is written last, so an
    image whose meta exists is complete; a split still being rendered works too)."""
    for sub in ("images", "parts", "meta"):
        if not (root / sub).is_dir():
            raise AssetganError(
                f"{root}: no {sub}/ folder; --images takes a CarWorld split (images/, parts/, meta/)"
            )
    metas = sorted((root / "meta").glob("*.json"))
    if len(metas) < n:
        raise AssetganError(f"{root}: asked for {n} images but only {len(metas)} are complete")
    items = []
    for meta_path in metas[:n]:
        name = meta_path.stem
        image_path, parts_path = root / "images" / f"{name}.png", root / "parts" / f"{name}.png"
        size = read_image_size(image_path, str(meta_path))
        if read_image_size(parts_path, str(meta_path)) != size:
            raise AssetganError(f"{parts_path}: size differs from {image_path}")
        meta = read_json_object(meta_path)
        try:
            keypoints = np.asarray(meta["keypoints"]["xyv"], dtype=np.float32).reshape(12, 3)
        except (KeyError, TypeError, ValueError) as error:
            raise AssetganError(
                f"{meta_path}: keypoints.xyv is missing or malformed ({error!r})"
            ) from None
        with Image.open(image_path) as picture:
            image = np.asarray(picture.convert("RGB"))
        with Image.open(parts_path) as picture:
            part_ids = np.asarray(picture).astype(np.uint8)
        items.append(RealItem(name, image, part_ids, keypoints, str(image_path)))
    return items


def fit_to_generator(item: RealItem, size: tuple[int, int]) -> RealItem:
    """Resize image (area), parts (nearest) and keypoints to the generator's (H, W)."""
    height, width = item.part_ids.shape
    if (height, width) == tuple(size):
        return item
    if abs(height / width - size[0] / size[1]) > 1e-6:
        raise AssetganError(
            f"{item.source}: a {width}x{height} image cannot be fitted to the generator's "
            f"{size[1]}x{size[0]} output without distortion"
        )
    image = np.asarray(Image.fromarray(item.image).resize((size[1], size[0]), Image.BOX))
    parts = np.asarray(Image.fromarray(item.part_ids).resize((size[1], size[0]), Image.NEAREST))
    keypoints = item.keypoints_xyv.copy()
    keypoints[:, 0] *= size[1] / width
    keypoints[:, 1] *= size[0] / height
    return RealItem(item.name, image, parts, keypoints, item.source)


def run(config: InvertConfig, progress: Progress | None = None) -> InvertResult:
    """Invert `config.n` labeled real images and write the annotation set (source = inverted),
    with inversion.json (per-image errors) and reconstructions.png (real above, G(w) below)."""
    config.validate()
    settings = config.settings
    device = resolve_device(config.device)
    generator = load_generator(config.generator, device)
    size = _output_size(generator)
    items = [fit_to_generator(item, size) for item in read_split_items(config.images, config.n)]
    images = np.stack([item.image for item in items])  # [N, H, W, 3]
    targets = uint8_to_float(images)  # [N, 3, H, W]
    result = invert(generator, targets, settings, progress)
    with torch.no_grad():
        recon = to_uint8(generator.synthesis(result.ws.to(device), noise_mode=settings.noise_mode))
    generator_path = config.generator
    sha = file_sha256(generator_path)
    annotation_set = AnnotationSet.empty("car_20")
    for index, item in enumerate(items):
        annotation_set.samples.append(
            AnnotatedSample(
                name=f"real{item.name}",
                generator_path=str(generator_path),
                generator_sha256=sha,
                seed=None,
                ws=result.ws[index].numpy().astype(np.float32),
                part_ids=item.part_ids,
                keypoints_xyv=item.keypoints_xyv,
                source="inverted",
                image=item.image,
                meta={
                    "real_image": item.source,
                    "inversion_mse": float(result.mse[index]),
                    "initial_mse": float(result.initial_mse[index]),
                    "best_step": int(result.best_step[index]),
                },
            )
        )
    out = Path(config.out)
    annotation_set.save(out)
    _write_sheet(out / "reconstructions.png", images, recon)
    names = tuple(sample.name for sample in annotation_set.samples)
    atomic_write_json(
        out / "inversion.json",
        {
            "generator": str(generator_path),
            "split": str(config.images),
            "config": asdict(settings),
            "mean_mse": float(result.mse.mean()),
            "mean_psnr_db": float(np.mean(psnr(result.mse))),
            "images": [
                {
                    "name": name,
                    "mse": float(result.mse[i]),
                    "psnr_db": float(psnr(result.mse[i])),
                    "initial_mse": float(result.initial_mse[i]),
                    "best_step": int(result.best_step[i]),
                }
                for i, name in enumerate(names)
            ],
        },
    )
    return InvertResult(
        out=out,
        names=names,
        mse=tuple(float(v) for v in result.mse),
        initial_mse=tuple(float(v) for v in result.initial_mse),
        report=out / "inversion.json",
        reconstructions=out / "reconstructions.png",
    )


def psnr(mse: np.ndarray | float) -> np.ndarray:
    """PSNR in dB of an MSE measured on images in [-1, 1] (peak-to-peak 2)."""
    return 10 * np.log10(4.0 / np.maximum(mse, 1e-12))


def _write_sheet(path: Path, real: np.ndarray, recon: np.ndarray) -> None:
    """Columns of (real above, reconstruction below), 8 per row pair."""
    from assetgan.core.images import contact_sheet

    tiles = []
    for start in range(0, len(real), 8):
        chunk_real, chunk_recon = list(real[start : start + 8]), list(recon[start : start + 8])
        pad = [np.full_like(real[0], 255)] * (8 - len(chunk_real))
        tiles += chunk_real + pad + chunk_recon + pad
    sheet = contact_sheet(tiles, columns=8)
    atomic_write_png(path, sheet)
