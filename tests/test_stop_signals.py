"""A stop signal mid-run (Ctrl-C, `kill`, a container stop, a closed terminal) keeps what was measured: the run
directory is complete, its report written, its status `interrupted`, and no process of the run is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    SHORT_SESSION_MINUTES,
    SMOKE_SPEED,
    alive,
    cmdline,
    descendants,
    signals_as_from_a_terminal,
    smoke_half_hour,
)

from schoolsurge.child_process import HELD_SIGNALS
from schoolsurge.cli import EXIT_INTERRUPTED

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
STOPPED_SPEED = "30"  # smoke's hour in 2 minutes: the stop signal always comes well before the run's end


def _start_run(arguments: list[str], ignored: tuple[signal.Signals, ...] = ()) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "schoolsurge", *arguments],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signals_as_from_a_terminal(ignored),
    )


def _history_once_answered(reports: Path) -> Path | None:
    """Locust's statistics history of the run in `reports`, once it has recorded answered requests (bounded)."""
    for _ in range(1200):
        found = list(reports.glob("*/locust_stats_history.csv"))
        if found and _answered(found[0]) > 0:
            return found[0]
        time.sleep(0.1)  # polling for the run's first answers, with a bound
    return None


@pytest.mark.parametrize("stop_signal", HELD_SIGNALS, ids=lambda s: s.name)  # Ctrl-C, SIGTERM, SIGHUP
def test_a_stop_signal_keeps_what_was_measured_and_leaves_no_process(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """Ctrl-C, `kill`/`timeout`/a container stop (SIGTERM) and a closed terminal (SIGHUP) alike. The signal comes
    once Locust has recorded its first answered requests, a few seconds into a run of STOPPED_SPEED's 2 minutes."""
    process = _start_run(["run", str(SMOKE), "--speed", STOPPED_SPEED, "--reports-dir", str(tmp_path)])
    history = _history_once_answered(tmp_path)
    assert history is not None, "the run never wrote results"
    children = descendants(process.pid)
    platform_dirs = {Path(arg).parent for pid in children for arg in cmdline(pid) if arg.endswith("/ready")}
    assert children and platform_dirs, "the platform and Locust run below the run process"
    process.send_signal(stop_signal)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, output
    run_dir = history.parent
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and "ended_at" in manifest
    assert (run_dir / "report.html").exists()
    assert len(pd.read_csv(run_dir / "locust_stats.csv")) > 1
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)], "the platform or Locust outlived the run"
    assert not [d for d in platform_dirs if d.exists()], "the platform's temporary folder is gone"


def _answered(history: Path) -> int:
    """Requests answered so far, from Locust's statistics history (0 while it has none)."""
    try:
        totals = pd.read_csv(history)["Total Request Count"]
    except (pd.errors.EmptyDataError, KeyError):  # created, its header not yet written
        return 0
    return int(totals.max()) if len(totals) else 0


def test_a_run_started_with_hangups_ignored_goes_on_when_its_terminal_closes(tmp_path: Path) -> None:
    """`nohup schoolsurge run ...`: the run was started with SIGHUP ignored, and a closed terminal does not stop
    it; it ends as planned (smoke's first half hour in 7.5 s)."""
    scenario = smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES)
    arguments = ["run", str(scenario), "--speed", str(SMOKE_SPEED), "--reports-dir", str(tmp_path / "reports")]
    process = _start_run(arguments, ignored=(signal.SIGHUP,))
    history = _history_once_answered(tmp_path / "reports")
    assert history is not None, "the run never wrote results"
    process.send_signal(signal.SIGHUP)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert json.loads((history.parent / "manifest.json").read_text())["status"] == "completed"
