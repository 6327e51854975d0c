"""The Style Interpreter ensemble: N per-pixel MLPs with DatasetGAN's architecture.

Per member: Linear(C, h1) - ReLU - BatchNorm - Linear(h1, h2) - ReLU - BatchNorm - Linear(h2, K),
(h1, h2) = (128, 32) for K < 32 outputs, else (256, 128); weights N(0, 0.02), biases 0,
BatchNorm weight 1 / bias 0 (ANCHORS.md). The N members are stored stacked ([N, ...] tensors) so
that one batched matmul runs them all; each member still has its own data, loss and stopping.

Two forward paths over whole images:
- `forward_maps` (fast): the first layer is linear and bilinear up-sampling is linear, so
  W1 . concat_l(up(S_l)) = sum_r up(W1_r . S_r): project each resolution's maps with their slice
  of W1 at native resolution, up-sample the N * h1 projections, sum (docs/interpreter.md).
- `forward_maps_materialised` (reference): up-sample and concatenate every map, then the MLPs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from assetgan.pipeline.interpreter.config import InterpreterConfig
from assetgan.pipeline.interpreter.features import (
    TapGeometry,
    add_upsampled_rows,
    column_weights,
    materialise,
    row_band,
)

BN_EPS = 1e-5  # BatchNorm1d defaults
BN_MOMENTUM = 0.1
TILE_ELEMENTS = 1 << 19  # floats per accumulation tile in forward_maps (2 MiB: stays in cache)
GEMM_MAX_RES = 32  # forward_maps up-samples resolutions up to this one by a single stacked GEMM


def hidden_sizes(outputs: int) -> tuple[int, int]:
    """DatasetGAN's hidden widths: (128, 32) for fewer than 32 outputs, else (256, 128)."""
    return (128, 32) if outputs < 32 else (256, 128)


class EnsembleBatchNorm(nn.Module):
    """BatchNorm1d for every member at once: x [N, M, F], statistics per member over M."""

    def __init__(self, members: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, features))
        self.bias = nn.Parameter(torch.zeros(members, features))
        self.register_buffer("running_mean", torch.zeros(members, features))
        self.register_buffer("running_var", torch.ones(members, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=1)  # [N, F]
            var = x.var(dim=1, unbiased=False)
            with torch.no_grad():
                count = x.shape[1]
                unbiased = var * (count / max(count - 1, 1))
                # statistics stay float32 under bf16 autocast (a no-op in float32)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), BN_MOMENTUM)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), BN_MOMENTUM)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + BN_EPS)  # [N, F]
        return (x - mean.unsqueeze(1)) * scale.unsqueeze(1) + self.bias.unsqueeze(1)


class PixelEnsemble(nn.Module):
    """N MLPs mapping per-pixel feature vectors [N, M, C] to outputs [N, M, K]."""

    def __init__(
        self,
        members: int,  # N ensemble members
        in_features: int,  # C: concatenated feature channels
        outputs: int,  # K: classes (cross-entropy) or heatmaps (L2)
        hidden: tuple[int, int] | None = None,  # (h1, h2), None = hidden_sizes(outputs)
        generator: torch.Generator | None = None,  # RNG for the N(0, 0.02) initialisation
    ) -> None:
        super().__init__()
        self.members = members
        self.in_features = in_features
        self.outputs = outputs
        self.hidden = tuple(hidden or hidden_sizes(outputs))
        h1, h2 = self.hidden
        shapes = [(in_features, h1), (h1, h2), (h2, outputs)]
        for idx, (fan_in, fan_out) in enumerate(shapes, start=1):
            weight = torch.randn(members, fan_in, fan_out, generator=generator) * 0.02
            setattr(self, f"w{idx}", nn.Parameter(weight))  # [N, in, out]
            setattr(self, f"b{idx}", nn.Parameter(torch.zeros(members, fan_out)))
        self.bn1 = EnsembleBatchNorm(members, h1)
        self.bn2 = EnsembleBatchNorm(members, h2)

    def extra_repr(self) -> str:
        return (
            f"members={self.members}, in={self.in_features}, hidden={self.hidden}, "
            f"out={self.outputs}"
        )

    def head(self, h1: torch.Tensor) -> torch.Tensor:
        """Everything after the first Linear: [N, M, h1] (pre-activation) -> [N, M, K]."""
        x = self.bn1(torch.relu(h1))
        x = self.bn2(torch.relu(torch.baddbmm(self.b2.unsqueeze(1), x, self.w2)))
        return torch.baddbmm(self.b3.unsqueeze(1), x, self.w3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[N, M, C] (member n's own pixels) -> [N, M, K]."""
        if features.ndim != 3 or features.shape[0] != self.members:
            raise ValueError(
                f"PixelEnsemble: expected [{self.members}, M, {self.in_features}], "
                f"got {list(features.shape)}"
            )
        return self.head(torch.baddbmm(self.b1.unsqueeze(1), features, self.w1))

    @torch.no_grad()
    def folded_head(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eval-mode layers 2 and 3 with BatchNorm folded in, transposed for channels-first use:
        (w2 [N, h2, h1], b2 [N, h2], w3 [N, K, h2], b3 [N, K])."""
        weights = []
        for bn, w, b in ((self.bn1, self.w2, self.b2), (self.bn2, self.w3, self.b3)):
            scale = bn.weight * torch.rsqrt(bn.running_var + BN_EPS)  # [N, F]
            shift = bn.bias - bn.running_mean * scale
            weights.append((w * scale.unsqueeze(2)).transpose(1, 2).contiguous())
            weights.append(b + torch.einsum("nf,nfo->no", shift, w))
        return tuple(weights)

    @torch.no_grad()
    def head_channels_first(
        self,
        h1: torch.Tensor,  # [..., N, h1, P] first-layer pre-activations (overwritten by ReLU)
        folded: tuple[torch.Tensor, ...] | None = None,  # folded_head(), to reuse across calls
    ) -> torch.Tensor:
        """Eval-mode `head` on channels-first pixels: [..., N, h1, P] -> [..., N, K, P]."""
        w2, b2, w3, b3 = folded if folded is not None else self.folded_head()
        x = torch.matmul(w2, torch.relu_(h1)).add_(b2.unsqueeze(-1))
        return torch.matmul(w3, torch.relu_(x)).add_(b3.unsqueeze(-1))

    def member_state(self, member: int) -> dict[str, torch.Tensor]:
        """Copies of member `member`'s slice of every parameter and buffer."""
        return {k: v[member].detach().clone() for k, v in self.state_dict().items()}

    def load_member_state(self, member: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, value in self.state_dict().items():
                value[member].copy_(state[name])


def _row_bands(height: int, band: int) -> Iterator[tuple[int, int]]:
    for start in range(0, height, band):
        yield start, min(height, start + band)


@torch.no_grad()
def forward_maps(
    ensembles: list[PixelEnsemble],  # heads sharing the input features (e.g. parts, keypoints)
    geometry: TapGeometry,
    features: dict[str, torch.Tensor],  # {tap name: [B, C_l, r, r]}
    band_rows: int | None = None,  # output rows per band, None = from TILE_ELEMENTS
    members_per_tile: int = 1,  # members whose h1 channels are accumulated together
    gemm_max_res: int = GEMM_MAX_RES,  # up-sample maps up to this resolution by one GEMM
) -> Iterator[tuple[int, int, list[torch.Tensor]]]:
    """Factorised forward, eval mode: yields (row0, row1, [[N, B, K_e, h, W] per ensemble]).

    Every lower resolution is projected once with the first layers of all members of all
    ensembles ([B, sum_e N * h1_e, rows, r]). Then, per band of rows and per tile of
    `members_per_tile` members, the full-resolution taps are projected, each lower resolution's
    projection is up-sampled into the tile in place, and the rest of the MLP runs: the tile
    ([B, members_per_tile * h1, band_rows, W]) stays in cache while it is summed.
    """
    geometry.check_features(features)
    height, width = geometry.image_size
    batch = next(iter(features.values())).shape[0]
    if band_rows is None:
        per_row = batch * members_per_tile * max(e.hidden[0] for e in ensembles) * width
        band_rows = max(1, min(height, TILE_ELEMENTS // per_row))
    w1 = torch.cat([e.w1.permute(0, 2, 1).reshape(-1, e.in_features) for e in ensembles])
    b1 = torch.cat([e.b1.reshape(-1) for e in ensembles])  # [P = sum N * h1]
    folded = [e.folded_head() for e in ensembles]
    native, projections = None, []  # full-resolution maps; (lo, [B, P, hi - lo, r]) per lower r
    for res, names, start, stop in geometry.resolution_groups():
        maps = geometry.stack_resolution(features, names).float()  # [B, C_r, r, r]
        if res == geometry.canvas:
            native = (maps, w1[:, start:stop].contiguous())  # projected tile by tile below
            continue
        lo, hi = geometry.native_rows(res)
        rows = maps[:, :, lo:hi].reshape(batch, stop - start, -1)  # [B, C_r, (hi - lo) * r]
        projected = torch.matmul(w1[:, start:stop], rows).view(batch, -1, hi - lo, res)
        projections.append((lo, projected))
    # Low resolutions: rows at native width, then one GEMM with the stacked column weights
    # ([B * K * h, sum r] @ [sum r, R]): about sum r MACs per output instead of a pass per map.
    stacked = [(lo, p) for lo, p in projections if p.shape[-1] <= gemm_max_res]
    projections = [(lo, p) for lo, p in projections if p.shape[-1] > gemm_max_res]
    columns = None
    if stacked:
        columns = torch.cat([column_weights(p.shape[-1], geometry.canvas) for _, p in stacked])
        columns = columns.to(b1.device)
    top = geometry.top
    for row0, row1 in _row_bands(height, band_rows):
        canvas_rows = torch.arange(row0, row1) + top
        band = None
        if native is not None:
            maps, _ = native
            band = maps[:, :, top + row0 : top + row1].reshape(batch, maps.shape[1], -1)
        outputs, offset = [], 0
        for ens, fold in zip(ensembles, folded, strict=True):
            h1_size = ens.hidden[0]
            pieces = []
            for m0 in range(0, ens.members, members_per_tile):
                m1 = min(ens.members, m0 + members_per_tile)
                c0, c1 = offset + m0 * h1_size, offset + m1 * h1_size
                if band is None:
                    tile = b1[c0:c1].view(1, -1, 1).expand(batch, -1, band_rows * width)
                    tile = tile[:, :, : (row1 - row0) * width].contiguous()
                else:
                    tile = torch.matmul(native[1][c0:c1], band).add_(b1[c0:c1].view(1, -1, 1))
                tile = tile.view(batch, c1 - c0, row1 - row0, width)
                if columns is not None:
                    bands = [
                        row_band(p[:, c0:c1], lo, geometry.canvas, canvas_rows) for lo, p in stacked
                    ]
                    low = torch.cat(bands, dim=-1).view(-1, columns.shape[0])
                    tile.view(-1, width).addmm_(low, columns)
                for lo, projected in projections:
                    add_upsampled_rows(tile, projected[:, c0:c1], lo, geometry.canvas, canvas_rows)
                part = tuple(t[m0:m1] for t in fold)
                h1 = tile.view(batch, m1 - m0, h1_size, -1)
                pieces.append(ens.head_channels_first(h1, part))  # [B, m, K, h * W]
            offset += ens.members * h1_size
            out = torch.cat(pieces, dim=1).view(batch, ens.members, ens.outputs, row1 - row0, width)
            outputs.append(out.transpose(0, 1))
        yield row0, row1, outputs


@torch.no_grad()
def forward_maps_materialised(
    ensembles: list[PixelEnsemble],
    geometry: TapGeometry,
    features: dict[str, torch.Tensor],
    band_rows: int = 32,  # image rows per MLP call
) -> list[torch.Tensor]:
    """Reference (the released code's algorithm), eval mode: [N, B, K_e, H, W] per ensemble.

    Every pixel's up-sampled, concatenated feature vector is materialised ([B, C, H, W]), then
    each ensemble's MLPs run on it; the first layers of all members are one matmul per band.
    """
    dense = materialise(geometry, features)  # [B, C, H, W]
    batch, channels, height, width = dense.shape
    results = [
        torch.empty(e.members, batch, e.outputs, height, width, device=dense.device)
        for e in ensembles
    ]
    w1s = [e.w1.transpose(1, 2).reshape(-1, channels) for e in ensembles]  # [N * h1, C]
    folded = [e.folded_head() for e in ensembles]
    for b in range(batch):
        for row0, row1 in _row_bands(height, band_rows):
            pixels = dense[b, :, row0:row1].reshape(channels, -1)  # [C, P] (a view)
            for ens, w1, fold, result in zip(ensembles, w1s, folded, results, strict=True):
                h1 = torch.addmm(ens.b1.reshape(-1, 1), w1, pixels)  # [N * h1, P]
                out = ens.head_channels_first(h1.view(ens.members, ens.hidden[0], -1), fold)
                result[:, b, :, row0:row1] = out.view(ens.members, ens.outputs, row1 - row0, width)
    return results


@dataclass
class Interpreter:
    """A trained interpreter: its config, the part ensemble and the optional keypoint ensemble."""

    config: InterpreterConfig
    parts: PixelEnsemble  # K = number of classes
    keypoints: PixelEnsemble | None  # K = number of keypoints (heatmaps)
    summary: dict[str, Any]  # training record (iterations, losses per member)

    def ensembles(self) -> list[PixelEnsemble]:
        return [self.parts] + ([self.keypoints] if self.keypoints is not None else [])

    def to(self, device: str | torch.device) -> Interpreter:
        for ens in self.ensembles():
            ens.to(device)
        return self

    def eval(self) -> Interpreter:
        for ens in self.ensembles():
            ens.eval().requires_grad_(False)
        return self
