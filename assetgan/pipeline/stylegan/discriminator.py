"""Residual StyleGAN2 discriminator with minibatch standard deviation (plain PyTorch).

Names follow stylegan2-ada-pytorch (`b64.fromrgb`, `b64.conv0`, `b64.conv1`, `b64.skip`, ...,
`b4.mbstd`, `b4.conv`, `b4.fc`, `b4.out`); unconditional only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from assetgan.pipeline.stylegan.config import DiscriminatorConfig
from assetgan.pipeline.stylegan.layers import Conv2dLayer, FullyConnectedLayer
from assetgan.pipeline.stylegan.ops import setup_filter

_RESIDUAL_GAIN = math.sqrt(0.5)  # the sum of two unit-variance branches keeps unit variance


class DiscriminatorBlock(nn.Module):
    """(fromrgb at the top block) -> conv0 -> down-conv1, plus a 1x1 down-sampled skip."""

    def __init__(
        self,
        in_channels: int,  # channels from the previous block, 0 = the first (takes the image)
        tmp_channels: int,  # channels inside the block
        out_channels: int,  # channels handed to the next block (at half resolution)
        resolution: int,  # input side of this block
        img_channels: int,  # colour channels
        resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0),  # 1-D FIR taps
        conv_clamp: float | None = None,  # clamp conv outputs to +-X
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            3,
            down=True,
            resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        self.skip = Conv2dLayer(
            tmp_channels,
            out_channels,
            1,
            bias=False,
            lrelu=False,
            down=True,
            resample_filter=resample_filter,
        )

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None) -> torch.Tensor:
        """x [B, in, R, R] (or img [B, img_channels, R, R] at the top) -> [B, out, R/2, R/2]."""
        if self.in_channels == 0:
            x = self.fromrgb(img)
        skip = self.skip(x, gain=_RESIDUAL_GAIN)
        x = self.conv0(x)
        x = self.conv1(x, gain=_RESIDUAL_GAIN)
        return skip + x

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, resolution={self.resolution}"


class MinibatchStdLayer(nn.Module):
    """Append the mean stddev over groups of samples as `num_channels` extra feature maps.

    Samples b and b + n, b + 2n, ... (n = B / G) form a group, as in ada. The batch size must be
    a multiple of the group size (or smaller than it, then the whole batch is one group).
    """

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] -> [B, C + F, H, W]
        batch, channels, height, width = x.shape
        group = min(self.group_size, batch)
        if batch % group:
            raise ValueError(
                f"MinibatchStdLayer: batch {batch} is not a multiple of group size {group}"
            )
        feats = self.num_channels
        y = x.reshape(group, -1, feats, channels // feats, height, width)  # [G, n, F, c, H, W]
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, c, H, W]
        y = y.mean(dim=(2, 3, 4)).reshape(-1, feats, 1, 1)  # [n, F, 1, 1]
        y = y.repeat(group, 1, height, width)  # [B, F, H, W]
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: minibatch stddev -> 3x3 conv -> fc -> out (one logit per image)."""

    def __init__(
        self,
        in_channels: int,  # channels at 4x4
        resolution: int = 4,  # side of the input maps
        mbstd_group_size: int = 4,  # minibatch stddev group size
        mbstd_num_channels: int = 1,  # stddev channels, 0 = off
        conv_clamp: float | None = None,  # clamp conv outputs to +-X
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
            if mbstd_num_channels > 0
            else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, 3, conv_clamp=conv_clamp
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, lrelu=True)
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, 4, 4] -> [B, 1]
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x)


class Discriminator(nn.Module):
    """images [B, C, R, R] in [-1, 1] -> realness logits [B, 1]."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        self.img_resolution = config.resolution
        self.img_channels = config.img_channels
        channels = config.channels_per_resolution()
        self.block_resolutions = sorted((r for r in channels if r > 4), reverse=True)
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                in_channels=channels[res] if res < config.resolution else 0,
                tmp_channels=channels[res],
                out_channels=channels[res // 2],
                resolution=res,
                img_channels=config.img_channels,
                resample_filter=config.resample_filter,
                conv_clamp=config.conv_clamp,
            )
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(
            channels[4],
            mbstd_group_size=config.mbstd_group_size,
            mbstd_num_channels=config.mbstd_num_channels,
            conv_clamp=config.conv_clamp,
        )

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected:
            raise ValueError(f"Discriminator: expected [B, {expected}], got {list(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x)
