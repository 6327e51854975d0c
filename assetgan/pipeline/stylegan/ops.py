"""StyleGAN2 primitive ops in plain PyTorch: FIR resampling, bias + activation, modulated conv.

Conventions (docs/stylegan.md): tensors are NCHW float32; a resampling filter is the normalized
outer product of 1-D taps (`[1, 3, 3, 1]` -> a [4, 4] filter summing to 1), applied as a true
convolution. Every op here is differentiable to any order (R1 and path-length need the second
order), so nothing uses custom autograd functions.

The pad/up/filter/down arithmetic reproduces stylegan2-ada-pytorch's `upfirdn2d` and
`conv2d_resample` so weights from its checkpoints give the same images; tests check each op
against an independently written reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the second moment of a unit Gaussian through lrelu(0.2)


def setup_filter(taps: tuple[float, ...] | list[float]) -> torch.Tensor:
    """The [k, k] 2-D FIR filter for 1-D `taps`: outer product, normalized to sum to 1."""
    taps_1d = torch.as_tensor(taps, dtype=torch.float32)
    kernel = torch.outer(taps_1d, taps_1d)
    return kernel / kernel.sum()


def upfirdn2d(
    x: torch.Tensor,  # [B, C, H, W]
    f: torch.Tensor,  # [kh, kw] FIR filter
    up: int = 1,  # insert up-1 zeros after every pixel
    down: int = 1,  # keep every down-th pixel after filtering
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),  # (left, right, top, bottom); < 0 crops
    gain: float = 1.0,  # overall scale of the signal (up**2 keeps the DC level when upsampling)
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with `f` per channel, downsample.

    Output size along H: (H * up + top + bottom - kh) // down + 1. The filter is flipped before
    the correlation so this is a true convolution (a no-op for symmetric filters).
    """
    batch, channels, height, width = x.shape
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, pad)
    kernel = (f * gain).flip((0, 1)).to(x.dtype)
    kernel = kernel[None, None].expand(channels, 1, *f.shape)
    return F.conv2d(x, kernel, stride=down, groups=channels)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, 2H, 2W] with the FIR filter `f` (ToRGB skip path)."""
    kh = f.shape[0]
    p0, p1 = (kh + 1) // 2, (kh - 2) // 2
    return upfirdn2d(x, f, up=2, pad=(p0, p1, p0, p1), gain=4.0)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, H/2, W/2] with the FIR filter `f`."""
    kh = f.shape[0]
    p0, p1 = (kh - 1) // 2, (kh - 2) // 2
    return upfirdn2d(x, f, down=2, pad=(p0, p1, p0, p1))


def conv2d_up2(x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """3x3 (or kxk) conv on the 2x-upsampled input: [B, I, H, W], [O, I, k, k] -> [B, O, 2H, 2W].

    A stride-2 transposed convolution followed by the FIR filter (gain 4), the same arithmetic as
    ada's `conv2d_resample(up=2, padding=k//2)`.
    """
    kernel = weight.shape[-1]
    fh = f.shape[0]
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # [B, O, 2H+k-2, 2W+k-2]
    p0 = (fh + 1) // 2 + kernel // 2 - (kernel - 1)
    p1 = (fh - 2) // 2 + kernel // 2 - (kernel - 2)
    return upfirdn2d(x, f, pad=(p0, p1, p0, p1), gain=4.0)


def conv2d_down2(x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """kxk conv with 2x downsampling: [B, I, H, W], [O, I, k, k] -> [B, O, H/2, W/2].

    FIR-filter first, then a stride-2 conv (k > 1); for 1x1 kernels downsample first, then
    convolve (ada's `conv2d_resample(down=2, padding=k//2)`).
    """
    kernel = weight.shape[-1]
    fh = f.shape[0]
    p0 = kernel // 2 + (fh - 1) // 2
    p1 = kernel // 2 + (fh - 2) // 2
    if kernel == 1:
        x = upfirdn2d(x, f, down=2, pad=(p0, p1, p0, p1))
        return F.conv2d(x, weight)
    x = upfirdn2d(x, f, pad=(p0, p1, p0, p1))
    return F.conv2d(x, weight, stride=2)


def bias_act(
    x: torch.Tensor,  # [B, C, ...]
    bias: torch.Tensor | None,  # [C]
    lrelu: bool,  # True: leaky ReLU(0.2) * sqrt(2); False: linear
    gain: float = 1.0,  # extra scale after the activation (sqrt(0.5) in residual branches)
    clamp: float | None = None,  # clamp the result to +-clamp (ada's conv_clamp, before gain)
) -> torch.Tensor:
    """x + bias, activation with its default gain, times `gain`, optional clamp to +-clamp*gain."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    total_gain = gain
    if lrelu:
        x = F.leaky_relu(x, LRELU_SLOPE)
        total_gain = gain * LRELU_GAIN
    if total_gain != 1.0:
        x = x * total_gain
    if clamp is not None:
        x = x.clamp(-clamp * gain, clamp * gain)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each vector to unit root-mean-square along `dim`."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,  # [B, I, H, W]
    weight: torch.Tensor,  # [O, I, k, k]
    styles: torch.Tensor,  # [B, I] per-sample input-channel scales
    noise: torch.Tensor | None = None,  # broadcastable to [B, O, H', W'], added after demod
    up2: bool = False,  # convolve on the 2x-upsampled input (needs `resample_filter`)
    resample_filter: torch.Tensor | None = None,  # [kh, kw]
    demodulate: bool = True,  # normalize each output channel to unit expected variance
) -> torch.Tensor:
    """StyleGAN2 modulated convolution, executed with one shared-weight conv for the batch.

    Mathematically conv(x, w_b) with w_b[o, i] = weight[o, i] * styles[b, i] (times
    1 / ||weight[o] * styles[b]||_2 when demodulating), computed as
    conv(x * styles, weight) * dcoef: cheaper on CPU than ada's grouped "fused" path and equal
    up to float rounding. Returns [B, O, H, W] (or [B, O, 2H, 2W] with `up2`).
    """
    batch, in_channels = x.shape[:2]
    if weight.shape[1] != in_channels or styles.shape != (batch, in_channels):
        raise ValueError(
            f"modulated_conv2d: x {list(x.shape)}, weight {list(weight.shape)}, "
            f"styles {list(styles.shape)} disagree (expected styles [{batch}, {in_channels}])"
        )
    x = x * styles.reshape(batch, -1, 1, 1)
    if up2:
        if resample_filter is None:
            raise ValueError("modulated_conv2d: up2 needs a resample_filter")
        x = conv2d_up2(x, weight, resample_filter)
    else:
        x = F.conv2d(x, weight, padding=weight.shape[-1] // 2)
    if demodulate:
        # sum_{i,kh,kw} (weight[o,i,kh,kw] * styles[b,i])^2 = styles^2 @ sum_k weight^2
        weight_sq = weight.square().sum(dim=(2, 3))  # [O, I]
        dcoefs = (styles.square() @ weight_sq.t() + 1e-8).rsqrt()  # [B, O]
        x = x * dcoefs.reshape(batch, -1, 1, 1)
    if noise is not None:
        x = x + noise
    return x
