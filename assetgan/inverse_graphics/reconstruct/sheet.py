"""Pictures of reconstructions: the training run's contact sheet (input vs reconstruction in the
input view and in other views) and turntables of one reconstruction (texture or part colours).
All images are uint8 [H, W, 3], row 0 at the top."""

from __future__ import annotations

import numpy as np
import torch

from assetgan.assets.taxonomy import colorize
from assetgan.core.images import contact_sheet
from assetgan.inverse_graphics.reconstruct.data import ArrayData
from assetgan.inverse_graphics.reconstruct.evaluate import predict_views, rendered_part_ids
from assetgan.inverse_graphics.reconstruct.model import Reconstruction, ReconstructNet
from assetgan.inverse_graphics.reconstruct.render import RenderedView, render_views
from assetgan.inverse_graphics.reconstruct.template import Template
from assetgan.render.camera import stack_mvp
from assetgan.render.mesh import Mesh
from assetgan.render.scene import turntable_cameras


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[H, W, C] float in [0, 1] -> uint8."""
    return (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def on_white(rendered: RenderedView, index: int) -> np.ndarray:
    """The rendered colour of image `index` composited over white (uint8 [H, W, 3])."""
    alpha = rendered.alpha[index].unsqueeze(-1)
    return to_uint8(rendered.rgb[index] + (1.0 - alpha))


def part_picture(rendered: RenderedView, index: int) -> np.ndarray:
    """The rendered car_20 part map of image `index` in the palette (uint8 [H, W, 3])."""
    return colorize(rendered_part_ids(rendered)[index].cpu().numpy())


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor."""
    return image.repeat(factor, 0).repeat(factor, 1)


@torch.no_grad()
def orbit_views(
    reconstruction: Reconstruction,
    index: int,
    template: Template,
    views: int,
    size: int,
    picks: list[int] | None = None,
    elevation: float = 20.0,
) -> RenderedView:
    """Reconstruction `index` rendered from `views` cameras evenly spaced around its bounding box
    (render.scene.turntable_cameras: view k at azimuth 360 k / views, 0 = the car's front),
    or only the views `picks`."""
    vertices = reconstruction.vertices[index].detach().cpu()
    cameras = turntable_cameras(Mesh(vertices, template.faces.cpu()), views, size, elevation)
    cameras = [cameras[k] for k in (picks if picks is not None else range(views))]
    mvp = stack_mvp(cameras).to(reconstruction.vertices.device)

    def repeat(t: torch.Tensor) -> torch.Tensor:
        return t[index : index + 1].expand(len(cameras), *t.shape[1:])

    return render_views(
        *(repeat(t) for t in (reconstruction.vertices, reconstruction.texture)),
        *(repeat(t) for t in (reconstruction.part_logits, reconstruction.keypoints)),
        template,
        mvp,
        (size, size),
    )


@torch.no_grad()
def reconstruction_sheet(
    model: ReconstructNet, data: ArrayData, indices: np.ndarray, device: str = "cpu"
) -> np.ndarray:
    """One row per image: input | reconstruction in the input view | its parts | true parts |
    the reconstruction from azimuth 45 and 225 (texture) | from 45 (parts). Inputs are shown at
    twice their size when they are 64 px or smaller."""
    was_training = model.training
    model.eval()
    batch = data.batch(indices, np.zeros(len(indices), bool)).to(device)
    reconstruction = model(batch.images)
    _, rendered = predict_views(model, batch.images, batch.mvp)
    factor = 2 if data.image_size <= 64 else 1
    size = data.image_size * factor
    template = model.template_tables(device)
    tiles = []
    for row, index in enumerate(indices.tolist()):
        others = orbit_views(reconstruction, row, template, 8, size, picks=[1, 5])
        truth = np.zeros((data.image_size, data.image_size, 3), np.uint8)
        if data.part_ids is not None:
            truth = colorize(data.part_ids[index])
        tiles += [
            enlarge(data.images[index], factor),
            enlarge(on_white(rendered, row), factor),
            enlarge(part_picture(rendered, row), factor),
            enlarge(truth, factor),
            on_white(others, 0),
            on_white(others, 1),
            part_picture(others, 0),
        ]
    model.train(was_training)
    return contact_sheet(tiles, columns=7)


@torch.no_grad()
def turntable(
    reconstruction: Reconstruction, index: int, template: Template, views: int = 8, size: int = 128
) -> np.ndarray:
    """Two rows per 4 views: textured, then part colours, `views` azimuths 360 / views apart."""
    rendered = orbit_views(reconstruction, index, template, views, size)
    textured = [on_white(rendered, k) for k in range(views)]
    parts = [part_picture(rendered, k) for k in range(views)]
    columns = min(4, views)
    rows = []
    for start in range(0, views, columns):
        rows += textured[start : start + columns] + parts[start : start + columns]
    return contact_sheet(rows, columns=columns)
