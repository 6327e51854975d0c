"""The demo report: OUT/index.html (galleries, metrics table, plots, a three.js viewer per
exported car, step times), OUT/report.json and the PNG plots. Pictures are linked relative to
OUT (they live in OUT/steps/<step>/), so the folder can be moved or served as it is."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from assetgan.assets.taxonomy import CAR_20
from assetgan.core.io_utils import atomic_write_json, atomic_write_text
from assetgan.demo.config import DemoConfig
from assetgan.demo.figures import FIGURES, NOT_MEASURED
from assetgan.demo.plots import bar_chart

STEP_TITLES = {
    "world": "1. CarWorld test split (renders with meshes)",
    "samples": "2. Samples of the shipped generator",
    "annotations": "3a. Simulated annotations",
    "interpreter": "3b. Style Interpreter",
    "dataset": "3c. Generated labeled dataset",
    "segmenter": "4a. Segmenter trained on the generated pairs",
    "segment_eval": "4b. Segmenter scored on the CarWorld split",
    "multiview": "5. Multi-view set",
    "reconstruct": "6. Reconstructions",
    "export": "7. Rigged exports",
}
# The paper's anchors for the segmentation plot (ANCHORS.md: DatasetGAN, 16 annotations, real
# car photos; Car-20 / ADE-Car-12 / ADE-Car-5 mIoU, Car-20 PCK@0.1).
PAPER_SEGMENTATION = {"car_20": 0.6233, "car_12": 0.4564, "car_5": 0.5771, "PCK@0.1": 0.6714}
STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1200px}
img.sheet{image-rendering:pixelated;max-width:100%;max-height:900px}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;
font-size:13px;vertical-align:top}th{background:#eee}.bad{background:#fdd}.ok{background:#dfd}
.cars{display:flex;flex-wrap:wrap;gap:12px}.car{border:1px solid #ccc;padding:6px;max-width:490px}
iframe{width:480px;height:300px;border:0}.note{color:#555;font-size:13px}"""


def fmt(value: Any) -> str:
    if value is None:
        return NOT_MEASURED
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def heading(step: str) -> str:
    return f'<h3 id="step-{step}">{html.escape(STEP_TITLES[step])}</h3>'


def image(src: str, alt: str) -> str:
    return f'<img class="sheet" src="{html.escape(src)}" alt="{html.escape(alt)}">'


def write_plots(out: Path, summaries: dict[str, Any], seconds: dict[str, float]) -> list[Path]:
    """segmentation.png, parts.png, reconstruction.png (when measured) and step_times.png."""
    plots = []
    if "segment_eval" in summaries:
        ours, real = summaries["segment_eval"]["ours"], summaries["segment_eval"]["real"]
        names = ("car_20", "car_12", "car_5", "PCK@0.1")
        keys = ("miou_car_20", "miou_car_12", "miou_car_5", "pck@0.1")
        plots.append(
            bar_chart(
                out / "segmentation.png",
                "segmenters on the CarWorld split: mIoU per taxonomy, PCK@0.1",
                names,
                {
                    "ours (generated pairs)": [ours[k] for k in keys],
                    "shipped (real renders)": [real[k] for k in keys],
                    "paper anchor (DatasetGAN)": [PAPER_SEGMENTATION[n] for n in names],
                },
                y_max=1.0,
                bar_width=22,
            )
        )
        parts = CAR_20[1:]
        plots.append(
            bar_chart(
                out / "parts.png",
                "IoU per car_20 part (no bar: the part is in neither truth nor prediction)",
                parts,
                {
                    "ours (generated pairs)": [ours["per_class_iou_car_20"][p] for p in parts],
                    "shipped (real renders)": [real["per_class_iou_car_20"][p] for p in parts],
                },
                y_max=1.0,
            )
        )
    if "reconstruct" in summaries:
        recon = summaries["reconstruct"]
        keys = ("silhouette_iou", "miou_car_5", "miou_car_20", "pck_0_1")
        plots.append(
            bar_chart(
                out / "reconstruction.png",
                "reconstructions in their input view vs the split's labels",
                ("silhouette IoU", "mIoU car_5", "mIoU car_20", "PCK@0.1"),
                {
                    "measured": [recon.get(k) for k in keys],
                    "target (issue 11)": [0.95, 0.7, None, None],
                },
                y_max=1.0,
                bar_width=22,
            )
        )
    plots.append(
        bar_chart(
            out / "step_times.png",
            "wall time per step (s), when the step was computed",
            list(seconds),
            {"seconds": list(seconds.values())},
            bar_width=24,
        )
    )
    return plots


def metrics_table(figures: dict[str, float | None], quick: bool) -> str:
    rows = ["<tr><th>figure</th><th>measured</th><th>expected range</th><th>target</th>"]
    rows[0] += "<th>paper anchor</th><th>why this range</th></tr>"
    for figure in FIGURES:
        value = figures.get(figure.key)
        limits = figure.quick if quick else figure.full
        if limits is None or value is None:
            check, span = "", "-" if limits is None else f"{limits[0]:g} .. {limits[1]:g}"
        else:
            check = "ok" if limits[0] <= value <= limits[1] else "bad"
            span = f"{limits[0]:g} .. {limits[1]:g}"
        rows.append(
            f'<tr id="figure-{figure.key}"><td>{html.escape(figure.label)}</td>'
            f'<td class="{check}">{fmt(value)}</td><td>{span}</td>'
            f"<td>{html.escape(figure.target or '-')}</td>"
            f"<td>{html.escape(figure.anchor or '-')}</td>"
            f'<td class="note">{html.escape(figure.why)}</td></tr>'
        )
    return "<table>" + "\n".join(rows) + "</table>"


def step_table(records: dict[str, dict[str, Any]], ran: list[str]) -> str:
    rows = ["<tr><th>step</th><th>seconds</th><th>this run</th></tr>"]
    for name, record in records.items():
        state = "computed" if name in ran else "reused (time of the run that made it)"
        rows.append(f"<tr><td>{name}</td><td>{record['seconds']:.1f}</td><td>{state}</td></tr>")
    total = sum(r["seconds"] for r in records.values())
    rows.append(f"<tr><th>all steps</th><th>{total:.1f}</th><th></th></tr>")
    return "<table>" + "\n".join(rows) + "</table>"


def cameras_table(set_root: Path) -> str:
    cameras = json.loads((set_root / "cameras.json").read_text(encoding="utf-8"))["views"]
    if not cameras:
        return '<p class="note">No view code got a camera (too few keypoints found).</p>'
    rows = ["<tr><th>view code</th><th>azimuth</th><th>elevation</th><th>images</th></tr>"]
    for view, camera in sorted(cameras.items(), key=lambda item: int(item[0])):
        orbit = camera["orbit"]
        rows.append(
            f"<tr><td>{view}</td><td>{orbit['azimuth']:.1f}</td><td>{orbit['elevation']:.1f}"
            f"</td><td>{orbit.get('count', '')}</td></tr>"
        )
    return "<table>" + "\n".join(rows) + "</table>"


def car_card(car: dict[str, Any], note: str) -> str:
    """One car: links, its viewer page in an iframe, its turntable and a note."""
    base = "steps/export/"
    glb = f' <a href="{base}{car["glb"]}">GLB</a>' if "glb" in car else ""
    return (
        f'<div class="car"><b>{html.escape(car["name"])}</b> '
        f'<a href="{base}{car["viewer"]}">viewer page</a>{glb}<br>'
        f'<iframe src="{base}{car["viewer"]}" loading="lazy" title="{car["name"]}"></iframe>'
        f"<br>{image(base + car['turntable'], car['name'] + ' turntable')}"
        f'<div class="note">{html.escape(note)}</div></div>'
    )


def exports_html(summary: dict[str, Any]) -> str:
    cards = [
        car_card(
            car,
            f"{car['vertices']} vertices, length {car['length_m']:.2f} m, wheel radii "
            f"{car['wheel_radii_m']} m, animations {', '.join(car['animations'])}",
        )
        for car in summary["exported"]
    ]
    text = f'<div class="cars">{"".join(cards)}</div>'
    refused = [car_card(car, f"export refused: {car['error']}") for car in summary["refused"]]
    if refused:
        text += (
            "<p>Refused by the exporter; shown unrigged (the reconstruction's part mesh, "
            f'no animations):</p><div class="cars">{"".join(refused)}</div>'
        )
    return text


def sections(summaries: dict[str, Any], out: Path) -> str:
    """The gallery sections of the steps that ran."""
    parts = []
    if "world" in summaries:
        parts.append(
            heading("world")
            + f"<p>{summaries['world']['images']} renders at 64 px (top rows: images, "
            "below: car_20 parts).</p>" + image("steps/world/sheet.png", "CarWorld")
        )
    if "samples" in summaries:
        parts.append(heading("samples") + image("steps/samples/samples.png", "generator samples"))
    if "annotations" in summaries:
        parts.append(
            heading("annotations")
            + f"<p>{summaries['annotations']['samples']} samples annotated by the simulated hand "
            "(LabelMe polygons drawn from the shipped segmenter's masks):</p>"
            + image("steps/annotations/sheet.png", "annotations")
        )
    if "interpreter" in summaries:
        iterations = summaries["interpreter"]["iterations"]
        parts.append(
            heading("interpreter")
            + f"<p>Interpreter iterations per head: {html.escape(str(iterations))}</p>"
        )
    if "dataset" in summaries:
        d = summaries["dataset"]
        parts.append(
            heading("dataset") + f"<p>{d['pairs']} generated pairs, {d['kept']} kept. "
            '<a href="steps/dataset/gallery.html">the gallery</a> (most uncertain first).</p>'
            + image("steps/dataset/sheet.png", "generated pairs")
        )
    if "segmenter" in summaries:
        t = summaries["segmenter"]
        parts.append(
            heading("segmenter")
            + f"<p>A fresh UNet (no real label seen) trained {t['steps']} steps ({t['epochs']:.1f}"
            f" epochs) on the {t['images']} kept generated pairs.</p>"
        )
    if "segment_eval" in summaries:
        parts.append(
            heading("segment_eval")
            + "<p>Columns: image | truth | prediction. Ours (trained on generated pairs only):</p>"
            + image("steps/segment_eval/ours_sheet.png", "ours")
            + "<p>The shipped segmenter (real renders):</p>"
            + image("steps/segment_eval/real_sheet.png", "real")
        )
    if "multiview" in summaries:
        m = summaries["multiview"]
        parts.append(
            heading("multiview")
            + f"<p>{m['views']} view codes x {m['contents']} content codes (K = {m['view_layers']} "
            f"view ws), {m['kept']} of {m['images']} images kept; one column per view code:</p>"
            + image("steps/multiview/sheet.png", "multi-view")
            + cameras_table(out / "steps" / "multiview" / "set")
        )
    if "reconstruct" in summaries:
        r = summaries["reconstruct"]
        turntables = "".join(
            image(f"steps/reconstruct/cars/{c}/turntable.png", c) for c in r["cars"]
        )
        parts.append(
            heading("reconstruct")
            + "<p>Inputs over the reconstruction's parts in the input view (camera: "
            f"{html.escape(', '.join(sorted(set(r['camera_sources']))))}):</p>"
            + image("steps/reconstruct/sheet.png", "reconstructions")
            + f"<p>Turntables (texture, then parts):</p>{turntables}"
        )
    if "export" in summaries:
        parts.append(heading("export") + exports_html(summaries["export"]))
    return "\n".join(parts)


def write_report(
    config: DemoConfig,
    records: dict[str, dict[str, Any]],  # step name -> step.json
    ran: list[str],  # steps computed by this run
    figures: dict[str, float | None],
    bad: list[str],  # figures out of range
    missing: list[str],  # why steps did not run
) -> tuple[Path, Path, list[Path]]:
    """(index.html, report.json, plots) in config.out."""
    out = Path(config.out)
    summaries = {name: record["summary"] for name, record in records.items()}
    seconds = {name: record["seconds"] for name, record in records.items()}
    plots = write_plots(out, summaries, seconds)
    mode = "--quick (tiny sizes: a smoke test, not a measurement)" if config.quick else "full"
    notes = "".join(f"<li>{html.escape(m)}</li>" for m in missing)
    checks = (
        f"<p class='bad'>Outside the expected range: {html.escape(', '.join(bad))}</p>"
        if bad
        else "<p class='ok'>Every measured figure is inside its expected range.</p>"
    )
    checks += (
        "<p class='note'>Green: inside the expected range (the check that every step works). "
        "The target column is the goal; the figures are on this run's few test images.</p>"
    )
    body = [
        "<h1>assetgan demo</h1>",
        f"<p>Mode: {html.escape(mode)}. Sizes: {html.escape(json.dumps(config.sizes.to_dict()))}"
        f". Seed {config.seed}.</p>",
        f"<ul>{notes}</ul>" if notes else "",
        "<h2>Metrics</h2>",
        checks,
        metrics_table(figures, config.quick),
        "<h2>Plots</h2>",
        "".join(image(p.name, p.stem) for p in plots),
        "<h2>Steps</h2>",
    ]
    gallery = sections(summaries, out)
    body.append(gallery)
    body += ["<h2>Step times</h2>", step_table(records, ran)]
    titles = "".join(
        f'<li><a href="#step-{n}">{html.escape(STEP_TITLES[n])}</a></li>' for n in records
    )
    body.insert(1, f"<ul class='note'>{titles}</ul>")
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>assetgan demo</title>'
        f'<link rel="icon" href="data:,"><style>{STYLE}</style></head><body>'
        + "\n".join(body)
        + "</body></html>\n"
    )
    index = atomic_write_text(out / "index.html", page)
    report_json = atomic_write_json(
        out / "report.json",
        {
            "config": config.to_dict(),
            "figures": figures,
            "out_of_range": bad,
            "missing": missing,
            "steps": records,
        },
    )
    return index, report_json, plots
