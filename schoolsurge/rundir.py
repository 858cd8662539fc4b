"""Run directories: where one run's raw results, manifest and report live."""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

MANIFEST = "manifest.json"
LOCUST_PREFIX = "locust"  # Locust writes locust_stats.csv, locust_stats_history.csv, locust_failures.csv...
STATS_CSV = f"{LOCUST_PREFIX}_stats.csv"
HISTORY_CSV = f"{LOCUST_PREFIX}_stats_history.csv"
FAILURES_CSV = f"{LOCUST_PREFIX}_failures.csv"
TIMELINE = "timeline.json"
SESSIONS_CSV = "sessions.csv"
HISTOGRAMS = "time_to_login.jsonl"
REPORT = "report.html"
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


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[TextIO]:
    """A text file written beside `path` and renamed over it once complete, so a reader (or a crash) never
    sees half a file; on error the previous version stays."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        yield handle
    os.replace(tmp, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_file(path) as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def update_manifest(run_dir: Path, **fields: Any) -> dict[str, Any]:
    path = run_dir / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    manifest.update(fields)
    write_json(path, manifest)
    return manifest


def start_manifest(run_dir: Path, scenario_path: Path, **fields: Any) -> dict[str, Any]:
    """Record what is about to run (and a copy of the scenario file) before any load is sent."""
    shutil.copyfile(scenario_path, run_dir / "scenario.yaml")
    return update_manifest(
        run_dir,
        scenario_file=str(scenario_path),
        versions=package_versions(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        started_unix=time.time(),
        status="running",
        **fields,
    )
