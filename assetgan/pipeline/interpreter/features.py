"""Generator feature maps as the Style Interpreter sees them, without materialising them.

DatasetGAN up-samples every feature map bilinearly (align_corners=False) to the canvas and
concatenates them per pixel. Up-sampling is linear, so for any pixel the up-sampled feature is
the blend of four native-resolution neighbours with weights that depend only on the pixel's
position. This module holds that arithmetic in one place:

- `bilinear_source(out_size, in_size)`: PyTorch's align_corners=False source indices and weights.
- `TapGeometry`: which taps, their channel slices, the canvas and the row crop.
- `NativeFeatureStore`: per resolution, the native maps of many images (only the rows the crop
  needs); `gather(image, row, col)` returns the up-sampled features of arbitrary pixels.
- `upsample_rows(maps, ...)`: separable bilinear up-sampling of a band of output rows.
- `materialise(...)`: the reference (F.interpolate + concat + crop) that the tests compare with.

Canvas and crop: docs/stylegan.md ("Non-square outputs"): feature maps cover the full square
canvas of side R; image row y is canvas row y + top.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from assetgan.core.errors import AssetganError
from assetgan.pipeline.stylegan.networks import FeatureTap


def bilinear_source(
    out_positions: torch.Tensor,  # [P] int64 output coordinates (rows or columns) on the canvas
    out_size: int,  # canvas side R
    in_size: int,  # native side r of the feature map
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(i0 [P], i1 [P], lam [P] float32): out = (1 - lam) * in[i0] + lam * in[i1].

    Exactly PyTorch's `interpolate(mode="bilinear", align_corners=False)` per axis: source
    coordinate (dst + 0.5) * in/out - 0.5, clamped at 0; i1 = min(i0 + 1, in - 1).
    """
    scale = in_size / out_size
    real = ((out_positions.to(torch.float32) + 0.5) * scale - 0.5).clamp_min(0.0)
    i0 = real.floor().to(torch.int64).clamp_max(in_size - 1)
    i1 = (i0 + 1).clamp_max(in_size - 1)
    lam = real - i0.to(torch.float32)
    return i0, i1, lam


@dataclass(frozen=True)
class TapGeometry:
    """The tapped feature maps and where the output image sits on the canvas."""

    taps: tuple[FeatureTap, ...]  # in forward order = increasing resolution
    canvas: int  # R: side of the square canvas every map covers
    crop_rows: tuple[int, int] | None  # (top, bottom) canvas rows of the image, None = all

    def __post_init__(self) -> None:
        resolutions = [t.resolution for t in self.taps]
        if not self.taps:
            raise AssetganError("TapGeometry: no feature taps")
        if resolutions != sorted(resolutions):
            raise AssetganError(
                f"TapGeometry: taps must be ordered by resolution, got {resolutions}"
            )
        if any(self.canvas % r for r in resolutions):
            raise AssetganError(
                f"TapGeometry: canvas {self.canvas} is not a multiple of {resolutions}"
            )

    @property
    def top(self) -> int:
        return 0 if self.crop_rows is None else self.crop_rows[0]

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the output image."""
        if self.crop_rows is None:
            return (self.canvas, self.canvas)
        return (self.crop_rows[1] - self.crop_rows[0], self.canvas)

    @property
    def channels(self) -> int:
        """C: length of the concatenated per-pixel feature vector."""
        return sum(t.channels for t in self.taps)

    def resolution_groups(self) -> list[tuple[int, list[str], int, int]]:
        """[(r, tap names at r, channel start, channel stop)] in feature-vector order."""
        groups: list[tuple[int, list[str], int, int]] = []
        start = 0
        for tap in self.taps:
            if groups and groups[-1][0] == tap.resolution:
                res, names, lo, _hi = groups[-1]
                groups[-1] = (res, names + [tap.name], lo, start + tap.channels)
            else:
                groups.append((tap.resolution, [tap.name], start, start + tap.channels))
            start += tap.channels
        return groups

    def native_rows(self, resolution: int) -> tuple[int, int]:
        """[lo, hi) rows of a map at `resolution` that the image rows read."""
        height = self.image_size[0]
        ends = torch.tensor([self.top, self.top + height - 1])
        i0, i1, _ = bilinear_source(ends, self.canvas, resolution)
        return int(i0[0]), int(i1[1]) + 1

    def check_features(self, features: dict[str, torch.Tensor]) -> None:
        """Raise if a tap is missing or has the wrong shape ([B, C, r, r])."""
        for tap in self.taps:
            if tap.name not in features:
                raise AssetganError(f"feature tap {tap.name!r} missing; got {list(features)[:6]}")
            shape = list(features[tap.name].shape)
            if len(shape) != 4 or shape[1:] != [tap.channels, tap.resolution, tap.resolution]:
                raise AssetganError(
                    f"feature tap {tap.name}: expected [B, {tap.channels}, {tap.resolution}, "
                    f"{tap.resolution}], got {shape}"
                )

    def stack_resolution(self, features: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
        """[B, C_r, r, r]: the taps of one resolution concatenated along channels."""
        maps = [features[name] for name in names]
        return maps[0] if len(maps) == 1 else torch.cat(maps, dim=1)


def materialise(geometry: TapGeometry, features: dict[str, torch.Tensor]) -> torch.Tensor:
    """Reference: [B, C, H, W] = crop(concat(interpolate(map, R, bilinear))). Memory-hungry.

    Filled tap by tap into one preallocated tensor (the released code concatenates a list, which
    needs about twice the memory; same numbers).
    """
    geometry.check_features(features)
    height, width = geometry.image_size
    first = features[geometry.taps[0].name]
    dense = torch.empty(first.shape[0], geometry.channels, height, width, device=first.device)
    start = 0
    for tap in geometry.taps:
        upsampled = F.interpolate(
            features[tap.name].float(),
            size=(geometry.canvas, geometry.canvas),
            mode="bilinear",
            align_corners=False,
        )
        dense[:, start : start + tap.channels] = upsampled[
            :, :, geometry.top : geometry.top + height
        ]
        start += tap.channels
        del upsampled
    return dense


def add_upsampled_columns(total: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """total [..., R] += bilinear (align_corners=False) up-sampling of band [..., r] along the
    last axis, in place (R a multiple of r). Returns total.

    PyTorch's 1-D linear kernel has the same source indices and weights as `bilinear_source`
    and is the fastest of the variants we measured on CPU (strided in-place lerps, gathers).
    """
    res, canvas = band.shape[-1], total.shape[-1]
    if res == canvas:
        return total.add_(band)
    flat = band.reshape(1, -1, res)
    upsampled = F.interpolate(flat, size=canvas, mode="linear", align_corners=False)
    return total.add_(upsampled.view(total.shape))


def upsample_rows(
    maps: torch.Tensor,  # [B, K, r, r] at native resolution
    canvas: int,  # R
    canvas_rows: torch.Tensor,  # [h] int64 canvas rows wanted
) -> torch.Tensor:
    """[B, K, h, R]: rows `canvas_rows` of the bilinear (align_corners=False) up-sampling."""
    batch, channels, res, _ = maps.shape
    total = maps.new_zeros(batch, channels, canvas_rows.numel(), canvas)
    return add_upsampled_rows(total, maps, 0, canvas, canvas_rows)


def column_weights(res: int, canvas: int) -> torch.Tensor:
    """[r, R] float32 U with (band @ U) = bilinear (align_corners=False) up-sampling r -> R of
    the last axis (two non-zeros per column, from `bilinear_source`)."""
    i0, i1, lam = bilinear_source(torch.arange(canvas), canvas, res)
    weights = torch.zeros(res, canvas)
    cols = torch.arange(canvas)
    weights.index_put_((i0, cols), 1 - lam, accumulate=True)
    weights.index_put_((i1, cols), lam, accumulate=True)
    return weights


def row_band(
    maps: torch.Tensor,  # [B, K, hi - lo, r]: rows lo..hi-1 of a native map
    lo: int,  # first native row held in `maps`
    canvas: int,  # R
    canvas_rows: torch.Tensor,  # [h] int64 canvas rows wanted
) -> torch.Tensor:
    """[B, K, h, r]: the wanted rows of the map up-sampled along rows only (native width)."""
    r0, r1, ry = (t.to(maps.device) for t in bilinear_source(canvas_rows, canvas, maps.shape[-1]))
    return torch.lerp(
        maps.index_select(2, r0 - lo), maps.index_select(2, r1 - lo), ry.view(1, 1, -1, 1)
    )


def add_upsampled_rows(
    total: torch.Tensor,  # [B, K, h, R] accumulator
    maps: torch.Tensor,  # [B, K, hi - lo, r]: rows lo..hi-1 of a native map
    lo: int,  # first native row held in `maps`
    canvas: int,  # R
    canvas_rows: torch.Tensor,  # [h] int64 canvas rows of `total`
) -> torch.Tensor:
    """total += rows `canvas_rows` of the up-sampled map, in place (two-stage, separable)."""
    res = maps.shape[-1]
    r0, r1, ry = (t.to(maps.device) for t in bilinear_source(canvas_rows, canvas, res))
    if res == canvas:
        return total.add_(maps.index_select(2, r0 - lo))
    ry = ry.view(1, 1, -1, 1)
    band = torch.lerp(maps.index_select(2, r0 - lo), maps.index_select(2, r1 - lo), ry)
    return add_upsampled_columns(total, band)  # band: [B, K, h, r]


class NativeFeatureStore:
    """Native-resolution feature maps of a set of images, gathered per pixel on demand.

    Storage per resolution r: [capacity, rows_r, r, C_r] channels-last in `dtype`, allocated
    once and keeping only the rows the cropped image reads. `gather` returns float32 [M, C]
    features equal to the materialised up-sampled features at those pixels (up to the storage
    dtype's rounding). Per resolution a table holds, for every image pixel, the offsets of its
    four neighbours and its two blend weights, so a gather is one lookup, one index_select and
    three lerps per resolution.
    """

    def __init__(
        self,
        geometry: TapGeometry,
        capacity: int,  # number of images the store will hold
        dtype: torch.dtype = torch.float16,  # storage precision (computation is float32)
        device: str | torch.device = "cpu",
    ) -> None:
        if capacity < 1:
            raise AssetganError(f"NativeFeatureStore: capacity must be >= 1, got {capacity}")
        self.geometry = geometry
        self.capacity = capacity
        self.dtype = dtype
        self.device = torch.device(device)
        self.groups = geometry.resolution_groups()
        self.num_images = 0
        height, width = geometry.image_size
        rows = torch.arange(height) + geometry.top
        cols = torch.arange(width)
        self._stored: list[torch.Tensor] = []  # per group [capacity, rows_r, r, C_r]
        self._corners: list[torch.Tensor] = []  # per group [H * W, 4] offsets within an image
        self._weights: list[torch.Tensor] = []  # per group [H * W, 2] (lx, ly)
        for res, _names, start, stop in self.groups:
            lo, hi = geometry.native_rows(res)
            self._stored.append(
                torch.zeros(capacity, hi - lo, res, stop - start, dtype=dtype, device=self.device)
            )
            r0, r1, ly = bilinear_source(rows, geometry.canvas, res)
            c0, c1, lx = bilinear_source(cols, geometry.canvas, res)
            top, bottom = ((r0 - lo) * res)[:, None], ((r1 - lo) * res)[:, None]  # [H, 1]
            corners = torch.stack([top + c0, top + c1, bottom + c0, bottom + c1], dim=-1)
            weights = torch.stack(torch.broadcast_tensors(lx[None, :], ly[:, None]), dim=-1)
            self._corners.append(corners.reshape(-1, 4).to(self.device))
            self._weights.append(weights.reshape(-1, 2).to(self.device))

    def add(self, features: dict[str, torch.Tensor]) -> None:
        """Store a batch of images' taps ({name: [B, C, r, r]}) in the next free slots."""
        self.geometry.check_features(features)
        count = next(iter(features.values())).shape[0]
        if self.num_images + count > self.capacity:
            raise AssetganError(
                f"NativeFeatureStore: {self.num_images} + {count} images exceed its capacity "
                f"{self.capacity}"
            )
        slots = slice(self.num_images, self.num_images + count)
        for stored, (res, names, _start, _stop) in zip(self._stored, self.groups, strict=True):
            lo, hi = self.geometry.native_rows(res)
            block = self.geometry.stack_resolution(features, names)[:, :, lo:hi]
            stored[slots] = block.permute(0, 2, 3, 1).to(device=self.device, dtype=self.dtype)
        self.num_images += count

    def nbytes(self) -> int:
        """Bytes held by the stored maps."""
        return sum(t.numel() * t.element_size() for t in self._stored)

    def gather(
        self,
        image: torch.Tensor,  # [M] int64 image index
        row: torch.Tensor,  # [M] int64 image row (0 = top of the cropped image)
        col: torch.Tensor,  # [M] int64 image column
    ) -> torch.Tensor:
        """[M, C] float32: the bilinearly up-sampled feature vector of every pixel."""
        width = self.geometry.image_size[1]
        image, row, col = (t.to(self.device) for t in (image, row, col))
        pixel = row * width + col
        parts = []
        for stored, corners, weights in zip(
            self._stored, self._corners, self._weights, strict=True
        ):
            _count, rows_r, res, channels = stored.shape
            index = corners[pixel] + (image * (rows_r * res)).unsqueeze(1)  # [M, 4]
            values = stored.view(-1, channels).index_select(0, index.view(-1)).to(torch.float32)
            values = values.view(-1, 4, channels)
            blend = weights[pixel]  # [M, 2]
            lx, ly = blend[:, :1], blend[:, 1:]
            top = torch.lerp(values[:, 0], values[:, 1], lx)
            parts.append(torch.lerp(top, torch.lerp(values[:, 2], values[:, 3], lx), ly))
        return torch.cat(parts, dim=1)


class MaterialisedFeatureStore:
    """The released code's training data: every pixel's up-sampled feature vector in one matrix.

    [images * H * W, C] in `dtype` (DatasetGAN keeps float16). Used as the reference in tests and
    benchmarks; `gather` has NativeFeatureStore's signature.
    """

    def __init__(
        self,
        geometry: TapGeometry,
        dtype: torch.dtype = torch.float16,
        device: str | torch.device = "cpu",
    ) -> None:
        self.geometry = geometry
        self.dtype = dtype
        self.device = torch.device(device)
        self._rows: list[torch.Tensor] = []
        self._matrix: torch.Tensor | None = None
        self.num_images = 0

    def add(self, features: dict[str, torch.Tensor]) -> None:
        if self._matrix is not None:
            raise AssetganError("MaterialisedFeatureStore: add() after gather()")
        dense = materialise(self.geometry, features)  # [B, C, H, W]
        self.num_images += dense.shape[0]
        for sample in dense:
            flat = sample.flatten(1).t().to(device=self.device, dtype=self.dtype)
            self._rows.append(flat.contiguous())  # [H * W, C]

    def nbytes(self) -> int:
        tensors = [self._matrix] if self._matrix is not None else self._rows
        return sum(t.numel() * t.element_size() for t in tensors)

    def gather(self, image: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        if self._matrix is None:
            self._matrix = torch.cat(self._rows)
            self._rows = []
        height, width = self.geometry.image_size
        index = (image * height + row) * width + col
        return self._matrix.index_select(0, index.to(self.device)).to(torch.float32)
