"""StyleGAN2 generator in plain PyTorch: mapping network, synthesis network, feature taps.

Built from a GeneratorConfig (config.py). Parameter and buffer names equal stylegan2-ada-pytorch's
(`mapping.fc0.weight`, `synthesis.b8.conv0.affine.bias`, ...; the full table is in
docs/stylegan.md), so its state dicts load one to one. Conditioning labels (c_dim > 0) and the
'orig'/'resnet' synthesis architectures are not supported: the skip architecture only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from assetgan.pipeline.stylegan import ops
from assetgan.pipeline.stylegan.config import GeneratorConfig
from assetgan.pipeline.stylegan.layers import FullyConnectedLayer

NOISE_MODES = ("random", "const", "none")


def _check_shape(tensor: torch.Tensor, expected: list[int | None], what: str) -> None:
    ok = tensor.ndim == len(expected) and all(
        e is None or e == s for e, s in zip(expected, tensor.shape, strict=True)
    )
    if not ok:
        shown = ["*" if e is None else e for e in expected]
        raise ValueError(f"{what}: expected shape {shown}, got {list(tensor.shape)}")


class MappingNetwork(nn.Module):
    """z [B, z_dim] -> ws [B, num_ws, w_dim] through an lrelu MLP with lr multiplier 0.01.

    Tracks `w_avg` (an exponential moving average of w, beta 0.995) while training, and applies
    truncation w' = w_avg + psi * (w - w_avg) to the first `truncation_cutoff` ws (all if None).
    """

    def __init__(
        self,
        z_dim: int,  # input latent size
        w_dim: int,  # output latent size
        num_ws: int,  # copies of w to broadcast (one per synthesis layer)
        num_layers: int = 8,  # fully connected layers
        layer_features: int | None = None,  # hidden width, None = w_dim
        lr_multiplier: float = 0.01,  # learning-rate multiplier of every layer
        w_avg_beta: float = 0.995,  # decay of the tracked average of w
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        hidden = w_dim if layer_features is None else layer_features
        widths = [z_dim] + [hidden] * (num_layers - 1) + [w_dim]
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                widths[idx], widths[idx + 1], lrelu=True, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,  # [B, z_dim]
        truncation_psi: float = 1.0,  # 1 = no truncation, 0 = every w is w_avg
        truncation_cutoff: int | None = None,  # truncate only ws[:, :cutoff], None = all
        update_w_avg: bool = True,  # in training mode, fold this batch into w_avg
    ) -> torch.Tensor:
        """Returns ws [B, num_ws, w_dim]."""
        _check_shape(z, [None, self.z_dim], "MappingNetwork z")
        x = ops.normalize_2nd_moment(z.to(torch.float32))
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.training and update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


def truncate(
    ws: torch.Tensor,  # [B, num_ws, w_dim]
    w_avg: torch.Tensor,  # [w_dim]
    psi: float,  # 1 = unchanged, 0 = w_avg
    cutoff: int | None = None,  # only ws[:, :cutoff] are truncated; None = all
) -> torch.Tensor:
    """The truncation trick: w_avg + psi * (w - w_avg) on the first `cutoff` layers."""
    cutoff = ws.shape[1] if cutoff is None else max(0, min(int(cutoff), ws.shape[1]))
    head = w_avg.lerp(ws[:, :cutoff], psi)
    return torch.cat([head, ws[:, cutoff:]], dim=1)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally on the 2x up-sampled input) + noise + bias + lrelu."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        w_dim: int,  # latent size feeding the style affine
        resolution: int,  # output resolution of this layer
        up: bool = False,  # 2x up-sampling (the first conv of every block past 4x4)
        use_noise: bool = True,  # add per-pixel noise scaled by a learned strength
        resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0),  # 1-D FIR taps
        conv_clamp: float | None = None,  # clamp outputs to +-X
        kernel_size: int = 3,  # square kernel side
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self,
        x: torch.Tensor,  # [B, in, R, R] (R = resolution, or resolution/2 when up-sampling)
        w: torch.Tensor,  # [B, w_dim]
        noise_mode: str = "random",  # random | const (the stored noise_const) | none
        noise_generator: torch.Generator | None = None,  # RNG for random noise
    ) -> torch.Tensor:
        """Returns [B, out, resolution, resolution]."""
        in_res = self.resolution // 2 if self.up else self.resolution
        _check_shape(x, [None, self.in_channels, in_res, in_res], f"SynthesisLayer@{in_res} x")
        styles = self.affine(w)  # [B, in]
        noise = None
        if self.use_noise and noise_mode == "random":
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            noise = torch.randn(shape, device=x.device, generator=noise_generator)
            noise = noise * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = ops.modulated_conv2d(
            x, self.weight, styles, noise=noise, up2=self.up, resample_filter=self.resample_filter
        )
        return ops.bias_act(x, self.bias, lrelu=True, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_channels}, out={self.out_channels}, "
            f"resolution={self.resolution}, up={self.up}"
        )


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation: features -> colour residual."""

    def __init__(
        self,
        in_channels: int,  # feature channels
        out_channels: int,  # colour channels
        w_dim: int,  # latent size feeding the style affine
        conv_clamp: float | None = None,  # clamp outputs to +-X
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / in_channels**0.5

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """[B, in, R, R], [B, w_dim] -> [B, out, R, R]."""
        styles = self.affine(w) * self.weight_gain
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False)
        return ops.bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: (const | up-conv0) -> conv1 -> torgb + upsampled img."""

    def __init__(
        self,
        in_channels: int,  # channels of the previous block, 0 = the first (4x4) block
        out_channels: int,  # channels of this block
        w_dim: int,  # latent size
        resolution: int,  # side of this block's feature maps
        img_channels: int,  # colour channels
        use_noise: bool = True,  # noise inputs in the conv layers
        resample_filter: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0),  # 1-D FIR taps
        conv_clamp: float | None = None,  # clamp conv outputs to +-X
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        common = dict(
            w_dim=w_dim,
            resolution=resolution,
            use_noise=use_noise,
            resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=True, **common)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def layer_names(self) -> list[str]:
        """Names of this block's feature taps, in forward order."""
        if self.in_channels == 0:
            return [f"b{self.resolution}.const", f"b{self.resolution}.conv1"]
        return [f"b{self.resolution}.conv0", f"b{self.resolution}.conv1"]

    def forward(
        self,
        x: torch.Tensor | None,  # [B, in, R/2, R/2], None for the first block
        img: torch.Tensor | None,  # [B, img_channels, R/2, R/2], None for the first block
        ws: torch.Tensor,  # [B, num_conv + 1, w_dim]
        noise_mode: str = "random",
        noise_generator: torch.Generator | None = None,
        features: dict[str, torch.Tensor] | None = None,  # filled with this block's taps
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (x [B, out, R, R], img [B, img_channels, R, R])."""
        names = self.layer_names()
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            if features is not None:
                features[names[0]] = x
            x = self.conv1(x, ws[:, 0], noise_mode, noise_generator)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode, noise_generator)
            if features is not None:
                features[names[0]] = x
            x = self.conv1(x, ws[:, 1], noise_mode, noise_generator)
        if features is not None:
            features[names[1]] = x
        if img is not None:
            img = ops.upsample2d(img, self.resample_filter)
        rgb = self.torgb(x, ws[:, self.num_conv])
        img = rgb if img is None else img + rgb
        return x, img

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, out={self.out_channels}, resolution={self.resolution}"


@dataclass(frozen=True)
class FeatureTap:
    """One synthesis feature map returned by `SynthesisNetwork(..., return_features=True)`."""

    name: str  # e.g. "b4.const", "b8.conv0" (module path under `synthesis`)
    channels: int  # feature channels C of the map
    resolution: int  # side R of the square map [B, C, R, R] (on the full canvas)


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> images [B, img_channels, H, W] (skip architecture).

    Block at resolution r consumes ws[:, i : i + num_conv + 1] and advances i by num_conv, so a
    block's ToRGB shares its w with the next block's first conv (ada's layout). H = W =
    resolution unless the config crops rows (crop_rows), in which case images are
    [B, C, bottom - top, W]; feature maps always cover the full square canvas.
    """

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim = config.w_dim
        self.img_resolution = config.resolution
        self.img_channels = config.img_channels
        self.crop_rows = config.crop_rows
        channels = config.channels_per_resolution()
        self.block_resolutions = sorted(channels)
        for res in self.block_resolutions:
            block = SynthesisBlock(
                in_channels=channels[res // 2] if res > 4 else 0,
                out_channels=channels[res],
                w_dim=config.w_dim,
                resolution=res,
                img_channels=config.img_channels,
                use_noise=config.use_noise,
                resample_filter=config.resample_filter,
                conv_clamp=config.conv_clamp,
            )
            setattr(self, f"b{res}", block)
        self.num_ws = sum(self.block(res).num_conv for res in self.block_resolutions) + 1

    def block(self, res: int) -> SynthesisBlock:
        return getattr(self, f"b{res}")

    def feature_taps(self) -> list[FeatureTap]:
        """Every tap in forward order: the 4x4 const, then every conv layer's output."""
        taps = []
        for res in self.block_resolutions:
            block = self.block(res)
            for name in block.layer_names():
                taps.append(FeatureTap(name=name, channels=block.out_channels, resolution=res))
        return taps

    def forward(
        self,
        ws: torch.Tensor,  # [B, num_ws, w_dim]
        noise_mode: str = "random",  # random | const | none
        noise_generator: torch.Generator | None = None,  # RNG for random noise
        return_features: bool = False,  # also return {tap name: [B, C, R, R]}
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Returns images [B, img_channels, H, W] in about [-1, 1] (and the feature dict)."""
        _check_shape(ws, [None, self.num_ws, self.w_dim], "SynthesisNetwork ws")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        ws = ws.to(torch.float32)
        features: dict[str, torch.Tensor] | None = {} if return_features else None
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = self.block(res)
            block_ws = ws[:, w_idx : w_idx + block.num_conv + block.num_torgb]
            x, img = block(x, img, block_ws, noise_mode, noise_generator, features)
            w_idx += block.num_conv
        if self.crop_rows is not None:
            img = img[:, :, self.crop_rows[0] : self.crop_rows[1]]
        if features is not None:
            return img, features
        return img


class Generator(nn.Module):
    """z [B, z_dim] -> images [B, C, H, W]: `mapping` then `synthesis` (ada's module names)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim = config.z_dim
        self.w_dim = config.w_dim
        self.img_resolution = config.resolution
        self.img_channels = config.img_channels
        self.synthesis = SynthesisNetwork(config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=config.z_dim,
            w_dim=config.w_dim,
            num_ws=self.num_ws,
            num_layers=config.mapping_layers,
            layer_features=config.mapping_features,
            lr_multiplier=config.mapping_lr_multiplier,
            w_avg_beta=config.w_avg_beta,
        )

    def forward(
        self,
        z: torch.Tensor,  # [B, z_dim]
        truncation_psi: float = 1.0,  # 1 = none
        truncation_cutoff: int | None = None,  # truncate ws[:, :cutoff] only
        noise_mode: str = "random",  # random | const | none
        noise_generator: torch.Generator | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Images [B, C, H, W] in about [-1, 1] (and features, see SynthesisNetwork)."""
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(
            ws,
            noise_mode=noise_mode,
            noise_generator=noise_generator,
            return_features=return_features,
        )

    def extra_repr(self) -> str:
        return f"resolution={self.img_resolution}, num_ws={self.num_ws}"
