"""The reports as a person sees them: opened in headless Chromium (DevTools protocol), with no console error, no
uncaught exception, no failed load, every image decoded and every chart drawn with a size; a full-page
screenshot of each is saved beside the test's files. Skipped only when no chromium is installed."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schoolsurge.report import build_report
from schoolsurge.report.compare import compare_runs, write_comparison
from schoolsurge.rundir import CAPACITY_COLUMNS, CAPACITY_CSV
from schoolsurge.runner import RunOutcome

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 1280


def _screenshots_module() -> ModuleType:
    """benchmarks/screenshots.py (the same browser and checks as `python -m benchmarks.screenshots`)."""
    if "benchmarks.screenshots" in sys.modules:
        return sys.modules["benchmarks.screenshots"]
    spec = importlib.util.spec_from_file_location("benchmarks.screenshots", ROOT / "benchmarks" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


pytest.importorskip("websocket", reason="websocket-client is a dev dependency: pip install -e '.[dev]'")
screenshots = _screenshots_module()
if screenshots.find_chromium() is None:
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with screenshots.Chromium(width=WIDTH) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def plain_run(platform_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_report_plain_locust import plain_locust_run

    run_dir = plain_locust_run(platform_url, tmp_path_factory.mktemp("plain") / "plain-locust")
    build_report(run_dir)
    return run_dir


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _look(browser: Any, report: Path, shot: Path) -> Any:
    """Open the report, screenshot it, and fail with everything a person would have seen wrong."""
    check = browser.open(report)
    browser.screenshot(shot)
    assert check.ok, check.summary()
    width, height = _png_size(shot)
    assert width == WIDTH and height >= min(check.height, 900), (width, height, check.height)
    return check


def test_the_checks_catch_what_a_person_would_see(browser: Any, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><html><head><title>broken</title></head><body>"
        '<img alt="truncated chart" src="data:image/png;base64,iVBORw0KGgo=">'
        '<img alt="missing file" src="no-such-chart.png">'
        '<svg aria-label="flat chart" width="300" height="0"><path d="M0 0L1 1"/></svg>'
        '<svg aria-label="blank chart" width="300" height="100"></svg>'
        "<script>console.error('chart data missing'); undefinedFunction();</script>"
        '<div style="max-width: 400px"><table class="steps"><tr><td style="white-space: nowrap">'
        + "step "
        * 200
        + "</td></tr></table></div>"
        "</body></html>"
    )
    check = browser.open(page)
    assert not check.ok
    text = check.summary()
    for expected in (
        "broken image: truncated chart",
        "broken image: missing file",
        "chart without a size: flat chart",
        "empty chart: blank chart",
        "console.error: chart data missing",
        "undefinedFunction is not defined",
        "no-such-chart.png",
        "table wider than the page",
    ):
        assert expected in text, text


def test_surge_report_renders_cleanly(browser: Any, smoke_run: RunOutcome, tmp_path: Path) -> None:
    assert smoke_run.report is not None
    check = _look(browser, smoke_run.report, tmp_path / "surge.png")
    assert check.svgs + check.images >= 5, check.summary()  # the engine's charts, not only Locust's


def test_plain_locust_report_renders_cleanly(browser: Any, plain_run: Path, tmp_path: Path) -> None:
    check = _look(browser, plain_run / "report.html", tmp_path / "plain-locust.png")
    assert check.svgs + check.images >= 2, check.summary()


def test_comparison_report_renders_cleanly(
    browser: Any, smoke_run: RunOutcome, plain_run: Path, tmp_path: Path
) -> None:
    doubled = tmp_path / "doubled"  # the same run read as if at twice the scale: a second, different run
    shutil.copytree(smoke_run.run_dir, doubled)
    manifest = json.loads((doubled / "manifest.json").read_text())
    (doubled / "manifest.json").write_text(json.dumps({**manifest, "scale": manifest["scale"] * 2}))
    comparison = compare_runs([smoke_run.run_dir, doubled, plain_run])
    page = write_comparison(comparison, tmp_path / "compare")
    check = _look(browser, page, tmp_path / "compare.png")
    assert check.svgs + check.images >= 1, check.summary()


def test_a_sweeps_steps_table_fits_the_page(browser: Any, smoke_run: RunOutcome, tmp_path: Path) -> None:
    """A sweep's steps table has a column per figure of capacity.csv: it widened the page past its 1000 px."""
    sweep = tmp_path / "sweep"
    shutil.copytree(smoke_run.run_dir, sweep)
    manifest = json.loads((sweep / "manifest.json").read_text())
    (sweep / "manifest.json").write_text(json.dumps({**manifest, "kind": "sweep"}))
    rows = []
    for step in range(1, 8):
        row = {column: f"{1234.5678 * step:.4f}" for column in CAPACITY_COLUMNS}
        row.update(step=step, status="measured", start_s=5 * (step - 1), measured_from_s=5 * step - 3)
        row.update(end_s=5 * step, slo_met="true", breaches="", error_ratio=0.001)
        rows.append(row)
    with (sweep / CAPACITY_CSV).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CAPACITY_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    check = _look(browser, build_report(sweep), tmp_path / "sweep.png")
    assert "Steps of the sweep" in (sweep / "report.html").read_text()
    assert check.width <= WIDTH, check.summary()
