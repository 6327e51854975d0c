"""The reconstruction losses, each a plain function, and their weights (docs/reconstruct.md
"Losses" says how the weights were chosen and what each measured).

View terms compare a render (render.py) with an image's labels, per image ([B]), so the
multi-view terms can leave out images without a partner view:
- silhouette: 1 - IoU of the antialiased coverage and the car mask (DIB-R / GANverse3D),
- colour: L1 of the rendered colour inside the car mask (mean over mask pixels and channels),
- parts: cross-entropy of the rendered part logits over pixels both covered by the render and
  labelled with a car part (the silhouette term handles the rest),
- keypoints: squared distance of the projected 3D keypoints to the labelled ones (v > 0), in
  units of the image side, mean over labelled keypoints.
Camera term (images whose camera parameters are known): the camera head's prediction against
them: 1 - cos(azimuth error) + (elevation error / 10 deg)^2 + (log distance ratio / 0.1)^2
+ (field-of-view error / 5 deg)^2 + (target error / 0.5 m)^2.
Shape terms (lengths in units of the template's half length, so weights do not depend on metres):
- laplacian: the uniform Laplacian of the deformation (learned mean + per image), so the
  template's own curvature is not penalised,
- flatten: mean (cos(n1, n2) - 1)^2 over edge-adjacent faces of the final mesh,
- deformation: mean squared per-image offset (GANverse3D's L_mov: small deformations),
- symmetry: L1 between the texture and its mirror image (the shape, parts and keypoints are
  symmetric by construction; lighting baked into the texture is not, hence a soft term).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from assetgan.core.errors import AssetganError
from assetgan.inverse_graphics.reconstruct.data import ReconstructBatch
from assetgan.inverse_graphics.reconstruct.model import NUM_PARTS, Reconstruction
from assetgan.inverse_graphics.reconstruct.render import RenderedView
from assetgan.inverse_graphics.reconstruct.template import Template, flip_uv_image
from assetgan.render.mesh import face_normals, uniform_laplacian_loss

VIEW_TERMS = ("silhouette", "colour", "parts", "keypoints")
CAMERA_TERM = "camera"
SHAPE_TERMS = ("laplacian", "flatten", "deformation", "symmetry")


@dataclass(frozen=True)
class LossWeights:
    """Weight of each term in the total (docs/reconstruct.md "Losses": how they were chosen)."""

    silhouette: float = 3.0  # 1 - IoU (GANverse3D: 3)
    colour: float = 3.0  # masked L1 on [0, 1] colours
    parts: float = 0.5  # part cross-entropy (nats per pixel)
    keypoints: float = 20.0  # squared keypoint error in image sides (0.05 side -> 0.0025)
    camera: float = 0.1  # camera head against known cameras (only used by `reconstruct image`)
    laplacian: float = 5.0  # Laplacian of the deformation (GANverse3D: 5)
    flatten: float = 0.05  # face-normal agreement (the template's own creases cost ~1e-3)
    deformation: float = 1.0  # per-image offsets (GANverse3D's L_mov: 2.5)
    symmetry: float = 0.1  # texture vs its mirror
    multiview: float = 1.0  # factor on the view terms rendered in a second view of the car

    def validate(self) -> LossWeights:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not value >= 0.0:
                raise AssetganError(f"loss weight {f.name} must be >= 0, got {value}")
        return self

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def silhouette_loss(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B] 1 - soft IoU of coverage alpha [B, H, W] and mask [B, H, W]."""
    intersection = (alpha * mask).sum((1, 2))
    union = (alpha + mask - alpha * mask).sum((1, 2))
    return 1.0 - intersection / union.clamp(min=1e-6)


def colour_loss(rgb: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B] mean |rgb - image| over mask pixels; rgb [B, H, W, 3], images [B, 3, H, W]."""
    difference = (rgb - images.permute(0, 2, 3, 1)).abs().sum(-1) * mask
    return difference.sum((1, 2)) / (3.0 * mask.sum((1, 2)).clamp(min=1.0))


def part_loss(
    part_logits: torch.Tensor, covered: torch.Tensor, part_ids: torch.Tensor
) -> torch.Tensor:
    """[B] cross-entropy of logits [B, H, W, 19] against car_20 ids [B, H, W] over pixels that
    are covered and labelled 1..19 (background and IGNORE_ID pixels are left out)."""
    valid = covered & (part_ids >= 1) & (part_ids <= NUM_PARTS)
    target = (part_ids - 1).clamp(0, NUM_PARTS - 1)
    per_pixel = F.cross_entropy(part_logits.permute(0, 3, 1, 2), target, reduction="none")
    per_pixel = per_pixel * valid
    return per_pixel.sum((1, 2)) / valid.sum((1, 2)).clamp(min=1)


def keypoint_loss(
    keypoints_xy: torch.Tensor, keypoints_xyv: torch.Tensor, image_size: int
) -> torch.Tensor:
    """[B] mean squared distance (in image sides) over labelled keypoints (v > 0)."""
    labelled = (keypoints_xyv[..., 2] > 0).to(keypoints_xy.dtype)
    squared = ((keypoints_xy - keypoints_xyv[..., :2]) / image_size).pow(2).sum(-1)
    return (squared * labelled).sum(1) / labelled.sum(1).clamp(min=1.0)


def camera_loss(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """[B] error of predicted camera parameters [B, 7] against the truth (model.CAMERA_FIELDS)."""
    azimuth = 1.0 - torch.cos(torch.deg2rad(predicted[:, 0] - truth[:, 0]))
    elevation = ((predicted[:, 1] - truth[:, 1]) / 10.0).pow(2)
    distance = (torch.log(predicted[:, 2] / truth[:, 2]) / 0.1).pow(2)
    fov = ((predicted[:, 3] - truth[:, 3]) / 5.0).pow(2)
    target = ((predicted[:, 4:] - truth[:, 4:]) / 0.5).pow(2).sum(1)
    return azimuth + elevation + distance + fov + target


def view_terms(rendered: RenderedView, batch: ReconstructBatch) -> dict[str, torch.Tensor]:
    """{term: [B]} for the view terms the batch has labels for."""
    size = batch.images.shape[-1]
    terms = {
        "silhouette": silhouette_loss(rendered.alpha, batch.masks),
        "colour": colour_loss(rendered.rgb, batch.images, batch.masks),
    }
    if batch.part_ids is not None:
        terms["parts"] = part_loss(rendered.part_logits, rendered.covered, batch.part_ids)
    if batch.keypoints_xyv is not None:
        terms["keypoints"] = keypoint_loss(rendered.keypoints_xy, batch.keypoints_xyv, size)
    return terms


def flatten_loss(vertices: torch.Tensor, faces: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """mean (cos(n1, n2) - 1)^2 over face pairs [E, 2] sharing an edge; vertices [B, V, 3]."""
    normals = face_normals(vertices, faces)  # [B, T, 3]
    cosine = (normals[:, pairs[:, 0]] * normals[:, pairs[:, 1]]).sum(-1)
    return (cosine - 1.0).pow(2).mean()


def shape_terms(
    reconstruction: Reconstruction, template: Template, half_length: float
) -> dict[str, torch.Tensor]:
    """{term: scalar} of the regularisers (lengths divided by half_length)."""
    deformation = (reconstruction.mean_offsets + reconstruction.offsets) / half_length
    return {
        "laplacian": uniform_laplacian_loss(deformation, template.faces),
        "flatten": flatten_loss(
            reconstruction.vertices / half_length, template.faces, template.face_pairs
        ),
        "deformation": (reconstruction.offsets / half_length).pow(2).sum(-1).mean(),
        "symmetry": (reconstruction.texture - flip_uv_image(reconstruction.texture)).abs().mean(),
    }


def weighted_total(
    terms: dict[str, torch.Tensor], weights: LossWeights
) -> tuple[torch.Tensor, dict[str, float]]:
    """(total loss, {term: float}) from scalar terms; `mv_<term>` are the second-view terms,
    weighted by weights.multiview times the term's own weight."""
    total = torch.zeros(())
    figures: dict[str, float] = {}
    for name, value in terms.items():
        base = name.removeprefix("mv_")
        weight = getattr(weights, base) * (weights.multiview if name.startswith("mv_") else 1.0)
        total = total.to(value.device) + weight * value
        figures[name] = float(value.detach())
    figures["total"] = float(total.detach())
    return total, figures


def masked_mean(per_image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of per_image [B] over keep [B] bool (0 when nothing is kept)."""
    keep = keep.to(per_image.dtype)
    return (per_image * keep).sum() / keep.sum().clamp(min=1.0)
