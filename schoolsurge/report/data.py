"""Read a run directory into tables, with one-line errors for what is missing or corrupt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from schoolsurge.rundir import FAILURES_CSV, HISTORY_CSV, MANIFEST, STATS_CSV, TIMELINE
from schoolsurge.scenario import Scenario, ScenarioError, load_scenario, seconds_to_clock
from schoolsurge.slo import RunTotals
from schoolsurge.steps import LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE

AGGREGATED = "Aggregated"
PERCENTILE_COLUMNS = ("50%", "95%", "99%")
STATS_COLUMNS = {"Type", "Name", "Request Count", "Failure Count", "Requests/s", *PERCENTILE_COLUMNS}
HISTORY_COLUMNS = {"Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", *PERCENTILE_COLUMNS}


class ReportError(ValueError):
    """A run directory that cannot be reported on; the message says what is wrong and what to do."""


@dataclass
class RunData:
    run_dir: Path
    manifest: dict[str, Any]
    stats: pd.DataFrame
    history: pd.DataFrame
    failures: pd.DataFrame
    scenario: Scenario | None
    clock_start_s: float | None = None
    speed: float | None = None
    notes: list[str] = field(default_factory=list)

    def is_request_row(self, frame: pd.DataFrame) -> pd.Series:
        """Rows that count real HTTP requests (not the login FLOW summary, not the aggregate)."""
        return (frame["Type"] != LOGIN_FLOW_TYPE) & (frame["Name"] != AGGREGATED)

    def is_login_row(self, frame: pd.DataFrame) -> pd.Series:
        return (frame["Type"] == LOGIN_FLOW_TYPE) & (frame["Name"] == LOGIN_FLOW_NAME)

    def totals(self) -> RunTotals:
        requests = self.stats[self.is_request_row(self.stats)]
        login = self.stats[self.is_login_row(self.stats)]
        p95 = float(login["95%"].iloc[0]) if len(login) and login["Request Count"].iloc[0] > 0 else None
        return RunTotals(
            requests=int(requests["Request Count"].sum()),
            failures=int(requests["Failure Count"].sum()),
            logins=int(login["Request Count"].sum()),
            login_p95_ms=p95,
        )

    def clock_label(self, clock_s: float) -> str:
        return seconds_to_clock(clock_s)


def _read_csv(path: Path, required: set[str], what: str) -> pd.DataFrame:
    if not path.exists():
        raise ReportError(f"{path}: missing; the run wrote no {what} (was it stopped before it started?)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ReportError(f"{path}: corrupt {what} ({reason}); rerun the scenario to get it again") from None
    missing = required - set(frame.columns)
    if missing:
        raise ReportError(
            f"{path}: not a Locust {what} file (missing columns {', '.join(sorted(missing))}); "
            "rerun the scenario to get it again"
        )
    for column in PERCENTILE_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def load_run(run_dir: Path) -> RunData:
    """Load everything a report needs from a run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a run directory; pass one of the folders under reports/")
    notes: list[str] = []
    manifest = _read_json(run_dir / MANIFEST)
    if not manifest:
        notes.append(f"{MANIFEST} is missing or unreadable; run details are unknown")
    stats = _read_csv(run_dir / STATS_CSV, STATS_COLUMNS, "request statistics")
    history = _read_csv(run_dir / HISTORY_CSV, HISTORY_COLUMNS, "statistics history")
    failures_path = run_dir / FAILURES_CSV
    failures = pd.read_csv(failures_path) if failures_path.exists() else pd.DataFrame()
    scenario = None
    try:
        scenario = load_scenario(run_dir / "scenario.yaml")
    except ScenarioError as error:
        notes.append(f"scenario copy unusable ({error}); SLOs are not judged")
    data = RunData(run_dir, manifest, stats, history, failures, scenario, notes=notes)
    timeline = _read_json(run_dir / TIMELINE)
    started = timeline.get("test_start_unix") or (history["Timestamp"].min() if len(history) else None)
    if scenario is not None and started is not None:
        data.speed = float(timeline.get("speed") or manifest.get("speed") or scenario.run.speed)
        data.clock_start_s = scenario.window.start_s
        elapsed = history["Timestamp"] - float(started)
        history["clock_s"] = data.clock_start_s + elapsed * data.speed
    else:
        history["clock_s"] = history["Timestamp"] - (history["Timestamp"].min() if len(history) else 0)
        notes.append("scenario clock unknown; charts show run seconds")
    return data
