"""The report's tables from Locust's files: per step (requests, failures, percentiles), the top failures with an
example message and when they were seen, the exceptions, and the bots' requests counted apart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from schoolsurge.files import open_regular, readable
from schoolsurge.report.load.run_data import RunData
from schoolsurge.rundir import AGGREGATED, BOT_STEP_PREFIX, EXCEPTIONS_SUFFIX, LOCUST_PREFIX, LOGIN_FLOW_TYPE
from schoolsurge.scenario import seconds_to_clock

STEP_PERCENTILES = (("50%", "p50"), ("90%", "p90"), ("95%", "p95"), ("99%", "p99"), ("99.9%", "p99.9"))
STEP_COLUMNS = ["kind", "type", "step", "requests", "failures", "failed", "req/s", *(c for _, c in STEP_PERCENTILES)]
STEP_COLUMNS.append("max")
TOP_FAILURES = 15
TOP_EXCEPTIONS = 10


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(float("nan"), index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def _ms(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:,.0f}" if value >= 10 else f"{value:,.1f}"


def _rate(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:,.1f}" if value >= 1 else f"{value:.2g}"


PEOPLE = "people"


def step_rows(data: RunData) -> list[list[str]]:
    """People's steps (busiest first), then the per-person login flow entries, then the bots'; a plain Locust run's
    entries are requests."""
    stats = data.stats[data.stats["Name"].astype(str) != AGGREGATED].copy()
    names = stats["Name"].astype(str)
    # a plain Locust run's users are whatever its locustfile made them, not the scenario's people
    stats["kind"] = PEOPLE if not data.plain_locust else "requests"
    stats.loc[stats["Type"] == LOGIN_FLOW_TYPE, "kind"] = "flow (per person)"
    stats.loc[names.str.startswith(BOT_STEP_PREFIX), "kind"] = "bots"
    requests, failures = _number(stats, "Request Count").fillna(0), _number(stats, "Failure Count").fillna(0)
    maximum = _number(stats, "100%").fillna(_number(stats, "Max Response Time"))
    order = stats.assign(_rank=stats["kind"].map({"flow (per person)": 1, "bots": 2}).fillna(0), _n=requests)
    rows = []
    for index in order.sort_values(["_rank", "_n"], ascending=[True, False]).index:
        n, failed = int(requests[index]), int(failures[index])
        rows.append(
            [
                str(stats.at[index, "kind"]),
                str(stats.at[index, "Type"]) if pd.notna(stats.at[index, "Type"]) else "",
                str(stats.at[index, "Name"]),
                f"{n:,}",
                f"{failed:,}",
                f"{failed / n:.1%}" if n else "-",
                _rate(_number(stats, "Requests/s")[index]),
                *(_ms(_number(stats, column)[index]) for column, _ in STEP_PERCENTILES),
                _ms(maximum[index]),
            ]
        )
    return rows


def _clock(data: RunData, stamp: object) -> str:
    """A Locust timestamp (ISO, UTC) on the run's clock: the scenario clock when known, else as written."""
    if not isinstance(stamp, str) or not stamp:
        return "-"
    try:
        unix = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return stamp
    if data.test_start_unix is None:
        return stamp
    run_s = max(unix - data.test_start_unix, 0.0)
    if data.clock_start_s is not None and data.speed:
        return seconds_to_clock(data.clock_start_s + run_s * data.speed)
    return f"{run_s:,.0f} s"


@dataclass(frozen=True)
class FailureRow:
    step: str
    error: str
    occurrences: int
    share: str  # of the step's requests
    first: str
    last: str


def failure_rows(data: RunData) -> list[FailureRow]:
    failures = data.failures
    if failures.empty or not {"Name", "Error", "Occurrences"} <= set(failures.columns):
        return []
    counts = data.stats.groupby(data.stats["Name"].astype(str))["Request Count"].sum()
    top = failures.assign(_n=_number(failures, "Occurrences").fillna(0)).sort_values("_n", ascending=False)
    rows = []
    for record in top.head(TOP_FAILURES).to_dict("records"):
        name, n = str(record["Name"]), int(record["_n"])
        requests = counts.get(name, 0)
        rows.append(
            FailureRow(
                name,
                str(record["Error"]),
                n,
                f"{n / requests:.1%}" if requests else "-",
                _clock(data, record.get("First Seen")),
                _clock(data, record.get("Last Seen")),
            )
        )
    return rows


def exception_rows(data: RunData) -> list[tuple[int, str, str]]:
    """(count, message, traceback) of Locust's exceptions file, most frequent first; [] when absent or empty."""
    prefix = getattr(data, "locust_prefix", LOCUST_PREFIX)
    path = data.run_dir / f"{prefix}{EXCEPTIONS_SUFFIX}"
    if not readable(path, data.notes):
        return []
    try:
        with open_regular(path) as handle:
            frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return []
    if not {"Count", "Message"} <= set(frame.columns) or frame.empty:
        return []
    frame["_n"] = pd.to_numeric(frame["Count"], errors="coerce").fillna(0).astype(int)
    top = frame.sort_values("_n", ascending=False).head(TOP_EXCEPTIONS)
    return [(int(r["_n"]), str(r["Message"]), str(r.get("Traceback", ""))) for r in top.to_dict("records")]


def bot_lines(data: RunData) -> list[tuple[str, str]]:
    """The bots' attempts and what the platform answered them, counted apart from people; [] without bots."""
    stats = data.stats
    bots = stats[stats["Name"].astype(str).str.startswith(BOT_STEP_PREFIX)]
    lines = []
    if data.sessions is not None:
        sent = int(data.sessions["bot_login_attempts"].sum())
        skipped = int(data.sessions["bot_attempts_not_sent"].sum())
        if sent or skipped:
            lines.append(("bots' login attempts sent / not sent (500 in flight)", f"{sent:,} / {skipped:,}"))
    for record in bots.to_dict("records"):
        n, failed = int(record["Request Count"]), int(record["Failure Count"])
        lines.append((f"{record['Name']} (requests / failed)", f"{n:,} / {failed:,}"))
    return lines
