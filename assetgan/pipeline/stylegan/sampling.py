"""Sampling: seeds -> z -> w (truncation, style mixing) -> images and PNG contact sheets.

Determinism: the latent of seed s is `numpy.random.RandomState(s).randn(z_dim)`, the same draw as
NVIDIA's generate.py, so an imported NVIDIA generator gives NVIDIA's image for a seed. Noise
inputs use the stored `noise_const` buffers by default, so an image depends on its seed only.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from assetgan.core.errors import AssetganError
from assetgan.core.images import contact_sheet
from assetgan.core.io_utils import atomic_write
from assetgan.pipeline.stylegan.networks import Generator, truncate

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_index_list(text: str, what: str = "seeds") -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7] (inclusive ranges, order kept)."""
    values: list[int] = []
    for part in str(text).split(","):
        match = _RANGE.match(part)
        if not match:
            raise AssetganError(f"{what}: cannot parse {part!r} in {text!r}; use e.g. 0-15,20")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if hi < lo:
            raise AssetganError(f"{what}: range {part!r} runs backwards")
        values.extend(range(lo, hi + 1))
    return values


def z_from_seeds(seeds: list[int], z_dim: int) -> torch.Tensor:
    """[N, z_dim] float32: one standard-normal latent per seed (NVIDIA's draw)."""
    for seed in seeds:
        if not 0 <= seed < 2**32:
            raise AssetganError(f"seed {seed} is out of range [0, 2**32)")
    rows = [np.random.RandomState(seed).randn(z_dim) for seed in seeds]
    return torch.from_numpy(np.stack(rows).astype(np.float32)).reshape(len(seeds), z_dim)


@torch.no_grad()
def ws_from_seeds(
    generator: Generator,
    seeds: list[int],
    psi: float = 1.0,  # truncation psi, 1 = none
    cutoff: int | None = None,  # truncate the first `cutoff` ws only, None = all
) -> torch.Tensor:
    """[N, num_ws, w_dim] on the generator's device (w_avg is not updated)."""
    device = generator.mapping.w_avg.device
    z = z_from_seeds(seeds, generator.z_dim).to(device)
    ws = generator.mapping(z, update_w_avg=False)
    return truncate(ws, generator.mapping.w_avg, psi, cutoff) if psi != 1 else ws


def mix_styles(
    ws_base: torch.Tensor,  # [N, num_ws, w_dim]: every layer not listed comes from here
    ws_donor: torch.Tensor,  # [N, num_ws, w_dim]: the listed layers come from here
    layers: list[int],  # w indices taken from the donor
) -> torch.Tensor:
    """Style mixing: ws_base with ws_donor's `layers` swapped in."""
    num_ws = ws_base.shape[1]
    bad = [i for i in layers if not 0 <= i < num_ws]
    if bad:
        raise AssetganError(f"mix layers {bad} are outside 0..{num_ws - 1} (num_ws = {num_ws})")
    mixed = ws_base.clone()
    mixed[:, layers] = ws_donor[:, layers]
    return mixed


def crossover(ws_coarse: torch.Tensor, ws_fine: torch.Tensor, layer: int) -> torch.Tensor:
    """ws[:, :layer] from ws_coarse and ws[:, layer:] from ws_fine (e.g. view code | content)."""
    return mix_styles(ws_fine, ws_coarse, list(range(min(layer, ws_fine.shape[1]))))


@torch.no_grad()
def synthesize_uint8(
    generator: Generator,
    ws: torch.Tensor,  # [N, num_ws, w_dim]
    noise_mode: str = "const",  # const = deterministic per w
    batch: int = 16,  # images per forward
) -> np.ndarray:
    """[N, H, W, C] uint8 images."""
    chunks = []
    for start in range(0, ws.shape[0], batch):
        images = generator.synthesis(ws[start : start + batch], noise_mode=noise_mode)
        chunks.append(to_uint8(images))
    return np.concatenate(chunks, axis=0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] -> [N, H, W, C] uint8 (ada's rounding: x * 127.5 + 128)."""
    images = (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def uint8_to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] uint8 (or [N, H, W, C] numpy uint8) -> float in [-1, 1], [N, C, H, W]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images).permute(0, 3, 1, 2)
    return images.float() / 127.5 - 1


def write_grid(
    images: np.ndarray,  # [N, H, W, C] uint8
    path: str | Path,
    columns: int | None = None,  # None = about square
    blank_first: bool = False,  # leave cell 0 empty (style-mixing sheets)
) -> Path:
    """Tile images into one PNG contact sheet (row-major), written atomically."""
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
        raise AssetganError(f"write_grid expects [N, H, W, C] uint8, N >= 1, got {images.shape}")
    if blank_first:
        images = np.concatenate([np.zeros_like(images[:1]), images], axis=0)
    count, channels = images.shape[0], images.shape[3]
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    sheet = contact_sheet(list(images), columns, pad=0, fill=0)
    mode = "L" if channels == 1 else "RGB"
    picture = Image.fromarray(sheet[..., 0] if channels == 1 else sheet[..., :3], mode=mode)
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


def sample_grid(
    generator: Generator,
    seeds: list[int],
    path: str | Path,
    psi: float = 1.0,
    cutoff: int | None = None,
    columns: int | None = None,
) -> Path:
    """Write a contact sheet of one image per seed; deterministic per (generator, seed, psi)."""
    images = synthesize_uint8(generator, ws_from_seeds(generator, seeds, psi, cutoff))
    return write_grid(images, path, columns=columns)


def mixing_grid(
    generator: Generator,
    row_seeds: list[int],  # rows: give every layer not in `layers` (content)
    col_seeds: list[int],  # columns: give the `layers` (e.g. 0-3 = coarse = viewpoint)
    layers: list[int],
    path: str | Path,
    psi: float = 1.0,
    cutoff: int | None = None,
) -> Path:
    """Style-mixing sheet: top row = column sources, left column = row sources,
    cell (r, c) = row r's ws with column c's `layers`."""
    ws_rows = ws_from_seeds(generator, row_seeds, psi, cutoff)
    ws_cols = ws_from_seeds(generator, col_seeds, psi, cutoff)
    cells = [synthesize_uint8(generator, ws_cols)]
    for r in range(len(row_seeds)):
        base = ws_rows[r : r + 1].expand(len(col_seeds), -1, -1)
        mixed = mix_styles(base, ws_cols, layers)
        cells.append(synthesize_uint8(generator, torch.cat([ws_rows[r : r + 1], mixed])))
    images = np.concatenate(cells, axis=0)
    return write_grid(images, path, columns=len(col_seeds) + 1, blank_first=True)
