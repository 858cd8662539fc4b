"""Runs CI can trust: a run whose generator could not keep the clock, or whose platform the machine starved, is
invalid (manifest, report, console, exit 4), the verdicts and the validity come out as JUnit XML, and a profile
chosen outside the scenario wins."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import assert_measured_the_platform, cmdline, descendants, smoke_half_hour

from schoolsurge.cli import EXIT_INVALID_RUN, main
from schoolsurge.conclude import conclude
from schoolsurge.report.outcome import health as health_module
from schoolsurge.report.outcome.health import Health, PlatformProcessHealth
from schoolsurge.rundir import MANIFEST, REPORT
from schoolsurge.runner import RunOutcome


def _cases(junit: Path) -> dict[str, ET.Element]:
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    return {case.get("name", ""): case for case in suite.iter("testcase")}


def test_a_generator_bound_run_is_invalid_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every start delay counts as late (--late-after 0): no generator keeps that clock, so the run is invalid.
    # The environment picks the profile (the smoke scenario names `resized`): the command line's choice wins.
    monkeypatch.setenv("SCHOOLSURGE_PROFILE", "undersized-2021")
    junit = tmp_path / "junit" / "run.xml"
    # Whatever its length the run is judged invalid: its half hour at speed 480 (3.75 s), everyone gone 1 s later.
    scenario = smoke_half_hour(tmp_path, session_minutes=5)
    arguments = ["run", str(scenario), "--speed", "480", "--late-after", "0", "--drain-limit", "1"]
    arguments += ["--reports-dir", str(tmp_path)]
    code = main([*arguments, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == EXIT_INVALID_RUN, out
    assert "INVALID RUN (generator-bound:" in out
    run_dir = next(p.parent for p in tmp_path.glob("*/manifest.json"))
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["valid"] is False and "arrivals late" in manifest["invalid_reason"]
    assert manifest["profile"] == "undersized-2021"
    assert "INVALID RUN (generator-bound" in (run_dir / REPORT).read_text()
    validity = _cases(junit)["run is valid (smoke)"]
    failure = validity.find("failure")
    assert failure is not None and failure.get("type") == "invalid"


STOPPED_S = 4.0  # how long the platform is stopped: half of smoke's first half hour at speed 240 (7.5 s)
FOUND_WITHIN_S = 300.0  # a busy machine starts the platform and Locust slowly


def _processes(marker: str) -> list[int]:
    return [pid for pid in descendants(os.getpid()) if marker in " ".join(cmdline(pid))]


def _answered(reports: Path) -> bool:
    """Locust has recorded answered requests of the run (its statistics history), so the run's clock is going."""
    for history in reports.glob("*/locust_stats_history.csv"):
        try:
            if pd.read_csv(history)["Total Request Count"].max() > 0:
                return True
        except (pd.errors.EmptyDataError, KeyError, ValueError):  # created, its header not yet written
            pass
    return False


def _stop_the_platform_mid_run(reports: Path, stopped: list[int]) -> None:
    """Once the run's load is flowing (Locust has recorded answers: before that, on a busy machine, the stop could
    fall in the start-up, outside the run's seconds), stop every process of the embedded platform (its server and
    the workers it spawned) for STOPPED_S, then let it go on: as if the machine gave it no CPU for those seconds."""
    deadline = time.monotonic() + FOUND_WITHIN_S
    while not (_processes("schoolsurge.platform") and _answered(reports)):
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)  # polling for the load to flow, with a deadline
    platform = [pid for server in _processes("schoolsurge.platform") for pid in (server, *descendants(server))]
    try:
        for pid in platform:
            os.kill(pid, signal.SIGSTOP)
        stopped.extend(platform)
        time.sleep(STOPPED_S)  # the starvation itself, not a synchronisation
    finally:
        for pid in platform:
            os.kill(pid, signal.SIGCONT)


def test_a_run_whose_platform_was_starved_is_machine_bound_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stopped: list[int] = []
    stopper = threading.Thread(target=_stop_the_platform_mid_run, args=(tmp_path / "reports", stopped))
    stopper.start()
    try:
        scenario = smoke_half_hour(tmp_path, session_minutes=10)
        code = main(["run", str(scenario), "--speed", "240", "--reports-dir", str(tmp_path / "reports")])
    finally:
        stopper.join()
    out = capsys.readouterr().out
    assert stopped, "the embedded platform and the run's Locust were never seen running"
    assert code == EXIT_INVALID_RUN, out
    assert "INVALID RUN (machine-bound:" in out and "the platform's event loops stalled" in out, out
    assert "it measured the machine the platform ran on, not the platform" in out
    run_dir = next(p.parent for p in (tmp_path / "reports").glob("*/manifest.json"))
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert manifest["valid"] is False and manifest["invalid_reason"].startswith("machine-bound: "), manifest
    top = (run_dir / REPORT).read_text().split("<nav>", 1)[0]  # the answer block and the notes before the contents
    assert "INVALID RUN (machine-bound:" in top
    answer_block = top.split('<section id="answer"', 1)[1].split("</section>", 1)[0]
    assert "INVALID RUN (machine-bound:" in answer_block and "not judged" in answer_block  # no verdict on the platform
    with pytest.raises(pytest.fail.Exception, match="machine-bound: .*stalled"):
        assert_measured_the_platform(run_dir)


def test_a_healthy_run_is_valid_and_its_verdicts_are_junit_test_cases(smoke_run: RunOutcome, smoke_junit: Path) -> None:
    outcome, junit = smoke_run, smoke_junit
    assert_measured_the_platform(outcome.run_dir)
    assert outcome.valid and outcome.slo_met
    assert json.loads((outcome.run_dir / MANIFEST).read_text())["valid"] is True
    cases = _cases(junit)
    assert set(cases) == {"run is valid (smoke)", *(v.objective for v in outcome.verdicts)}
    assert all(case.find("failure") is None for case in cases.values())
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(cases)) and suite.get("failures") == "0"


@pytest.mark.parametrize(
    ("figures", "reason"),
    [
        ({"shed_by_reason": {"queue_timeout": 30.0}}, "30 of 1,000 requests refused at the platform's machine-level"),
        ({"platform_process": PlatformProcessHealth(2, 2.5, 1.0, 2.0)}, "event loops stalled 2.5 s of 40"),
        ({"platform_process": PlatformProcessHealth(2, 0.5, 1.0, 12.0)}, "waited 12.0 s of 40 worker-seconds"),
        ({"platform_process": PlatformProcessHealth(2, 0.8, 2.0, 6.4)}, None),  # stress-ng --cpu 2 beside a smoke run
        ({"shed_by_reason": {"login_rate": 300.0}}, None),  # the profile refusing: the rehearsal's outcome
    ],
)
def test_the_platform_side_of_validity(figures: dict[str, Any], reason: str | None) -> None:
    # 1,000 requests over a 20-second run on two workers (40 worker-seconds).
    judged = Health(arrivals=100, requests=1_000, run_s=20.0, **figures).invalid_reason()
    if reason is None:
        assert judged is None
    else:
        assert judged is not None and judged.startswith("machine-bound: ") and reason in judged, judged


def test_a_generator_bound_run_says_so_first_whatever_the_platform() -> None:
    starved = PlatformProcessHealth(2, 20.0, 1.0, 20.0)
    judged = Health(arrivals=100, late=50, requests=1_000, run_s=20.0, platform_process=starved).invalid_reason()
    assert judged is not None and judged.startswith("generator-bound: "), judged


def test_a_run_is_judged_valid_once_for_the_manifest_the_report_the_answer_and_the_console(
    smoke_run: RunOutcome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 22: the end of a run judged its validity for the manifest, again for the report, twice more for the
    answer (its verdict and what binds), and the console re-read answer.json; now one judgement (the run's
    health) serves them all, and the console says the answer it was given."""
    copy = tmp_path / smoke_run.run_dir.name
    shutil.copytree(smoke_run.run_dir, copy)
    judged: list[Path] = []

    def counted(data: Any) -> Health:
        judged.append(data.run_dir)
        return health_module.health(data)

    for module in list(sys.modules.values()):  # every module of the suite that calls health() by its name
        suite = module is not None and module.__name__.startswith("schoolsurge.") and module is not health_module
        if suite and getattr(module, "health", None) is health_module.health:
            monkeypatch.setattr(module, "health", counted)
    outcome = conclude(copy)
    assert judged == [copy], "one judgement of validity"
    out = capsys.readouterr().out
    answer = json.loads((copy / "answer.json").read_text())
    assert outcome.valid and outcome.answer is not None and outcome.answer.lines() == answer["lines"]
    assert out.splitlines()[: len(answer["lines"])] == answer["lines"]
