"""The downstream segmenter: car_20 part logits + 12 keypoint heatmaps from an RGB image.

Two architectures behind one config (docs/segment.md says why the UNet is the default):
- `unet`: a compact UNet at full resolution (skip connections down to the input pixels, so thin
  parts such as handles and mirrors survive at 64x64);
- `lraspp`: torchvision's `lraspp_mobilenet_v3_large` (no pretrained weights), output stride 16,
  kept as the measured baseline.
Both emit `num_classes + num_keypoints` channels at the input resolution; `Segmenter.forward`
cuts them into logits and heatmaps. Any input size works (the UNet pads to a multiple of 2**levels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from assetgan.core.errors import AssetganError
from assetgan.pipeline.downstream.config import Architecture, SegmenterConfig

__all__ = ["Architecture", "LRASPP", "Segmenter", "SegmenterConfig", "UNet", "count_parameters"]


class ConvBlock(nn.Module):
    """Two 3x3 conv + BatchNorm + ReLU."""

    def __init__(
        self,
        in_channels: int,  # input feature channels
        out_channels: int,  # output feature channels
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNet(nn.Module):
    """[B, 3, H, W] -> [B, out_channels, H, W]; max-pool down, bilinear up, concat skips."""

    def __init__(
        self,
        channels: tuple[int, ...],  # widths per level, full resolution first
        out_channels: int,  # logits + heatmaps
    ) -> None:
        super().__init__()
        self.channels = tuple(channels)
        self.down = nn.ModuleList()
        previous = 3
        for width in self.channels:
            self.down.append(ConvBlock(previous, width))
            previous = width
        self.up = nn.ModuleList()
        for width in reversed(self.channels[:-1]):
            self.up.append(ConvBlock(previous + width, width))
            previous = width
        self.head = nn.Conv2d(previous, out_channels, 1)
        nn.init.normal_(self.head.weight, std=1e-3)  # start near zero heatmaps, uniform logits
        nn.init.zeros_(self.head.bias)

    def extra_repr(self) -> str:
        return f"channels={list(self.channels)}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        multiple = 2 ** (len(self.channels) - 1)
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images
        skips = []
        for level, block in enumerate(self.down):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)[..., :height, :width]


class LRASPP(nn.Module):
    """torchvision lraspp_mobilenet_v3_large without any pretrained weights (the baseline)."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        self.net = lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=out_channels
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)["out"]


class Segmenter(nn.Module):
    """uint8-range RGB in, (part logits, keypoint heatmaps) out, at the input resolution."""

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        self.config = config.validate()
        out_channels = config.num_classes + config.num_keypoints
        if config.architecture == Architecture.unet:
            self.net = UNet(config.channels, out_channels)
        else:
            self.net = LRASPP(out_channels)
        # ImageNet-free normalisation: map [0, 255] to about [-1, 1].
        self.register_buffer("scale", torch.tensor(1.0 / 127.5), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B, 3, H, W] float in [0, 255] -> logits [B, C, H, W], heatmaps [B, K, H, W]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise AssetganError(f"segmenter input must be [B, 3, H, W], got {list(images.shape)}")
        out = self.net(images * self.scale - 1.0)
        return out[:, : self.config.num_classes], out[:, self.config.num_classes :]


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
