"""The reconstruction network: one image -> a textured, part-labelled, keypointed 3D car.

    image [B, 3, S, S] in [0, 1]
      -> Encoder (stride-2 convolutions, adaptive pool to 4x4, linear)  -> code [B, code_dim]
      -> shape head: per-vertex offsets [B, V, 3] (metres, symmetrised) and log-scales [B, 3]
      -> UV decoder (linear to 4 x 8, upsampling convolutions) -> texture [B, Ht, Wt, 3] in
         [0, 1] and car_20 part logits [B, Ht, Wt, 19] (ids 1..19; symmetrised). The texture
         is either decoded (`TextureMode.decoded`, GANverse3D) or CMR's texture flow
         (`TextureMode.flow`): the decoder predicts, per texel, where in the input image to
         sample its colour
      -> keypoints: a learned softmax over the vertices per keypoint [12, V] (symmetrised);
         3D keypoints = weights @ vertices
      -> camera head: the input view's orbit camera (azimuth, elevation, distance, vertical field
         of view, look-at target; docs/conventions.md "Cameras"), for images without a known
         camera (`reconstruct image`); training renders in the data's cameras

vertices = (template + mean_offsets + offsets) * scale: `mean_offsets` [V, 3] is the learned
mean shape (CMR's learned template), `offsets` the per-image deformation, `scale` per axis
(x, y, z) about the origin (the ground stays at y = 0). Shape, parts and keypoints are exactly
mirror-symmetric by construction (template.py); the texture is not (lighting is baked into it)
and a loss asks for symmetry instead (losses.py). docs/reconstruct.md compares the two textures.

`ReconstructNetConfig` is the model's contract: it is saved in every checkpoint
(`save_reconstructor`, kind `reconstruct_net`) and `load_reconstructor` rebuilds the exact model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from assetgan.assets.taxonomy import CAR_20, KEYPOINT_FLIP, KEYPOINTS
from assetgan.core.checkpoint import (
    load_model,
    load_state_into,
    read_header,
    register_kind,
    save_model,
)
from assetgan.core.errors import AssetganError
from assetgan.core.fields import known_fields
from assetgan.inverse_graphics.reconstruct.template import (
    Template,
    TemplateKind,
    TemplateShape,
    build_template,
    flip_uv_image,
    symmetrize_points,
)

NUM_PARTS = len(CAR_20) - 1  # part channels in UV space: car_20 ids 1..19 (0 = background)
NUM_KEYPOINTS = len(KEYPOINTS)
# Camera parameters, the columns of `Reconstruction.camera` and of data.ArrayData.camera_params.
CAMERA_FIELDS = ("azimuth", "elevation", "distance", "fov_y", "target_x", "target_y", "target_z")
# The head predicts offsets from these typical values (CarWorld's means, docs/carworld.md).
_CAMERA_MEAN = {"elevation": 17.5, "distance": 10.0, "fov_y": 32.0, "target_y": 0.7}
RECONSTRUCT_KIND = register_kind(
    "reconstruct_net", 1, "reconstruction network checkpoint", "`assetgan reconstruct train`"
)


class TextureMode(StrEnum):
    """Where the UV texture's colours come from."""

    decoded = "decoded"  # decoded from the image code (GANverse3D)
    flow = "flow"  # sampled from the input image at predicted positions (CMR's texture flow)


@dataclass(frozen=True)
class ReconstructNetConfig:
    """The network's contract (saved in the checkpoint; loading rebuilds exactly this model)."""

    image_size: int = 64  # input side in pixels (any size >= 16; images are square)
    template: TemplateKind = TemplateKind.car  # the shape deformed (template.py)
    template_shape: TemplateShape = field(default_factory=TemplateShape)  # its extents (m)
    subdivisions: int = 3  # icosphere level: 3 -> 642 vertices / 1280 faces, 4 -> 2562 / 5120
    encoder_channels: tuple[int, ...] = (32, 64, 128, 256)  # one stride-2 conv block each
    code_dim: int = 256  # image code width
    uv_size: tuple[int, int] = (32, 64)  # (height, width) of the texture and part UV maps
    texture: TextureMode = TextureMode.flow  # flow into the input (default) or decoded colours
    decoder_channels: tuple[int, ...] = (128, 64, 32)  # UV decoder widths, 4x8 upwards
    offset_scale: float = 0.1  # metres per unit of the offset head's output
    max_log_scale: float = 0.5  # |log scale| per axis is bounded by this (tanh)
    keypoint_logit_scale: float = 50.0  # vertex logits = this x the parameter (an Adam step
    # moves a logit by lr x this: a uniform start over hundreds of vertices needs big steps)
    keypoint_init_sigma: float = 0.1  # metres: each keypoint starts as a Gaussian over the
    # template's vertices around the shipped 3D keypoint template (assets/keypoint_template,
    # scaled to the template's length); 0 = a uniform start over all vertices

    def validate(self) -> ReconstructNetConfig:
        self.template_shape.validate()
        if self.image_size < 16:
            raise AssetganError(f"image_size must be >= 16 pixels, got {self.image_size}")
        if not 1 <= self.subdivisions <= 5:
            raise AssetganError(f"subdivisions must be in 1..5, got {self.subdivisions}")
        if not self.encoder_channels or min(self.encoder_channels) < 1 or self.code_dim < 1:
            raise AssetganError("encoder_channels and code_dim must be positive")
        ups = len(self.decoder_channels)
        if (
            not self.decoder_channels
            or min(self.decoder_channels) < 1
            or self.uv_size != (4 * 2**ups, 8 * 2**ups)
        ):
            raise AssetganError(
                f"uv_size must be (4 * 2**n, 8 * 2**n) for n = len(decoder_channels) = {ups}, "
                f"i.e. {(4 * 2**ups, 8 * 2**ups)}; got {self.uv_size}"
            )
        if min(self.offset_scale, self.max_log_scale, self.keypoint_logit_scale) <= 0:
            raise AssetganError("offset_scale, max_log_scale and keypoint_logit_scale must be > 0")
        if self.keypoint_init_sigma < 0:
            raise AssetganError(f"keypoint_init_sigma must be >= 0, got {self.keypoint_init_sigma}")
        return self

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["template"] = self.template.value
        out["texture"] = self.texture.value
        out["encoder_channels"] = list(self.encoder_channels)
        out["uv_size"] = list(self.uv_size)
        out["decoder_channels"] = list(self.decoder_channels)
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ReconstructNetConfig:
        values = known_fields(cls, obj, "reconstruction network config")
        try:
            values["template"] = TemplateKind(values.get("template", "car"))
            values["texture"] = TextureMode(values.get("texture", "flow"))
            shape = known_fields(TemplateShape, values.get("template_shape", {}), "template")
            values["template_shape"] = TemplateShape(**shape)
            for name in ("encoder_channels", "uv_size", "decoder_channels"):
                if name in values:
                    values[name] = tuple(int(v) for v in values[name])
            return cls(**values).validate()
        except (TypeError, ValueError) as error:
            raise AssetganError(f"reconstruction network config: {error}") from None


@dataclass(frozen=True)
class Reconstruction:
    """What the network predicts for a batch (car frame, metres)."""

    vertices: torch.Tensor  # [B, V, 3] the deformed, scaled mesh
    offsets: torch.Tensor  # [B, V, 3] per-image deformation before scaling (metres)
    mean_offsets: torch.Tensor  # [V, 3] the learned mean-shape deformation (metres)
    log_scale: torch.Tensor  # [B, 3] per-axis log scale (x, y, z)
    texture: torch.Tensor  # [B, Ht, Wt, 3] albedo with baked lighting, in [0, 1]
    part_logits: torch.Tensor  # [B, Ht, Wt, 19] car_20 ids 1..19 in UV space
    keypoint_weights: torch.Tensor  # [12, V] softmax over vertices per keypoint
    keypoints: torch.Tensor  # [B, 12, 3] keypoint_weights @ vertices
    camera: torch.Tensor  # [B, 7] predicted input-view camera, CAMERA_FIELDS (degrees, metres)


class ConvBlock(nn.Module):
    """3x3 convolution (stride 1 or 2) + LeakyReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), 0.2)


class Encoder(nn.Module):
    """[B, 3, S, S] in [0, 1] -> code [B, code_dim]."""

    def __init__(self, channels: tuple[int, ...], code_dim: int) -> None:
        super().__init__()
        widths = (3, *channels)
        self.blocks = nn.Sequential(
            *[ConvBlock(widths[i], widths[i + 1], 2) for i in range(len(channels))]
        )
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(channels[-1] * 16, code_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.blocks(images * 2.0 - 1.0))
        return F.leaky_relu(self.fc(features.flatten(1)), 0.2)


class UVDecoder(nn.Module):
    """code [B, D] -> (colour [B, Ht, Wt, colour_channels], part logits [B, Ht, Wt, 19]):
    colour_channels 3 (RGB in [0, 1]) or 2 (texture flow in [-1, 1], grid_sample's frame)."""

    def __init__(self, code_dim: int, channels: tuple[int, ...], colour_channels: int) -> None:
        super().__init__()
        self.first = channels[0]
        self.fc = nn.Linear(code_dim, channels[0] * 4 * 8)
        widths = (*channels, channels[-1])
        self.ups = nn.ModuleList(
            [ConvBlock(widths[i], widths[i + 1], 1) for i in range(len(channels))]
        )
        self.colour_channels = colour_channels
        self.to_rgb = nn.Conv2d(channels[-1], colour_channels, 1)
        self.to_parts = nn.Conv2d(channels[-1], NUM_PARTS, 1)

    def forward(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.leaky_relu(self.fc(code), 0.2).view(code.shape[0], self.first, 4, 8)
        for block in self.ups:
            x = block(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        colour = self.to_rgb(x).permute(0, 2, 3, 1)
        texture = torch.sigmoid(colour) if self.colour_channels == 3 else torch.tanh(colour)
        parts = self.to_parts(x).permute(0, 2, 3, 1)
        return texture, parts


class ReconstructNet(nn.Module):
    """The network of the module docstring; `template` tables are buffers rebuilt from config."""

    def __init__(self, config: ReconstructNetConfig) -> None:
        super().__init__()
        self.config = config.validate()
        template = build_template(config.template, config.subdivisions, config.template_shape)
        self.template = template
        vertices = template.num_vertices
        self.register_buffer("template_vertices", template.vertices, persistent=False)
        self.register_buffer("mirror_vertex", template.mirror_vertex, persistent=False)
        self.register_buffer("keypoint_flip", torch.tensor(KEYPOINT_FLIP), persistent=False)
        self.encoder = Encoder(config.encoder_channels, config.code_dim)
        self.offset_head = nn.Linear(config.code_dim, vertices * 3)
        self.scale_head = nn.Linear(config.code_dim, 3)
        flow = config.texture is TextureMode.flow
        self.uv_decoder = UVDecoder(config.code_dim, config.decoder_channels, 2 if flow else 3)
        self.camera_head = nn.Linear(config.code_dim, 8)  # sin az, cos az, el, log d, fov, target
        self.mean_offsets = nn.Parameter(torch.zeros(vertices, 3))
        self.keypoint_logits = nn.Parameter(torch.zeros(NUM_KEYPOINTS, vertices))
        with torch.no_grad():  # start at the template: tiny offsets, unit scale (CMR: N(0, 1e-4))
            self.offset_head.weight.normal_(0.0, 1e-4)
            self.offset_head.bias.zero_()
            self.scale_head.weight.zero_()
            self.scale_head.bias.zero_()
            if config.keypoint_init_sigma > 0:
                self.keypoint_logits.copy_(self._template_keypoint_logits())

    def _template_keypoint_logits(self) -> torch.Tensor:
        """[12, V] parameters of a Gaussian (sigma `keypoint_init_sigma`) over the template's
        vertices around each keypoint of the shipped keypoint template."""
        from assetgan.pipeline.multiview.template import load_shipped_template

        shipped = load_shipped_template()
        points = torch.as_tensor(shipped.points * self.config.template_shape.length).float()
        squared = torch.cdist(points, self.template.vertices.float()).pow(2)
        logits = -squared / (2.0 * self.config.keypoint_init_sigma**2)
        logits = logits - logits.amax(1, keepdim=True)
        return logits / self.config.keypoint_logit_scale

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"image_size={c.image_size}, template={c.template.value}, texture={c.texture.value}, "
            f"vertices="
            f"{self.template.num_vertices}, uv_size={c.uv_size}, code_dim={c.code_dim}"
        )

    def keypoint_distribution(self) -> torch.Tensor:
        """[12, V] softmax over vertices, exactly symmetric: the weight of left keypoint k at
        vertex v equals that of its right twin at v's mirror."""
        logits = self.keypoint_logits * self.config.keypoint_logit_scale
        mirrored = logits.index_select(0, self.keypoint_flip).index_select(1, self.mirror_vertex)
        return torch.softmax(0.5 * (logits + mirrored), dim=1)

    def forward(self, images: torch.Tensor) -> Reconstruction:
        size = self.config.image_size
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != (size, size):
            raise AssetganError(
                f"the network expects images [B, 3, {size}, {size}], got {list(images.shape)}"
            )
        batch = images.shape[0]
        code = self.encoder(images)
        raw = self.offset_head(code).view(batch, -1, 3) * self.config.offset_scale
        offsets = symmetrize_points(raw, self.mirror_vertex)
        mean_offsets = symmetrize_points(self.mean_offsets, self.mirror_vertex)
        log_scale = self.config.max_log_scale * torch.tanh(self.scale_head(code))
        shape = self.template_vertices + mean_offsets + offsets
        vertices = shape * torch.exp(log_scale).unsqueeze(1)
        texture, part_logits = self.uv_decoder(code)
        if self.config.texture is TextureMode.flow:  # texture [B, Ht, Wt, 2] is a flow
            sampled = F.grid_sample(images, texture, align_corners=False, padding_mode="border")
            texture = sampled.permute(0, 2, 3, 1)
        part_logits = 0.5 * (part_logits + flip_uv_image(part_logits))
        weights = self.keypoint_distribution()
        keypoints = torch.einsum("kv,bvc->bkc", weights, vertices)
        return Reconstruction(
            vertices=vertices,
            offsets=offsets,
            mean_offsets=mean_offsets,
            log_scale=log_scale,
            texture=texture,
            part_logits=part_logits,
            keypoint_weights=weights,
            keypoints=keypoints,
            camera=self.camera_from_head(self.camera_head(code)),
        )

    @staticmethod
    def camera_from_head(raw: torch.Tensor) -> torch.Tensor:
        """[B, 8] head output -> [B, 7] camera parameters (CAMERA_FIELDS)."""
        azimuth = torch.rad2deg(torch.atan2(raw[:, 0], raw[:, 1] + 1e-6)) % 360.0
        elevation = _CAMERA_MEAN["elevation"] + 20.0 * raw[:, 2]
        distance = _CAMERA_MEAN["distance"] * torch.exp(0.6 * torch.tanh(raw[:, 3]))
        fov = _CAMERA_MEAN["fov_y"] + 10.0 * torch.tanh(raw[:, 4])
        target = raw[:, 5:8] * 0.5 + torch.tensor([0.0, _CAMERA_MEAN["target_y"], 0.0])
        return torch.cat([torch.stack([azimuth, elevation, distance, fov], 1), target], 1)

    @property
    def faces(self) -> torch.Tensor:
        return self.template.faces

    def template_tables(self, device: torch.device | str) -> Template:
        """The template's tables on `device`."""
        t = self.template
        return dataclasses.replace(
            t, **{f.name: getattr(t, f.name).to(device) for f in dataclasses.fields(t)}
        )


def save_reconstructor(
    path: str | Path, model: ReconstructNet, info: dict[str, Any], fp16: bool = False
) -> Path:
    """Write `path` (.safetensors) + `path`.json: weights (float16 when `fp16`, loaded back as
    float32), the config, provenance `info`."""
    state = {k: v for k, v in model.state_dict().items()}
    return save_model(path, state, RECONSTRUCT_KIND, model.config.to_dict(), fp16=fp16, info=info)


def load_reconstructor(path: str | Path, device: str = "cpu") -> tuple[ReconstructNet, dict]:
    """(the exact model `path` holds, in eval mode on `device`; its info)."""
    loaded = load_model(path, RECONSTRUCT_KIND)
    model = ReconstructNet(ReconstructNetConfig.from_dict(loaded.config))
    load_state_into(model, loaded.tensors, str(path))
    return model.to(device).eval(), loaded.info


def read_reconstructor_config(path: str | Path) -> ReconstructNetConfig:
    """The config of a checkpoint without loading its weights."""
    return ReconstructNetConfig.from_dict(read_header(path, RECONSTRUCT_KIND).config)
