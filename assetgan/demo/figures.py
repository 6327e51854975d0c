"""Every figure of the demo report: what it is, the issues' target, the paper's anchor
(shared/reference/ANCHORS.md) and the range it must fall in (the report's check, and CI's on
`--quick`). `collect` reads the figures out of the finished steps' summaries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Range = tuple[float, float]


@dataclass(frozen=True)
class Figure:
    """One row of the metrics table."""

    key: str  # name in DemoResult.figures and report.json
    label: str  # what was measured, on what
    target: str  # the issues' target ("" = none set)
    anchor: str  # the paper's figure for the same thing ("" = none)
    quick: Range | None  # expected range with QUICK_SIZES; None = not measured by the demo
    full: Range | None  # expected range with the full sizes
    why: str  # why this range (or why it is not measured)


NOT_MEASURED = "not measured"

# Ranges: wide enough for other seeds and a retrained network, narrow enough to catch a broken
# chain (a constant prediction, labels from the wrong image, a swapped taxonomy). "Measured" is
# the figure of the runs recorded in docs/demo.md.
FIGURES: tuple[Figure, ...] = (
    Figure(
        "annotations_miou",
        "simulated annotations: mIoU of the drawn polygons vs the segmenter's masks",
        "",
        "",
        (0.6, 1.0),
        (0.6, 1.0),
        "the simulated hand simplifies polygons and jitters vertices (docs/annotate.md); "
        "measured 0.91 quick, 0.88 full; below 0.6 the drawing is broken",
    ),
    Figure(
        "dataset_kept_share",
        "generated pairs kept after dropping the most uncertain",
        "",
        "DatasetGAN drops 10 %",
        (0.85, 0.95),
        (0.85, 0.95),
        "drop = 0.1 of the pairs, rounded",
    ),
    Figure(
        "dataset_mean_js",
        "mean image uncertainty score of the generated pairs (JS, top 10 % of pixels)",
        "",
        "",
        (0.0, 0.3),
        (0.02, 0.4),
        "JS of an ensemble is in [0, ln 2]; measured 0.03 with 2 members (quick), 0.20 with 10; "
        "near ln 2 the members disagree everywhere",
    ),
    Figure(
        "ours_miou_car_20",
        "segmenter trained on generated pairs only, on the split's ground truth: mIoU car_20",
        ">= 0.6 x the real-data segmenter (issue 10)",
        "DatasetGAN Car-20 0.623 (16 annotations)",
        (0.02, 0.3),
        (0.08, 0.7),
        "quick (36 steps): measured 0.06, little above background-only (0.045); full: 0.125 "
        "after 192 steps; the paper report's longer training reaches 0.19 (issue 10)",
    ),
    Figure(
        "ours_miou_car_12",
        "the same at car_12",
        "",
        "DatasetGAN ADE-Car-12 0.456",
        (0.02, 0.3),
        (0.1, 0.75),
        "as car_20, merged (measured 0.12 quick, 0.18 full)",
    ),
    Figure(
        "ours_miou_car_5",
        "the same at car_5",
        ">= 0.97 x full-data (issue 13)",
        "DatasetGAN ADE-Car-5 0.577, PASCAL-Car-5 0.557",
        (0.1, 0.5),
        (0.25, 0.9),
        "as car_20, merged; background is one of 6 classes (measured 0.24 quick, 0.36 full)",
    ),
    Figure(
        "ours_pck_0_1",
        "the same: keypoint PCK@0.1",
        ">= 0.75 (issue 13)",
        "DatasetGAN Car-20 0.671",
        (0.0, 0.5),
        (0.0, 0.8),
        "keypoints learned from generated data are weak (issue 13: 0.012); any value is possible "
        "for a brief training",
    ),
    Figure(
        "ours_pck_0_05",
        "the same: keypoint PCK@0.05",
        "",
        "DatasetGAN Car-20 0.352",
        (0.0, 0.4),
        (0.0, 0.7),
        "as PCK@0.1, a tighter radius",
    ),
    Figure(
        "real_miou_car_20",
        "shipped segmenter (10,000 real CarWorld renders), same images: mIoU car_20",
        "",
        "DeepLab-V3 on 2600 real labels, ADE-Car-5 0.594",
        (0.4, 0.9),
        (0.5, 0.9),
        "its model card: 0.746 on 500 test64 renders (measured 0.70 quick, 0.73 full)",
    ),
    Figure(
        "real_miou_car_5",
        "the same at car_5",
        "",
        "",
        (0.5, 0.95),
        (0.6, 0.95),
        "as car_20, merged (model card: 0.836)",
    ),
    Figure(
        "real_pck_0_1",
        "the same: keypoint PCK@0.1",
        "",
        "",
        (0.5, 1.0),
        (0.6, 1.0),
        "trained on real keypoints; its model card: 0.745 (measured 0.67 quick, 0.75 full)",
    ),
    Figure(
        "ours_over_real_car_20",
        "car_20 mIoU of ours / of the real-data segmenter",
        ">= 0.6 (issue 10), the paper 0.97 (issue 13)",
        "DatasetGAN 57.71 / 59.41 = 0.97 (ADE-Car-5)",
        (0.0, 0.6),
        (0.1, 1.1),
        "the ratio of the two rows above (measured 0.17 full)",
    ),
    Figure(
        "multiview_kept_share",
        "multi-view set: images kept (mask >= 10 %, not among the 10 % most uncertain)",
        "",
        "GANverse3D drops masks under 10 %",
        (0.5, 1.0),
        (0.7, 1.0),
        "the uncertainty rule drops about 10 % (docs/multiview.md: 518 of 576)",
    ),
    Figure(
        "multiview_camera_share",
        "multi-view set: view codes with a camera (PnP of the interpreter's keypoints)",
        "",
        "GANverse3D: a human puts each view code in one of 12 azimuth bins",
        (0.0, 1.0),
        (0.5, 1.0),
        "quick: a tiny interpreter may find no keypoints; full: most view codes get one",
    ),
    Figure(
        "multiview_paint_identity",
        "multi-view set: paint identity of a content code across views",
        "clearly better than today's (issue 10)",
        "",
        (-1.0, 1.0),
        (0.3, 1.0),
        "1 - within/between colour distance; docs/multiview.md: 0.775 on 12 x 48; 2 x 2 is noise",
    ),
    Figure(
        "recon_silhouette_iou",
        "reconstructions in their input view (PnP camera): silhouette IoU vs the split's mask",
        ">= 0.95 (issue 11)",
        "GANverse3D 0.95 (re-projected 2D IoU, StyleGAN test data)",
        (0.3, 1.0),
        (0.3, 1.0),
        "docs/reconstruct.md: the shipped network scores 0.888 in the PnP camera on 200 test "
        "images (0.874 in the full demo); below 0.3 the camera or the keypoints are broken "
        "(0.34 before the mirrored-camera fix)",
    ),
    Figure(
        "recon_miou_car_5",
        "the same: part mIoU car_5",
        ">= 0.7 (issue 11)",
        "",
        (0.1, 1.0),
        (0.1, 1.0),
        "docs/reconstruct.md: 0.517 in the true camera (measured 0.28 / 0.18 in the PnP camera)",
    ),
    Figure(
        "recon_miou_car_20",
        "the same: part mIoU car_20",
        "",
        "",
        (0.02, 1.0),
        (0.05, 1.0),
        "20 classes on 64 px renders of a coarse mesh",
    ),
    Figure(
        "recon_pck_0_1",
        "the same: projected 3D keypoints, PCK@0.1",
        "",
        "",
        (0.0, 1.0),
        (0.1, 1.0),
        "keypoints on the mesh projected with the PnP camera",
    ),
    Figure(
        "recon_unseen_iou",
        "reconstructions from unseen views: silhouette IoU",
        ">= 0.85 (issue 11)",
        "",
        None,
        None,
        "needs the test cars rendered from other views (benchmarks/reconstruct.py)",
    ),
    Figure(
        "recon_wheel_error",
        "wheel-centre error, % of the car's length",
        "< 5 % (issue 11)",
        "",
        None,
        None,
        "benchmarks/reconstruct.py's figure; not computed by the demo",
    ),
    Figure(
        "export_share",
        "cars exported as rigged GLB (wheels fitted) / cars asked",
        "every car",
        "",
        (0.0, 1.0),
        (0.2, 1.0),
        "ground-truth cars always export; with the shipped network 10 of 10 in the full demo "
        "(37 of 40 test cars, docs/reconstruct.md); refusals are listed with the reason",
    ),
    Figure(
        "gan_area_fd_ratio",
        "generator: part-area Frechet distance / real-vs-real floor",
        "<= 3x the floor (issue 10)",
        "",
        None,
        None,
        "`assetgan gan eval` (minutes); the shipped generator's model card: 7.3x (seg_fd 6.5x)",
    ),
)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


def collect(summaries: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """Every FIGURES key -> its value from the step summaries (None where not measured)."""
    figures: dict[str, float | None] = {f.key: None for f in FIGURES}
    if "annotations" in summaries:
        figures["annotations_miou"] = summaries["annotations"]["mean_iou"]
    if "dataset" in summaries:
        dataset = summaries["dataset"]
        figures["dataset_kept_share"] = dataset["kept"] / dataset["pairs"]
        figures["dataset_mean_js"] = dataset["mean_score"]
    if "segment_eval" in summaries:
        ours, real = summaries["segment_eval"]["ours"], summaries["segment_eval"]["real"]
        for name in ("miou_car_20", "miou_car_12", "miou_car_5"):
            figures[f"ours_{name}"] = ours[name]
        figures["ours_pck_0_1"], figures["ours_pck_0_05"] = ours["pck@0.1"], ours["pck@0.05"]
        for name in ("miou_car_20", "miou_car_5"):
            figures[f"real_{name}"] = real[name]
        figures["real_pck_0_1"] = real["pck@0.1"]
        figures["ours_over_real_car_20"] = ratio(ours["miou_car_20"], real["miou_car_20"])
    if "multiview" in summaries:
        multiview = summaries["multiview"]
        figures["multiview_kept_share"] = ratio(multiview["kept"], multiview["images"])
        views = multiview.get("views") or None
        figures["multiview_camera_share"] = ratio(multiview["view_codes_with_camera"], views)
        figures["multiview_paint_identity"] = multiview["identity"]["paint_identity"]
    if "reconstruct" in summaries:
        recon = summaries["reconstruct"]
        figures["recon_silhouette_iou"] = recon["silhouette_iou"]
        for name in ("miou_car_5", "miou_car_20", "pck_0_1"):
            figures[f"recon_{name}"] = recon.get(name)
    if "export" in summaries:
        export = summaries["export"]
        figures["export_share"] = ratio(len(export["exported"]), export["asked"])
    return figures


def out_of_range(figures: dict[str, float | None], quick: bool) -> list[str]:
    """Keys of the measured figures outside their expected range for this mode."""
    bad = []
    for figure in FIGURES:
        limits = figure.quick if quick else figure.full
        value = figures.get(figure.key)
        if limits is None or value is None:
            continue
        if not limits[0] <= value <= limits[1]:
            bad.append(figure.key)
    return bad
