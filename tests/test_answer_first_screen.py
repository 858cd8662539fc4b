"""The answer is what a person sees first: in headless Chromium at 1400 x 900, the first screen of a run's report
and of a sweep's report shows the answer block whole (top and bottom inside the viewport, nothing cut at the
sides). Real runs: a smoke morning and the sweep of tests/test_sweep.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_report_browser import screenshots
from test_sweep import pupils_sweep  # noqa: F401 (the sweep fixture, shared)

from schoolsurge.rundir import ANSWER_JSON, REPORT
from schoolsurge.runner import RunOutcome, RunRequest, run

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
FIRST_SCREEN = (1400, 900)
ANSWER_BOX = (
    "(() => { const box = document.getElementById('answer').getBoundingClientRect();"
    " return {top: box.top, bottom: box.bottom, left: box.left, right: box.right,"
    " first: document.body.firstElementChild.nextElementSibling.id}; })()"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    width, height = FIRST_SCREEN
    with screenshots.Chromium(width=width, height=height) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def morning(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    return run(RunRequest(scenario_path=SMOKE, target=None, speed=240, reports_dir=tmp_path_factory.mktemp("run")))


def _answer_fits_the_first_screen(browser: Any, run_dir: Path) -> None:
    check = browser.open(run_dir / REPORT)
    assert check.ok, check.summary()
    box = browser.evaluate(ANSWER_BOX)
    width, height = FIRST_SCREEN
    assert box["top"] >= 0 and box["bottom"] <= height, box
    assert box["left"] >= 0 and box["right"] <= width, box
    lines = json.loads((run_dir / ANSWER_JSON).read_text())["lines"]
    assert 5 <= len(lines) <= 8, lines


@pytest.mark.long
def test_the_first_screen_of_a_run_report_shows_the_answer_whole(browser: Any, morning: RunOutcome) -> None:
    _answer_fits_the_first_screen(browser, morning.run_dir)


@pytest.mark.long
def test_the_first_screen_of_a_sweep_report_shows_the_answer_whole(
    browser: Any,
    pupils_sweep: RunOutcome,  # noqa: F811
) -> None:
    _answer_fits_the_first_screen(browser, pupils_sweep.run_dir)
