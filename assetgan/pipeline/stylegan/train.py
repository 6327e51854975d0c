"""StyleGAN2 training loop: non-saturating loss, lazy R1, optional path length, mixing, EMA.

`run(config, progress)` runs plainly labelled blocks (set up the run, load data, build
networks, optimizers, resume, fixed grids, KID references, then the loop: fetch, G step,
G regularisation, D step, D regularisation, EMA, bookkeeping, tick/snapshot). Everything random
in iteration i derives from (config.seed, i), so a resumed run repeats the uninterrupted one
(same CPU thread settings assumed). Library code never prints: core.progress events go to
`progress` (task "loading": images loaded; task "training": kimg, with the losses as metrics and
each tick's line as the message).
"""

from __future__ import annotations

import copy
import math
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from assetgan.core.device import Device, resolve_device
from assetgan.core.errors import AssetganError
from assetgan.core.progress import Progress, emit
from assetgan.pipeline.stylegan import kid as kid_metric
from assetgan.pipeline.stylegan import run_dir as runs
from assetgan.pipeline.stylegan.dataset import list_images, load_images
from assetgan.pipeline.stylegan.discriminator import Discriminator
from assetgan.pipeline.stylegan.networks import Generator
from assetgan.pipeline.stylegan.sampling import (
    synthesize_uint8,
    uint8_to_float,
    write_grid,
    z_from_seeds,
)
from assetgan.pipeline.stylegan.train_config import GanTrainConfig

KID_SEED = 123  # latents of the KID samples: the same at every snapshot
SnapshotMetric = Callable[[Generator], dict[str, float]]  # G_ema (eval mode) -> figures


@dataclass(frozen=True)
class GanTrainResult:
    """Where a `gan train` run ended."""

    run_dir: Path  # the run directory
    checkpoint: Path  # the last checkpoint written
    kimg: float  # kimg reached
    last_metrics: dict[str, float]  # the last metrics.jsonl line


def iteration_rngs(seed: int, batch_idx: int, device: torch.device) -> tuple[torch.Generator, ...]:
    """(cpu_rng, device_rng) for one iteration, a pure function of (seed, batch_idx)."""
    state = np.random.SeedSequence([seed, batch_idx]).generate_state(2, dtype=np.uint64)
    cpu_rng = torch.Generator().manual_seed(int(state[0]))
    if device.type == "cpu":
        return cpu_rng, cpu_rng
    return cpu_rng, torch.Generator(device=device).manual_seed(int(state[1]))


def run_generator(
    generator: Generator,
    z: torch.Tensor,  # [B, z_dim]
    mixing_prob: float,
    cpu_rng: torch.Generator,
    device_rng: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B, C, H, W] and ws [B, num_ws, w_dim], with style mixing from a second latent."""
    ws = generator.mapping(z)
    if mixing_prob > 0:
        cutoff = int(torch.randint(1, ws.shape[1], (1,), generator=cpu_rng))
        if float(torch.rand((), generator=cpu_rng)) < mixing_prob:
            z2 = torch.randn(z.shape, generator=device_rng, device=z.device)
            ws2 = generator.mapping(z2, update_w_avg=False)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
    return generator.synthesis(ws, noise_generator=device_rng), ws


def r1_penalty(discriminator: Discriminator, real: torch.Tensor) -> torch.Tensor:
    """[B]: |d D(real) / d real|^2 per image (differentiable: double backward)."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real)
    (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grads.square().sum(dim=(1, 2, 3))


def path_lengths(images: torch.Tensor, ws: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """[B]: |J_w^T y| for random image-space y (StyleGAN2's path length)."""
    noise = torch.randn(images.shape, generator=rng, device=images.device)
    noise = noise / math.sqrt(images.shape[2] * images.shape[3])
    (grads,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def make_optimizer(
    module: torch.nn.Module, lr: float, betas: tuple[float, float], reg_interval: int | None
) -> torch.optim.Adam:
    """Adam; with lazy regularisation every k steps, lr and betas are scaled by k / (k + 1)."""
    ratio = 1.0 if reg_interval is None else reg_interval / (reg_interval + 1)
    return torch.optim.Adam(
        module.parameters(), lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=1e-8
    )


def _step(module: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for param in module.parameters():
        if param.grad is not None:
            torch.nan_to_num(param.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=param.grad)
    optimizer.step()


@torch.no_grad()
def update_ema(generator: Generator, generator_ema: Generator, beta: float) -> None:
    for p_ema, p in zip(generator_ema.parameters(), generator.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(generator_ema.buffers(), generator.buffers(), strict=True):
        b_ema.copy_(b)


def _kid_sampler(generator: Generator, device: torch.device) -> Callable:
    def sample(count: int, rng: torch.Generator) -> torch.Tensor:
        z = torch.randn(count, generator.z_dim, generator=rng, device=device)
        return generator(z, noise_generator=rng)

    return sample


@dataclass
class Networks:
    """The trained modules and their optimizers."""

    generator: Generator  # G, trained
    generator_ema: Generator  # exponential moving average of G (what ships)
    discriminator: Discriminator  # D, trained
    g_opt: torch.optim.Adam  # G's optimizer
    d_opt: torch.optim.Adam  # D's optimizer

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.g_opt, "D": self.d_opt}


def build_networks(config: GanTrainConfig, device: torch.device) -> Networks:
    """G, G_ema, D (initialisation is a pure function of config.seed) and their optimizers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator = Generator(config.generator).train().requires_grad_(False).to(device)
        discriminator = Discriminator(config.discriminator).train().requires_grad_(False).to(device)
    g_reg = config.g_reg_interval if config.pl_weight > 0 else None
    d_reg = config.d_reg_interval if config.r1_gamma > 0 else None
    return Networks(
        generator=generator,
        generator_ema=copy.deepcopy(generator).eval(),
        discriminator=discriminator,
        g_opt=make_optimizer(generator, config.g_lr, config.betas, g_reg),
        d_opt=make_optimizer(discriminator, config.d_lr, config.betas, d_reg),
    )


def train_iteration(
    nets: Networks,
    config: GanTrainConfig,
    images: torch.Tensor,  # [N, C, H, W] uint8 training set (CPU)
    batch_idx: int,  # iteration number: seeds every random draw, schedules lazy regularisation
    cur_nimg: int,  # real images shown before this iteration (EMA ramp-up)
    pl_mean: torch.Tensor,  # [] running mean of path lengths
) -> tuple[dict[str, float], torch.Tensor]:
    """One iteration: fetch, G step, G reg, D step, D reg, EMA. Returns (losses, new pl_mean)."""
    generator, discriminator = nets.generator, nets.discriminator
    device = pl_mean.device
    cpu_rng, dev_rng = iteration_rngs(config.seed, batch_idx, device)
    stats: dict[str, float] = {}

    # Fetch a real batch (x-flip augmentation) and latents.
    pick = torch.randint(images.shape[0], (config.batch,), generator=cpu_rng)
    real = uint8_to_float(images[pick].to(device))  # [B, C, H, W]
    if config.xflip:
        flip = (torch.rand(config.batch, generator=cpu_rng) < 0.5).to(device)
        real[flip] = real[flip].flip(3)
    z_g = torch.randn(config.batch, config.generator.z_dim, generator=dev_rng, device=device)
    z_d = torch.randn(config.batch, config.generator.z_dim, generator=dev_rng, device=device)

    # G step: maximise D's logits for generated images (non-saturating loss).
    generator.requires_grad_(True)
    fake, _ws = run_generator(generator, z_g, config.style_mixing_prob, cpu_rng, dev_rng)
    loss_g = F.softplus(-discriminator(fake)).mean()
    _step(generator, nets.g_opt, loss_g)
    stats["loss_g"] = loss_g.item()

    # G regularisation: lazy path-length penalty.
    if config.pl_weight > 0 and batch_idx % config.g_reg_interval == 0:
        pl_batch = max(1, config.batch // config.pl_batch_shrink)
        fake, ws = run_generator(
            generator, z_g[:pl_batch], config.style_mixing_prob, cpu_rng, dev_rng
        )
        lengths = path_lengths(fake, ws, dev_rng)
        pl_mean = pl_mean.lerp(lengths.mean().detach(), config.pl_decay)
        penalty = (lengths - pl_mean).square()
        _step(generator, nets.g_opt, penalty.mean() * config.pl_weight * config.g_reg_interval)
        stats["pl_penalty"] = penalty.mean().item()
    generator.requires_grad_(False)

    # D step: minimise logits of generated images, maximise those of real ones.
    discriminator.requires_grad_(True)
    with torch.no_grad():
        fake, _ws = run_generator(generator, z_d, config.style_mixing_prob, cpu_rng, dev_rng)
    fake_logits = discriminator(fake)
    real_logits = discriminator(real)
    loss_d = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    _step(discriminator, nets.d_opt, loss_d)
    stats["loss_d"] = loss_d.item()
    stats["score_real"] = real_logits.mean().item()
    stats["score_fake"] = fake_logits.mean().item()

    # D regularisation: lazy R1 on real images.
    if config.r1_gamma > 0 and batch_idx % config.d_reg_interval == 0:
        penalty = r1_penalty(discriminator, real)
        loss_r1 = penalty.mean() * (config.r1_gamma / 2) * config.d_reg_interval
        _step(discriminator, nets.d_opt, loss_r1)
        stats["r1_penalty"] = penalty.mean().item()
    discriminator.requires_grad_(False)

    # EMA generator (half-life ema_kimg, ramped up over the first images).
    ema_nimg = config.ema_kimg * 1000
    if config.ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * config.ema_rampup)
    update_ema(generator, nets.generator_ema, 0.5 ** (config.batch / max(ema_nimg, 1e-8)))
    return stats, pl_mean


def tick_message(line: dict[str, float]) -> str:
    """The one-line summary of a metrics.jsonl line (the `message` of a tick's event)."""
    kid = f" KID {line['kid'] * 1e3:.2f}e-3" if "kid" in line else ""
    car = (
        f"  car seg-FD {line['car_seg_fd']:.3f} (floor {line['car_seg_fd_floor']:.3f})"
        if "car_seg_fd" in line and "car_seg_fd_floor" in line
        else ""
    )
    return (
        f"kimg {line['kimg']:.1f}  G {line['loss_g']:.3f}  D {line['loss_d']:.3f}  "
        f"{line['sec_per_iter']:.2f} s/iter{kid}{car}"
    )


def _losses(stats: dict[str, float]) -> dict[str, float]:
    return {"loss_g": stats["loss_g"], "loss_d": stats["loss_d"]}


def run(
    config: GanTrainConfig,
    progress: Progress | None = None,
    snapshot_metrics: Sequence[SnapshotMetric] = (),
) -> GanTrainResult:
    """Train G/D per `config` into `config.out` (a new run, or with `resume` the run there
    continued from its latest checkpoint: same data). Writes train_config.json (device resolved),
    reals.png, samples/, metrics.jsonl and checkpoints/ (run_dir.py). `snapshot_metrics` are
    called with G_ema at every snapshot and their figures join KID in metrics.jsonl (stages
    above the GAN register theirs this way, e.g. `gan eval`'s car metrics)."""
    list_images(config.data)  # bad --data fails before anything is written
    config = replace(config, device=Device(resolve_device(config.device)))
    resume = config.resume
    device = torch.device(config.device.value)
    total_nimg = round(config.total_kimg * 1000)

    # Set up the run directory.
    run_dir = Path(config.out)
    checkpoint = runs.latest_checkpoint(run_dir)
    if resume and checkpoint is None:
        raise AssetganError(f"{run_dir}: no checkpoint to resume from")
    if not resume and (checkpoint is not None or (run_dir / runs.METRICS_NAME).exists()):
        raise AssetganError(
            f"{run_dir}: already holds a training run; resume it with --resume or pick a new --out"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.save_config(run_dir, config)

    # Load the training images (uint8, in memory).
    res = config.generator.resolution
    images = load_images(config.data, res, progress)
    num_images = images.shape[0]

    # Build the networks and optimizers (lazy regularisation corrects lr and betas).
    nets = build_networks(config, device)
    generator_ema = nets.generator_ema

    # Resume or start.
    state = runs.RunCounters(cur_nimg=0, batch_idx=0, cur_tick=0, elapsed_sec=0.0, pl_mean=0.0)
    if resume:
        state = runs.read_checkpoint(
            checkpoint, nets.generator, generator_ema, nets.discriminator, nets.optimizers()
        )
        runs.truncate_metrics(run_dir, state.cur_nimg)
    pl_mean = torch.tensor(state.pl_mean, device=device)

    # Fixed sample grid and real-image grid.
    grid_z = z_from_seeds(list(range(config.grid_seeds)), config.generator.z_dim).to(device)
    grid_columns = max(1, int(math.ceil(math.sqrt(config.grid_seeds * 2))))
    samples_dir = run_dir / "samples"

    def write_fakes(name: str) -> Path:
        with torch.no_grad():
            ws = generator_ema.mapping(grid_z)
            fakes = synthesize_uint8(generator_ema, ws, noise_mode="const", batch=config.batch)
        return write_grid(fakes, samples_dir / name, columns=grid_columns)

    if not resume:
        reals = images[: config.grid_seeds].permute(0, 2, 3, 1).numpy()
        write_grid(reals, run_dir / "reals.png", columns=grid_columns)
        write_fakes("fakes-init.png")

    # KID reference features (a fixed random subset of the reals).
    feature_net = None
    real_features = None
    if config.kid_images > 0 and num_images >= 2:
        feature_net = kid_metric.RandomFeatureNet().to(device)
        pick = torch.randperm(num_images, generator=torch.Generator().manual_seed(KID_SEED))
        real_features = kid_metric.compute_features(
            feature_net, images[pick[: config.kid_images]], device=device
        )

    # Training loop.
    cur_nimg, batch_idx, cur_tick = state.cur_nimg, state.batch_idx, state.cur_tick
    session_start = time.time()
    tick_start_nimg = cur_nimg
    tick_train_sec = 0.0
    last_snap_nimg = cur_nimg
    snap_nimg = max(1, round(config.snap_kimg * 1000))
    tick_nimg = max(1, round(config.tick_kimg * 1000))
    tick_stats: dict[str, list[float]] = defaultdict(list)
    last_line: dict[str, float] = {}
    emit(progress, cur_nimg / 1000, config.total_kimg, task="training")
    done = cur_nimg >= total_nimg
    while not done:
        iter_start = time.time()
        stats, pl_mean = train_iteration(nets, config, images, batch_idx, cur_nimg, pl_mean)
        for key, value in stats.items():
            tick_stats[key].append(value)

        # Bookkeeping.
        cur_nimg += config.batch
        batch_idx += 1
        tick_train_sec += time.time() - iter_start
        done = cur_nimg >= total_nimg
        emit(progress, cur_nimg / 1000, config.total_kimg, "training", metrics=_losses(stats))
        snap_due = done or cur_nimg // snap_nimg > last_snap_nimg // snap_nimg
        if not (snap_due or cur_nimg >= tick_start_nimg + tick_nimg):
            continue

        # Tick: metrics line; on snapshots also a sample grid, KID and a checkpoint.
        maintenance_start = time.time()
        line: dict[str, float] = {
            "tick": cur_tick,
            "kimg": cur_nimg / 1000,
            "batch_idx": batch_idx,
            "sec_per_kimg": tick_train_sec / (cur_nimg - tick_start_nimg) * 1000,
            "sec_per_iter": tick_train_sec / max(1, len(tick_stats["loss_g"])),
            "cpu_maxrss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        }
        line.update({k: float(np.mean(v)) for k, v in tick_stats.items() if v})
        if snap_due:
            write_fakes(f"fakes-{runs.kimg_tag(cur_nimg)}.png")
            if feature_net is not None:
                fake_features = kid_metric.generator_features(
                    feature_net,
                    _kid_sampler(generator_ema, device),
                    config.kid_images,
                    seed=KID_SEED,
                    device=device,
                )
                half = max(2, min(len(real_features), len(fake_features)) // 2)
                line["kid"], line["kid_std"] = kid_metric.kid(
                    real_features, fake_features, max_subset_size=half
                )
            for metric in snapshot_metrics:
                line.update(metric(generator_ema))
        elapsed = state.elapsed_sec + time.time() - session_start
        line["total_sec"] = elapsed
        line["maintenance_sec"] = time.time() - maintenance_start
        runs.append_metrics(run_dir, line)
        if snap_due:
            counters = runs.RunCounters(cur_nimg, batch_idx, cur_tick + 1, elapsed, float(pl_mean))
            checkpoint = runs.write_checkpoint(
                run_dir,
                counters,
                nets.generator,
                generator_ema,
                nets.discriminator,
                nets.optimizers(),
                config.keep_checkpoints,
            )
            last_snap_nimg = cur_nimg
        emit(
            progress,
            cur_nimg / 1000,
            config.total_kimg,
            "training",
            message=tick_message(line),
            metrics=_losses(line),
        )
        last_line = line
        cur_tick += 1
        tick_stats = defaultdict(list)
        tick_start_nimg, tick_train_sec = cur_nimg, 0.0

    return GanTrainResult(run_dir, checkpoint, cur_nimg / 1000, last_line)
