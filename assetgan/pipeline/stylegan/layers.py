"""Equalized-learning-rate layers shared by the StyleGAN2 generator and discriminator.

Weights are stored as N(0, 1) draws and scaled at run time by 1/sqrt(fan_in) (times the layer's
learning-rate multiplier), so Adam sees every parameter at the same scale. Parameter and buffer
names follow stylegan2-ada-pytorch (docs/stylegan.md has the table).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from assetgan.pipeline.stylegan import ops


class FullyConnectedLayer(nn.Module):
    """y = act(x @ (weight * gain).T + bias * lr_multiplier); weight [out, in], bias [out]."""

    def __init__(
        self,
        in_features: int,  # input width
        out_features: int,  # output width
        bias: bool = True,  # add a learned bias
        lrelu: bool = False,  # leaky ReLU(0.2) * sqrt(2) after the bias, else linear
        lr_multiplier: float = 1.0,  # learning-rate multiplier (mapping network: 0.01)
        bias_init: float = 0.0,  # initial bias (style affines start at 1)
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.lrelu = lrelu
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in] -> [B, out]
        weight = self.weight * self.weight_gain
        bias = None if self.bias is None else self.bias * self.bias_gain
        if not self.lrelu and bias is not None:
            return torch.addmm(bias.unsqueeze(0), x, weight.t())
        return ops.bias_act(x @ weight.t(), bias, lrelu=self.lrelu)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_features}, out={self.out_features}, lrelu={self.lrelu}, "
            f"lr_multiplier={self.lr_multiplier:g}"
        )


class Conv2dLayer(nn.Module):
    """Equalized-lr conv with optional 2x FIR down-sampling; weight [out, in, k, k]."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        kernel_size: int,  # square kernel side
        bias: bool = True,  # add a learned bias
        lrelu: bool = True,  # leaky ReLU(0.2) * sqrt(2) after the bias, else linear
        down: bool = False,  # 2x down-sampling with the FIR filter
        resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0),  # 1-D FIR taps
        conv_clamp: float | None = None,  # clamp outputs to +-X
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.lrelu = lrelu
        self.down = down
        self.conv_clamp = conv_clamp
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """[B, in, H, W] -> [B, out, H, W] (or [B, out, H/2, W/2] when down-sampling)."""
        weight = self.weight * self.weight_gain
        if self.down:
            x = ops.conv2d_down2(x, weight, self.resample_filter)
        else:
            x = torch.nn.functional.conv2d(x, weight, padding=self.kernel_size // 2)
        return ops.bias_act(x, self.bias, lrelu=self.lrelu, gain=gain, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, "
            f"down={self.down}, lrelu={self.lrelu}"
        )
