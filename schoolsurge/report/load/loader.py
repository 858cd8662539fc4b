"""Read a run directory into tables (RunData), with one-line errors for what is missing or corrupt.

    data = load_run(Path("reports/20210406T063000Z-first-day-2021"))   # a schoolsurge run, or any `locust --csv`

The manifest picks the report's kind (report/kinds.py) once, here.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from hdrh.histogram import HdrHistogram

from schoolsurge.errors import ReportError, ScenarioError
from schoolsurge.files import irregular_kind, readable, skipped_note
from schoolsurge.report.kinds import pick_kind
from schoolsurge.report.load.json_fields import number_or_none, read_json_object
from schoolsurge.report.load.locust_csv import Table, find_locust_files, iter_table, read_table
from schoolsurge.report.load.run_data import HistoryDetail, RunData
from schoolsurge.rundir import (
    CLIENT_STEPS,
    GROUP_COUNTERS,
    GROUPS_CSV,
    HISTOGRAMS,
    MANIFEST,
    SCENARIO_COPY,
    SESSIONS_CSV,
    STATS_CSV,
    STATS_SUFFIX,
    TIMELINE,
    ClientSteps,
    Counter,
    Gauge,
    Manifest,
    iter_histograms,
    new_histogram,
    read_client_steps,
    read_histograms,
    salvage_manifest,
)
from schoolsurge.scenario import Scenario, load_scenario

PERCENTILE_COLUMNS = ("50%", "95%", "99%")
STATS_COLUMNS = {"Type", "Name", "Request Count", "Failure Count", "Requests/s", *PERCENTILE_COLUMNS}
HISTORY_COLUMNS = {
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    "Total Request Count",
    "Total Failure Count",
    *PERCENTILE_COLUMNS,
}
STATS_TABLE = Table(
    "Locust request statistics",
    frozenset(STATS_COLUMNS),
    filled=frozenset({"Request Count", "Failure Count"}),
    min_rows=1,  # Locust always writes its Aggregated row
)
HISTORY_TABLE = Table(
    "Locust statistics history",
    frozenset(HISTORY_COLUMNS),
    filled=frozenset({"Timestamp", "User Count", "Total Request Count", "Total Failure Count"}),
)
FAILURES_TABLE = Table(
    "Locust failures",
    frozenset({"Name", "Error", "Occurrences"}),
    text=frozenset({"Method", "Name", "Error", "First Seen", "Last Seen"}),
    filled=frozenset({"Occurrences"}),
)
SESSIONS_TABLE = Table(
    "session metrics", frozenset({"second"}), text=frozenset({"clock"}), filled=frozenset({"second"})
)
GROUPS_TABLE = Table(
    "people per group",
    frozenset({"second", "group", *GROUP_COUNTERS}),
    text=frozenset({"group"}),
    filled=frozenset({"second", *GROUP_COUNTERS}),
)
PLAIN_LOCUST_NOTE = (
    "This is a plain Locust run: open arrivals, time to log in from the intended arrival, sessions and the served "
    "share need the schoolsurge engine: `locust -f locustfiles/surge.py` or `schoolsurge run`. Charts show run "
    "seconds; without a scenario no SLO is judged."
)


def _read_failures(path: Path, notes: list[str]) -> pd.DataFrame:
    """Locust's failures table; an empty or damaged one is noted, not fatal (it only feeds one table)."""
    if not readable(path, notes):
        return pd.DataFrame()
    if not path.stat().st_size:
        notes.append(f"{path.name} is empty; failures are not listed by error")
        return pd.DataFrame()
    try:
        return read_table(path, FAILURES_TABLE)
    except ReportError as error:
        notes.append(f"failures are not listed by error: {error}")
    return pd.DataFrame()


def _plain_run_times(manifest: Manifest, history: pd.DataFrame) -> Manifest:
    """A plain Locust run has no manifest: its start and end are its history's first and last rows (Locust writes
    one at the test's start, then one a second)."""
    started, ended = float(history["Timestamp"].min()), float(history["Timestamp"].max())
    return manifest.model_copy(
        update={
            "started_unix": started,
            "ended_unix": ended,
            "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "ended_at": datetime.fromtimestamp(ended, UTC).isoformat(timespec="seconds"),
        }
    )


def load_run(run_dir: Path, *, summary: bool = False) -> RunData:
    """Load everything a report needs from a run directory: a schoolsurge run's, or any Locust run's CSV files
    (`locust --csv PREFIX`, with or without --csv-full-history), whose report draws what it can.

    `summary=True` (the index) loads only what the verdicts and the served share need, the large files a block or
    a line at a time: of Locust's history the rows the verdicts read, of the histograms and sessions.csv those of
    the SLO window merged, no failures table; its memory does not grow with the files. A file that is not a
    regular file (a FIFO, a link) is skipped with a note, never read."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a run directory; pass one of the folders under reports/")
    files = find_locust_files(run_dir)
    notes: list[str] = []
    manifest = salvage_manifest(run_dir, notes)
    engine_files = has_engine_files(run_dir)
    plain = not manifest.present and not engine_files
    if plain:
        notes.append(PLAIN_LOCUST_NOTE)
    elif not manifest.present:
        notes.append("manifest.json is missing or unreadable; run details are unknown")
    stats = read_table(files.stats, STATS_TABLE)
    has_history = readable(files.history, notes)
    if not has_history and irregular_kind(files.history) is None:
        notes.append(f"no {files.history.name}: nothing is drawn over time (Locust writes it with --csv)")
    data = RunData(
        run_dir,
        manifest,
        stats,
        _no_history(),
        pd.DataFrame() if summary else _read_failures(files.failures, notes),
        _scenario_copy(run_dir, plain, notes),
        notes=notes,
        locust_prefix=files.prefix,
        plain_locust=plain,
        kind=pick_kind(manifest, engine_files),
    )
    if has_history and not summary:
        data.history = read_table(files.history, HISTORY_TABLE)
        if data.history_detail == HistoryDetail.TOTAL:
            notes.append(
                f"{files.history.name} has only Locust's Aggregated rows (the run had no --csv-full-history): "
                "requests per second by name and the login over time are missing from the charts"
            )
    if plain and len(data.history):
        data.manifest = _plain_run_times(data.manifest, data.history)
    timeline = read_json_object(run_dir / TIMELINE, notes)
    started = number_or_none(timeline.get("test_start_unix"))
    if started is None:
        if "test_start_unix" in timeline:
            notes.append(f"{TIMELINE}: test_start_unix is not a number; the clock starts at Locust's first row")
        if not summary:
            started = float(data.history["Timestamp"].min()) if len(data.history) else None
        elif has_history and data.scenario is not None:
            started = _earliest_row(files.history)
    data.test_start_unix = started
    scenario = data.scenario
    if scenario is not None and started is not None:
        speed = number_or_none(timeline.get("speed")) or manifest.speed
        if speed is None or speed <= 0:
            notes.append(f"speed unknown or not a positive number; the scenario's default {scenario.run.speed:g}x")
            speed = scenario.run.speed
        data.speed = speed
        data.clock_start_s = scenario.window.start_s
        if has_history and summary:
            data.history = _rows_for_verdicts(files.history, started, data.slo_seconds())
        elapsed = data.history["Timestamp"] - float(started)
        data.history["clock_s"] = data.clock_start_s + elapsed * data.speed
    else:
        history = data.history
        history["clock_s"] = history["Timestamp"] - (history["Timestamp"].min() if len(history) else 0)
        if not plain:  # a plain run's note says so already
            notes.append("scenario clock unknown; charts show run seconds")
    _load_sessions(data, whole=not summary)
    if not summary:
        _load_groups(data)
    _load_histograms(data, whole=not summary)
    data.client_steps = _client_steps(run_dir, notes)
    return data


def is_run_dir(path: Path) -> bool:
    """A folder with a manifest or Locust's statistics (`locust --csv PREFIX` writes PREFIX_stats.csv)."""
    return (path / MANIFEST).exists() or (path / STATS_CSV).exists() or any(path.glob(f"*{STATS_SUFFIX}"))


def has_engine_files(run_dir: Path) -> bool:
    """Any of the files only the schoolsurge engine writes (a run without them, nor a manifest, is plain Locust)."""
    return any((run_dir / name).exists() for name in (SESSIONS_CSV, HISTOGRAMS, TIMELINE))


def _no_history() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=float) for column in HISTORY_TABLE.required})


def _scenario_copy(run_dir: Path, plain: bool, notes: list[str]) -> Scenario | None:
    """The run's copy of its scenario (a plain Locust run may have none); None, noted, when it is unusable."""
    copy = run_dir / SCENARIO_COPY
    kind = irregular_kind(copy)
    if kind is not None:
        notes.append(f"{skipped_note(copy, kind)}; SLOs are not judged")
        return None
    if plain and not copy.exists():
        return None
    try:
        return load_scenario(copy)
    except ScenarioError as error:
        notes.append(f"scenario copy unusable ({error}); SLOs are not judged")
    return None


def _earliest_row(path: Path) -> float | None:
    """The earliest Timestamp of Locust's history, read a block at a time."""
    earliest = [float(block["Timestamp"].min()) for block in iter_table(path, HISTORY_TABLE) if len(block)]
    return min(earliest) if earliest else None


def _rows_for_verdicts(path: Path, start_unix: float, window_s: tuple[float, float] | None) -> pd.DataFrame:
    """Of Locust's history, read a block at a time, the rows RunData.requests_in reads for the window (run
    seconds from start_unix), from which it gives the same totals as from the whole file: per request name, its
    last row before each end of the window; the latest request row (did the run end inside the window?); and
    the file's first row (a history without any request row is still a history)."""
    first: pd.DataFrame | None = None
    kept: pd.DataFrame | None = None
    for block in iter_table(path, HISTORY_TABLE):
        if first is None and len(block):
            first = block.iloc[:1]
        rows = block[RunData.is_request_row(block)]
        rows = rows if kept is None else pd.concat([kept, rows])
        if len(rows):
            stamps = rows["Timestamp"] - start_unix
            picked = [rows[stamps < until].groupby("Name").tail(1) for until in window_s or ()]
            kept = pd.concat([*picked, rows.loc[[stamps.idxmax()]]])
            kept = kept[~kept.index.duplicated()].sort_index()
    found = [frame for frame in (first, kept) if frame is not None]
    if not found:
        return _no_history()
    rows = pd.concat(found)
    return rows[~rows.index.duplicated()].sort_index()


def _client_steps(run_dir: Path, notes: list[str]) -> ClientSteps:
    """The client's skipped steps, crashes and failed logins (client_steps.json); none, noted, when unusable."""
    if not readable(run_dir / CLIENT_STEPS, notes):
        return ClientSteps()
    try:
        return read_client_steps(run_dir)
    except (OSError, ValueError) as error:
        notes.append(f"{CLIENT_STEPS} unusable ({error}); the client's skipped steps and crashes are not listed")
    return ClientSteps()


def _load_sessions(data: RunData, whole: bool) -> None:
    """The engine's per-second session metrics, when the run has them: every second's, or (not `whole`) only what
    served_share reads of them."""
    path = data.run_dir / SESSIONS_CSV
    if not readable(path, data.notes):
        return
    if not whole:
        data.sessions, data.sessions_unrecorded = _window_sessions(path, data.slo_seconds())
        return
    data.sessions = read_table(path, SESSIONS_TABLE)
    missing = [name for name in (*Counter, *Gauge) if name not in data.sessions.columns]
    data.sessions_unrecorded = frozenset(missing)
    if missing:  # a run of an earlier version: what it did not count shows as zero
        data.notes.append(f"{SESSIONS_CSV} has no {', '.join(missing)} (an earlier version); shown as 0")
        for name in missing:
            data.sessions[name] = 0
    if data.speed is not None and data.clock_start_s is not None:
        data.sessions["clock_s"] = data.clock_start_s + data.sessions["second"] * data.speed


def _load_groups(data: RunData) -> None:
    """Who got in per scenario group (groups.csv), when the run recorded it (a run of an earlier version did not)."""
    path = data.run_dir / GROUPS_CSV
    if readable(path, data.notes):
        data.groups = read_table(path, GROUPS_TABLE)


def _window_sessions(path: Path, window_s: tuple[float, float] | None) -> tuple[pd.DataFrame, frozenset[str]]:
    """Of sessions.csv, read a block at a time, what served_share reads: the counters of the window's seconds
    (run seconds; None: all) summed into one row, under a second of the window (no row when it has none); a
    counter the file has not (an earlier version) is 0, and returned as not recorded."""
    start, end = window_s or (0.0, math.inf)
    total = pd.Series(0.0, index=[name.value for name in Counter])
    inside: float | None = None
    unrecorded: frozenset[str] = frozenset()
    for block in iter_table(path, SESSIONS_TABLE):
        unrecorded = frozenset(name for name in total.index if name not in block.columns)
        rows = block[(block["second"] >= start) & (block["second"] < end)]
        if len(rows):
            total = total.add(rows[[name for name in total.index if name in rows.columns]].sum(), fill_value=0)
            inside = float(rows["second"].iloc[0]) if inside is None else inside
    if inside is None:
        return pd.DataFrame(columns=["second", *total.index], dtype=float), unrecorded
    return pd.DataFrame([{"second": inside, **total.to_dict()}]), unrecorded


def _load_histograms(data: RunData, whole: bool) -> None:
    """The engine's time-to-login histograms, when the run has them: every second's, or (not `whole`) only what
    RunData.totals reads of them."""
    path = data.run_dir / HISTOGRAMS
    if not readable(path, data.notes):
        return
    try:
        data.histograms = read_histograms(path) if whole else _window_histograms(path, data.slo_seconds())
    except ValueError as error:
        raise ReportError(f"{path}: {error}; rerun the scenario to get it again") from None
    except OSError as error:
        raise ReportError(f"{path}: cannot read it ({error.strerror or error})") from None


def _window_histograms(path: Path, window_s: tuple[float, float] | None) -> dict[int, HdrHistogram]:
    """Of the time-to-login histograms, read a line at a time, what RunData.totals reads: those of the window
    (run seconds; None: all) merged into one, kept under a second of the window (when the window has none, an
    empty one under a second outside it), from which it gives what the whole file gives."""
    start, end = window_s or (0.0, math.inf)
    total = new_histogram()
    inside: int | None = None
    outside: int | None = None
    for second, histogram in iter_histograms(path):
        if start <= second < end:
            total.add(histogram)
            inside = second if inside is None else inside
        else:
            outside = second
    key = inside if inside is not None else outside
    return {} if key is None else {key: total}
