"""`assetgan demo --quick` end to end into a temp folder: every step's files, every figure in its
expected range, a re-run that reuses every step, a missing reconstruction network, the report
in headless Chromium without console errors, and the CLI (including a bad --out)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time

import pytest
import torch
from export_browser import Chromium, find_chromium, serve
from test_reconstruct import TINY as TINY_NET
from typer.testing import CliRunner

from assetgan.core.errors import AssetganError
from assetgan.core.progress import ProgressEvent
from assetgan.demo.chain import run
from assetgan.demo.config import QUICK_SIZES, DemoConfig, DemoSizes
from assetgan.demo.figures import FIGURES
from assetgan.demo.report import STEP_TITLES
from assetgan.inverse_graphics.reconstruct.model import ReconstructNet, save_reconstructor

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CHROMIUM = find_chromium()
STEPS = tuple(STEP_TITLES)


@dataclasses.dataclass
class Finished:
    config: DemoConfig
    result: object
    events: list[ProgressEvent]
    seconds: float


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Finished:
    root = tmp_path_factory.mktemp("demo")
    torch.manual_seed(0)  # an untrained small network: reconstruct and export run for real
    model = save_reconstructor(root / "net.safetensors", ReconstructNet(TINY_NET), {"step": 0})
    config = DemoConfig(out=root / "report", reconstructor=model, sizes=QUICK_SIZES)
    events: list[ProgressEvent] = []
    started = time.perf_counter()
    result = run(config, events.append)
    return Finished(config, result, events, time.perf_counter() - started)


def test_quick_demo_writes_every_step_and_the_report(finished):
    result, out = finished.result, finished.config.out
    assert result.steps_run == STEPS and result.steps_skipped == () and result.missing == ()
    for name in STEPS:
        record = json.loads((out / "steps" / name / "step.json").read_text())
        assert record["name"] == name and record["seconds"] > 0
    for picture in (
        "steps/world/sheet.png",
        "steps/samples/samples.png",
        "steps/annotations/sheet.png",
        "steps/dataset/sheet.png",
        "steps/dataset/gallery.html",
        "steps/segment_eval/ours_sheet.png",
        "steps/segment_eval/real_sheet.png",
        "steps/multiview/sheet.png",
        "steps/multiview/set/cameras.json",
        "steps/reconstruct/sheet.png",
        "steps/reconstruct/cars/000001/turntable.png",
        "steps/export/truth_000000.glb",
        "steps/export/truth_000000.html",
        "steps/export/truth_000000.png",
    ):
        assert (out / picture).is_file(), picture
    assert {p.name for p in result.plots} == {
        "segmentation.png",
        "parts.png",
        "reconstruction.png",
        "step_times.png",
    }
    assert all(p.is_file() and p.parent == out for p in result.plots)
    assert out / "steps/export/truth_000000.html" in result.viewers
    assert all(v.is_file() for v in result.viewers)
    page = result.index.read_text(encoding="utf-8")
    for viewer in result.viewers:
        assert f'src="steps/export/{viewer.name}"' in page  # an iframe per exported car
    assert "steps/dataset/gallery.html" in page and "<table>" in page
    report = json.loads(result.report_json.read_text())
    assert report["figures"] == result.figures and report["config"]["sizes"]["pairs"] == 32
    # one progress line per step, naming it and its time
    lines = [e.message for e in finished.events if e.message]
    assert [line.split(":")[0] for line in lines] == list(STEPS)
    assert all(line.endswith(" s") for line in lines)
    assert finished.seconds < 120


def test_every_figure_is_in_its_quick_range(finished):
    figures = finished.result.figures
    assert finished.result.out_of_range == ()
    for figure in FIGURES:
        if figure.quick is None:  # the demo does not measure it: the report says so
            assert figures[figure.key] is None, figure.key
            continue
        value = figures[figure.key]
        assert value is not None, figure.key
        assert figure.quick[0] <= value <= figure.quick[1], (figure.key, value)
    page = finished.result.index.read_text(encoding="utf-8")
    assert page.count("not measured") >= sum(f.quick is None for f in FIGURES)
    assert 'class="bad"' not in page
    # the ground-truth car always exports with its rig
    export = json.loads((finished.config.out / "steps/export/step.json").read_text())["summary"]
    truth = [car for car in export["exported"] if car["name"] == "truth_000000"]
    assert truth and truth[0]["animations"] == ["drive", "steer"]
    assert len(export["exported"]) + len(export["refused"]) == export["asked"] == 3
    for car in export["refused"]:  # shown unrigged, with the reason
        assert car["error"] and (finished.config.out / "steps/export" / car["viewer"]).is_file()


def test_rerun_reuses_every_step_and_the_cli_runs(finished):
    out = finished.config.out
    before = {n: (out / "steps" / n / "step.json").read_bytes() for n in STEPS}
    started = time.perf_counter()
    cli = CliRunner().invoke(
        demo_app(),
        [
            "demo",
            "--out",
            str(out),
            "--quick",
            "--reconstructor",
            str(finished.config.reconstructor),
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert "0 steps run, 10 reused" in cli.output and "index.html" in cli.output
    assert time.perf_counter() - started < finished.seconds / 2
    assert {n: (out / "steps" / n / "step.json").read_bytes() for n in STEPS} == before


def test_missing_network_leaves_out_reconstructions_and_a_changed_step_is_redone(
    finished, tmp_path
):
    copy = tmp_path / "report"
    shutil.copytree(finished.config.out, copy)
    config = dataclasses.replace(
        finished.config, out=copy, reconstructor=tmp_path / "absent.safetensors"
    )
    events: list[ProgressEvent] = []
    result = run(config, events.append)
    assert result.steps_run == ("export",)  # its settings changed: only ground truth now
    assert set(result.steps_skipped) == set(STEPS) - {"reconstruct", "export"}
    assert len(result.missing) == 1 and "absent.safetensors" in result.missing[0]
    assert any("no reconstruction network" in e.message for e in events)
    assert result.figures["recon_silhouette_iou"] is None
    export = json.loads((copy / "steps/export/step.json").read_text())["summary"]
    assert [car["name"] for car in export["exported"]] == ["truth_000000"]
    page = result.index.read_text(encoding="utf-8")
    assert "absent.safetensors" in page and "recon_000000" not in page


def test_config_checks_and_round_trip(tmp_path):
    config = DemoConfig(out=tmp_path / "r", sizes=QUICK_SIZES, seed=3)
    assert DemoConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.quick and not DemoConfig(out=tmp_path).quick
    (tmp_path / "file").write_text("x")
    for bad, message in (
        (DemoConfig(out=tmp_path / "file"), "not a directory"),
        (DemoConfig(out=tmp_path / "r", generator=tmp_path / "no.safetensors"), "no such"),
        (DemoConfig(out=tmp_path / "r", sizes=DemoSizes(pairs=0)), "pairs must be >= 1"),
        (DemoConfig(out=tmp_path / "r", sizes=DemoSizes(views=1)), ">= 2 views"),
    ):
        with pytest.raises(AssetganError, match=message):
            run(bad)
    assert not (tmp_path / "r").exists()


def demo_app():
    from assetgan.cli import app

    return app


def test_cli_bad_out(tmp_path):
    (tmp_path / "taken").write_text("a file")
    done = CliRunner().invoke(demo_app(), ["demo", "--out", str(tmp_path / "taken"), "--quick"])
    assert done.exit_code == 1
    assert done.output.strip().startswith("error:") and "not a directory" in done.output


class ConsoleChromium(Chromium):
    """Chromium that also keeps the page's console errors, uncaught exceptions and failed
    loads (Runtime and Log events, switched on before the first navigation)."""

    ERROR_EVENTS = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[dict] = []
        self.listening = False

    def call(self, method: str, params: dict | None = None, browser: bool = False) -> dict:
        if method == "Page.navigate" and not self.listening:
            self.listening = True
            self.call("Runtime.enable")
            self.call("Log.enable")
        self._next_id += 1
        wanted = self._next_id
        request = {"id": wanted, "method": method, "params": params or {}}
        if self.session and not browser:
            request["sessionId"] = self.session
        os.write(self._to_child, json.dumps(request).encode() + b"\0")
        while True:
            if b"\0" not in self._buffer:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the DevTools pipe during {method}")
                self._buffer += chunk
                continue
            raw, self._buffer = self._buffer.split(b"\0", 1)
            message = json.loads(raw)
            if message.get("method") in self.ERROR_EVENTS:
                self.events.append(message)
            elif message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            params = event["params"]
            if event["method"] == "Runtime.exceptionThrown":
                errors.append(json.dumps(params["exceptionDetails"])[:300])
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] == "error":
                errors.append(json.dumps(params["args"])[:300])
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                errors.append(f"{entry.get('text')} {entry.get('url', '')}")
        return errors


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_opens_in_chromium_without_console_errors(finished):
    out = finished.config.out
    server = serve(out)
    browser = ConsoleChromium(CHROMIUM, width=1200, height=900)
    try:
        browser.open(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        browser.wait_for("document.readyState === 'complete'", 60)
        viewers = len(finished.result.viewers)
        ready = (
            "[...document.querySelectorAll('iframe')].filter(f => f.contentWindow.assetganViewer"
            " && (f.contentWindow.assetganViewer.ready || f.contentWindow.assetganViewer.error))"
            ".length"
        )
        browser.evaluate("document.querySelectorAll('iframe').forEach(f => f.scrollIntoView())")
        browser.wait_for(f"{ready} === {viewers}", 120)
        errors = browser.evaluate(
            "[...document.querySelectorAll('iframe')].map(f => f.contentWindow.assetganViewer.error)"
            ".filter(e => e)"
        )
        broken = browser.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
        )
        images = browser.evaluate("document.images.length")
        console = browser.console_errors()
    finally:
        browser.close()
        server.shutdown()
    assert errors == [] and broken == [] and images >= 12
    assert console == [], console
