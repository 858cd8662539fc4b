"""The run directory: the one written contract between what a run writes and what the report reads.

File names, the columns of the engine's `sessions.csv`, the names of the steps recorded in Locust's statistics,
and the helpers that create a directory and keep its manifest. A run writes nothing whose name is not here.

    reports/<UTC timestamp>-<scenario>/
      manifest.json            what ran: scenario, scale, speed, seed, target, versions, start, end, status
      scenario.yaml            a copy of the scenario file
      timeline.json            the test's start (unix time) and the clock mapping
      locust_stats.csv, locust_stats_history.csv, locust_failures.csv, locust_exceptions.csv   Locust's own
      sessions.csv             the engine's per-second metrics (SessionColumn below)
      time_to_login.jsonl      raw time-to-login histograms, one line per second
      target_metrics.prom      the target's /metrics at the end (shed reasons, CPU), when it serves them
      target_metrics.jsonl     the target's /metrics every few seconds during the run, one scrape a line
      capacity.csv             a capacity sweep's steps (CapacityColumn below), sweeps only
      capacity.json            the capacity answer (fit, knee, SLO capacity, national terms), beside the report
      locust.log, platform.log logs (platform.log for the embedded platform)
      report.html              the report

Every file of it is written through schoolsurge/files.py (a fresh temporary file renamed over the name: never
through a link found there) and read only when it is a regular file (a FIFO or a link is skipped with a note).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from schoolsurge.files import atomic_file, read_regular_text, readable, write_bytes_atomically

MANIFEST = "manifest.json"
SCENARIO_COPY = "scenario.yaml"
RUN_SPEC = "run_spec.json"  # the run's resolved options (RunSpec), written once by whoever starts the run
LOCUST_PREFIX = "locust"  # Locust writes locust_stats.csv, locust_stats_history.csv, locust_failures.csv...
# Locust's files are PREFIX + suffix (`locust --csv PREFIX`; a schoolsurge run's prefix is LOCUST_PREFIX).
STATS_SUFFIX = "_stats.csv"
HISTORY_SUFFIX = "_stats_history.csv"
FAILURES_SUFFIX = "_failures.csv"
EXCEPTIONS_SUFFIX = "_exceptions.csv"
LOCUST_CSV_SUFFIXES = (STATS_SUFFIX, HISTORY_SUFFIX, FAILURES_SUFFIX, EXCEPTIONS_SUFFIX)
STATS_CSV = f"{LOCUST_PREFIX}{STATS_SUFFIX}"
HISTORY_CSV = f"{LOCUST_PREFIX}{HISTORY_SUFFIX}"
FAILURES_CSV = f"{LOCUST_PREFIX}{FAILURES_SUFFIX}"
TIMELINE = "timeline.json"
SESSIONS_CSV = "sessions.csv"
HISTOGRAMS = "time_to_login.jsonl"
TARGET_METRICS = "target_metrics.prom"  # the target's Prometheus text at the end of the run, when it has one
TARGET_METRICS_SERIES = "target_metrics.jsonl"  # its samples every few seconds: {"unix", "samples"} per line
CAPACITY_CSV = "capacity.csv"
CAPACITY_JSON = "capacity.json"
LOCUST_LOG = "locust.log"
PLATFORM_LOG = "platform.log"
REPORT = "report.html"

# ---- names in Locust's statistics -------------------------------------------------------------------------

# The whole SSO login as a person feels it (form, credentials, ticket, retries) is recorded as one extra
# statistics entry of this type, beside the HTTP requests it is made of.
LOGIN_FLOW_TYPE = "FLOW"
LOGIN_FLOW_NAME = "login"
# Requests of the attack incident's bots carry this prefix, so they are counted apart from people's.
BOT_STEP_PREFIX = "bot "
AGGREGATED = "Aggregated"  # Locust's total row


# ---- sessions.csv ---------------------------------------------------------------------------------------


class Counter(StrEnum):
    """Per-second counters of sessions.csv. Most are counted in the row of the person's intended arrival (their
    cohort), so a row tells what became of the people due that second; those in EVENT_COUNTERS are counted in
    the second they happen, so they draw the load over time (the retry bubble)."""

    SCHEDULED = "scheduled"
    STARTED = "started"
    LATE = "late"
    DROPPED = "dropped"
    LOST = "lost"  # never started: the Locust worker whose part it was died or left (manifest lost_workers)
    LOGINS_SUCCEEDED = "logins_succeeded"
    LOGINS_FAILED = "logins_failed"
    ABANDONED = "abandoned"  # gave up logging in
    LOGIN_ATTEMPTS = "login_attempts"
    GAVE_UP_PAGE = "gave_up_page"  # logged in, then left when a page kept failing
    # Still logging in when the test ended (waiting for an answer, or to try again): never got in, not served.
    # A request still unanswered then counts as failed (failures_timeout), in the second the test ended.
    UNFINISHED = "unfinished"
    UNFINISHED_PAGE = "unfinished_page"  # logged in, then still waiting on a page when the test ended
    VIRTUAL_CLASSES_OPENED = "virtual_classes_opened"  # teachers who opened one
    VIRTUAL_CLASS_JOINS = "virtual_class_joins"  # pupils let into one
    STEPS_NOT_SUPPORTED = "steps_not_supported"
    LOGIN_RETRIES = "login_retries"  # event time: a login attempt after a failed one
    PAGE_RETRIES = "page_retries"  # event time: a page asked again after it failed
    BOT_LOGIN_ATTEMPTS = "bot_login_attempts"  # event time
    BOT_ATTEMPTS_NOT_SENT = "bot_attempts_not_sent"  # event time
    # Event time, people's HTTP requests only (not the login flow entry, not bots): the load as it happened.
    REQUESTS = "requests"
    FAILURES_503 = "failures_503"  # refused: unavailable, shed
    FAILURES_429 = "failures_429"  # refused: throttled
    FAILURES_TIMEOUT = "failures_timeout"  # no answer in time (client timeout, 504, or none by the test's end)
    FAILURES_5XX = "failures_5xx"  # any other 5xx
    FAILURES_CONNECTION = "failures_connection"  # refused or reset connection, no HTTP answer
    FAILURES_OTHER = "failures_other"  # 4xx other than 429, wrong content
    GENERATOR_SATURATED_S = "generator_saturated_s"  # event time: a Locust process above 90% CPU that second


FAILURE_COUNTERS = (
    Counter.FAILURES_503,
    Counter.FAILURES_429,
    Counter.FAILURES_TIMEOUT,
    Counter.FAILURES_5XX,
    Counter.FAILURES_CONNECTION,
    Counter.FAILURES_OTHER,
)
EVENT_COUNTERS = frozenset(
    {
        Counter.LOGIN_RETRIES,
        Counter.PAGE_RETRIES,
        Counter.BOT_LOGIN_ATTEMPTS,
        Counter.BOT_ATTEMPTS_NOT_SENT,
        Counter.REQUESTS,
        *FAILURE_COUNTERS,
        Counter.GENERATOR_SATURATED_S,
    }
)


class Gauge(StrEnum):
    """Per-second gauges of sessions.csv, sampled once a second by each process and summed."""

    ACTIVE_SESSIONS = "active_sessions"
    IN_VIRTUAL_CLASS = "in_virtual_class"
    WAITING_FOR_AGENT = "waiting_for_agent"
    POOL_SIZE = "pool_size"
    GENERATOR_CPU_PERCENT = "generator_cpu_percent"  # summed over processes: 100 = one core busy


class RunKind(StrEnum):
    """What a run replays (manifest `kind`): picked once where the run starts, read by the report to pick its
    sections. A manifest without `kind` is a morning (older runs), and Locust output without a manifest is plain
    Locust (the report's own kind, never written)."""

    MORNING = "morning"  # the scenario's window, open arrivals on its schedule
    SWEEP = "sweep"  # a capacity sweep: the scenario's mix at constant rates per step
    CLOSED = "closed"  # persona user classes, Locust's closed model (locustfiles/personas.py)


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"  # the whole window was replayed
    INTERRUPTED = "interrupted"  # stopped early (Ctrl-C, SIGTERM, SIGHUP, the web UI's stop); results kept
    # Stopped because a client asked for a URL the loopback guard refuses (manifest `stopped_by` says which;
    # nothing was sent to it); results kept, the run invalid.
    REFUSED = "refused"
    FAILED = "failed"  # Locust exited with an error


TIME_TO_LOGIN_PERCENTILES = (50, 95, 99)
SESSIONS_COLUMNS = (
    "second",
    "clock",
    *Counter,
    *Gauge,
    "start_delay_max_ms",
    *(f"time_to_login_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
    # people's HTTP requests completed in that second (event time), from the merged histograms
    *(f"request_latency_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
)


# ---- capacity.csv (a capacity sweep: one row per load step) ------------------------------------------------


class StepStatus(StrEnum):
    MEASURED = "measured"  # held and measured on its settled part
    STOPPED = "stopped"  # measured, and breached the SLOs by the stop margin: the sweep ended after it
    INCOMPLETE = "incomplete"  # the run stopped (Ctrl-C...) before its settled part was measured whole
    SKIPPED = "skipped"  # never run: the sweep stopped before it


# Rates are in run terms (this run's people and clock); divide by the load fraction (scale x speed,
# capacity.json) for national terms. Latencies are real milliseconds.
CAPACITY_COLUMNS = (
    "step",
    "status",
    "offered_arrivals_per_s",
    "national_arrivals_per_s",  # the same offered rate in national terms
    "start_s",  # run seconds: the step began, its measured (settled) part began, it ended
    "measured_from_s",
    "end_s",
    "arrivals",  # people who started in the measured part
    "logins_per_s",  # logins achieved
    "requests_per_s",  # people's HTTP requests, failed or not
    "successful_requests_per_s",
    *(f"{counter.value}_per_s" for counter in FAILURE_COUNTERS),
    "concurrency",  # mean people in a session (N)
    "in_virtual_class",
    *(f"time_to_login_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
    *(f"request_latency_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
    "error_ratio",
    "late",
    "dropped",
    "gave_up",  # people who gave up logging in or left when pages kept failing
    "generator_cpu_percent",
    "slo_met",  # every objective of the scenario held in the step (true/false)
    "breaches",  # the objectives breached, "; "-separated
)
VERSIONED_PACKAGES = (
    "schoolsurge",
    "locust",
    "gevent",
    "geventhttpclient",
    "fastapi",
    "uvicorn",
    "bcrypt",
    "pandas",
    "matplotlib",
    "pydantic",
)


def new_run_dir(reports_dir: Path, scenario_name: str, now: datetime | None = None) -> Path:
    """Create reports/<UTC timestamp>-<scenario>/; a second run in the same second gets a suffix."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = reports_dir / f"{stamp}-{scenario_name}"
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def update_manifest(run_dir: Path, **fields: Any) -> dict[str, Any]:
    path = run_dir / MANIFEST
    manifest = json.loads(read_regular_text(path)) if readable(path) else {}  # a link there is replaced
    manifest.update(fields)
    write_json(path, manifest)
    return manifest


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest, or {} when it is missing or unreadable (the report notes that)."""
    try:
        manifest = json.loads(read_regular_text(run_dir / MANIFEST))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def start_manifest(run_dir: Path, scenario_path: Path, **fields: Any) -> dict[str, Any]:
    """Record what is about to run (and a copy of the scenario file) before any load is sent."""
    write_bytes_atomically(run_dir / SCENARIO_COPY, Path(scenario_path).read_bytes())
    return update_manifest(
        run_dir,
        scenario_file=str(scenario_path),
        versions=package_versions(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        started_unix=time.time(),
        status=RunStatus.RUNNING,
        **fields,
    )


def finish_manifest(run_dir: Path, status: RunStatus, **fields: Any) -> dict[str, Any]:
    """Record how the run ended."""
    return update_manifest(
        run_dir,
        status=status,
        ended_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ended_unix=time.time(),
        **fields,
    )
