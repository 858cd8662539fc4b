"""The run directory's file names, and the two helpers every writer uses: a new directory, a JSON file.

Locust's own files are PREFIX + suffix (`locust --csv PREFIX`): a schoolsurge run's prefix is LOCUST_PREFIX; the
report reads any prefix (a plain `locust --csv run1` run)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schoolsurge.files import atomic_file

MANIFEST = "manifest.json"
SCENARIO_COPY = "scenario.yaml"
RUN_SPEC = "run_spec.json"  # the run's resolved options (RunSpec), written once by whoever starts the run
LOCUST_PREFIX = "locust"  # Locust writes locust_stats.csv, locust_stats_history.csv, locust_failures.csv...
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
GROUPS_CSV = "groups.csv"  # who got in, per scenario group and cohort second (groups.py)
HISTOGRAMS = "time_to_login.jsonl"
CLIENT_STEPS = "client_steps.json"  # the client's skipped steps, crashes and failed logins by class (client_steps.py)
TARGET_METRICS = "target_metrics.prom"  # the target's Prometheus text at the end of the run, when it has one
TARGET_METRICS_SERIES = "target_metrics.jsonl"  # its samples every few seconds: {"unix", "samples"} per line
CAPACITY_CSV = "capacity.csv"
CAPACITY_JSON = "capacity.json"
ANSWER_JSON = "answer.json"  # the run's answer (report/outcome/answer.py), beside the report
LOCUST_LOG = "locust.log"
PLATFORM_LOG = "platform.log"
REPORT = "report.html"


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


def write_json(path: Path, data: dict[str, Any]) -> None:
    """A JSON file as the run directory keeps them: indented, keys sorted, written whole or not at all."""
    with atomic_file(path) as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
