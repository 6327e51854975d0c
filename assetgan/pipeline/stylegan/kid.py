"""Offline KID: unbiased polynomial-kernel MMD on features of a fixed random-weight conv net.

No Inception weights can be downloaded here, so the feature network is defined by the project:
`RandomFeatureNet` ("rand-conv-v1"): random 3x3 ReLU convs whose weights are drawn from a fixed
seed at construction (He-normal, no bias) and never trained. Features per image:
- a 4-stage conv trunk (64, 32, 16, 8 px): per-channel mean and standard deviation of every
  stage (colour and texture statistics at four scales) and the last stage pooled to 2x2 (layout);
- three Laplacian-pyramid bands (image minus its blurred 2x down/up-sampled copy, at 64, 32 and
  16 px), each through its own random conv: mean |response| and standard deviation. Without the
  bands the trunk barely sees pixel noise or mild blur (measured in docs/stylegan.md).
docs/stylegan.md says why and what such a distance does and does not see. KID values are only comparable between runs
that use the same net version and input size, which every report records.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from assetgan.pipeline.stylegan.sampling import uint8_to_float

FEATURE_NET_VERSION = "rand-conv-v1"


class RandomFeatureNet(nn.Module):
    """Images [B, 3, H, W] in [-1, 1] -> features [B, feature_dim], deterministic per seed."""

    num_bands = 3  # Laplacian bands at input_size, input_size / 2, input_size / 4

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256),  # channels of the four conv stages
        input_size: int = 64,  # images are resized (antialiased bilinear) to this side
        band_channels: int = 32,  # random filters per Laplacian band
        seed: int = 0,  # the weights are a pure function of this seed
    ) -> None:
        super().__init__()
        self.widths = widths
        self.input_size = input_size
        self.band_channels = band_channels
        gen = torch.Generator().manual_seed(seed)

        def he_normal(out_ch: int, in_ch: int) -> torch.Tensor:
            return torch.randn(out_ch, in_ch, 3, 3, generator=gen) * math.sqrt(2 / (in_ch * 9))

        in_ch = 3
        for idx, out_ch in enumerate(widths):
            self.register_buffer(f"conv{idx}", he_normal(out_ch, in_ch))
            in_ch = out_ch
        for level in range(self.num_bands):
            self.register_buffer(f"band{level}", he_normal(band_channels, 3))
        self.feature_dim = 2 * sum(widths) + 4 * widths[-1] + 2 * band_channels * self.num_bands

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"RandomFeatureNet: expected [B, 3, H, W], got {list(images.shape)}")
        x = images.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        stats = []
        image = x
        for level in range(self.num_bands):
            low = F.avg_pool2d(image, 2)
            band = image - F.interpolate(low, scale_factor=2.0, mode="bilinear")
            response = F.conv2d(band * 4, getattr(self, f"band{level}"), padding=1)
            stats += [response.abs().mean(dim=(2, 3)), response.std(dim=(2, 3))]
            image = low
        for idx in range(len(self.widths)):
            x = F.relu(F.conv2d(x, getattr(self, f"conv{idx}"), padding=1))
            stats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
            if idx < len(self.widths) - 1:
                x = F.avg_pool2d(x, 2)
        stats.append(F.adaptive_avg_pool2d(x, 2).flatten(1))
        return torch.cat(stats, dim=1)


@torch.no_grad()
def compute_features(
    net: RandomFeatureNet,
    images: torch.Tensor,  # [N, 3, H, W] float in [-1, 1] or uint8 in [0, 255]
    batch: int = 256,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """[N, feature_dim] float64 features."""
    net = net.to(device)
    out = []
    for start in range(0, images.shape[0], batch):
        chunk = images[start : start + batch]
        chunk = uint8_to_float(chunk) if chunk.dtype == torch.uint8 else chunk
        out.append(net(chunk.to(device)).double().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def generator_features(
    net: RandomFeatureNet,
    sample: Callable[[int, torch.Generator], torch.Tensor],  # (count, rng) -> [count, 3, H, W]
    count: int,
    batch: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Features of `count` generated images; `sample` draws a batch with the given RNG."""
    rng = torch.Generator(device=device).manual_seed(seed)
    net = net.to(device)
    out = []
    for start in range(0, count, batch):
        images = sample(min(batch, count - start), rng)
        out.append(net(images).double().cpu())
    return torch.cat(out).numpy()


def kid(
    features_a: np.ndarray,  # [Na, D]
    features_b: np.ndarray,  # [Nb, D]
    num_subsets: int = 100,  # random subset pairs averaged
    max_subset_size: int = 1000,  # subset size m = min(Na, Nb, this)
    seed: int = 0,  # subset draws
) -> tuple[float, float]:
    """Unbiased KID estimate (mean over subsets) and its standard deviation across subsets.

    Kernel k(x, y) = (x . y / D + 1) ** 3; per subset of size m the unbiased MMD^2 is
    sum_{i != j} (k(a_i, a_j) + k(b_i, b_j)) / (m (m - 1)) - 2 sum_{i, j} k(a_i, b_j) / m^2.
    The three kernel matrices are computed once (float64, torch) and the subsets index into
    them: the same estimate as recomputing the kernel per subset, at a fraction of the cost.
    """
    a = torch.as_tensor(np.asarray(features_a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(features_b), dtype=torch.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"kid: feature shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
    dim = a.shape[1]
    m = min(a.shape[0], b.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("kid: need at least two samples per set")
    kaa = (a @ a.T / dim + 1) ** 3
    kbb = (b @ b.T / dim + 1) ** 3
    kab = (a @ b.T / dim + 1) ** 3
    # subsets as 0/1 indicator columns: the sum of K over S x S' is v_S^T K v_S'
    rng = np.random.default_rng(seed)
    pick_a = torch.zeros(a.shape[0], num_subsets, dtype=torch.float64)
    pick_b = torch.zeros(b.shape[0], num_subsets, dtype=torch.float64)
    for col in range(num_subsets):
        pick_a[rng.choice(a.shape[0], m, replace=False), col] = 1
        pick_b[rng.choice(b.shape[0], m, replace=False), col] = 1

    def off_diagonal_sums(k: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        return ((k @ pick) * pick).sum(0) - (k.diagonal()[:, None] * pick).sum(0)

    within = off_diagonal_sums(kaa, pick_a) + off_diagonal_sums(kbb, pick_b)
    cross = ((kab @ pick_b) * pick_a).sum(0)
    values = (within / (m * (m - 1)) - 2 * cross / (m * m)).numpy()
    return float(values.mean()), float(values.std())
