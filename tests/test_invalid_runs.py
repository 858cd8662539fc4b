"""Real runs that measured the machine, not the platform: a run whose generator could not keep the clock, or whose
platform the machine starved, is invalid (manifest, report, console, exit 4); a profile chosen outside the
scenario wins."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    SHORT_SESSION_MINUTES,
    assert_measured_the_platform,
    cmdline,
    descendants,
    junit_cases,
    smoke_half_hour,
)

from schoolsurge.cli import EXIT_INVALID_RUN, main
from schoolsurge.rundir import MANIFEST, REPORT


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
    validity = junit_cases(junit)["run is valid (smoke)"]
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
        scenario = smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES)
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
