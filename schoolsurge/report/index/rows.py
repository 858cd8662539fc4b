"""The index's rows: every run directory under reports/ (newest first) with its summary, kept in
reports/.index-cache.json keyed by the size and time of the files it was computed from, and the comparisons
written there."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from schoolsurge.files import atomic_file
from schoolsurge.report.compare.runs import COMPARE_HTML, COMPARE_JSON
from schoolsurge.report.index.summary import fingerprint, summarize_run
from schoolsurge.report.load.json_fields import read_json_object
from schoolsurge.report.load.loader import is_run_dir
from schoolsurge.rundir import REPORT

CACHE = ".index-cache.json"
CACHE_VERSION = 2  # 2: rows carry the run's answer
log = logging.getLogger(__name__)


@dataclass
class IndexRow:
    name: str
    summary: dict[str, Any]
    report: str | None = None  # relative link, when report.html exists
    comparisons: list[tuple[str, str]] = field(default_factory=list)  # (link, title)

    @property
    def sort_key(self) -> float:
        return float(self.summary.get("started_unix") or 0.0)


@dataclass
class ComparisonEntry:
    link: str
    folder: str
    written: float
    baseline: str | None
    runs: list[str]


def index_rows(reports_dir: Path) -> tuple[list[IndexRow], list[ComparisonEntry]]:
    """The run directories under reports_dir, newest first, and the comparisons found there, newest first."""
    cache = _read_cache(reports_dir / CACHE)
    fresh: dict[str, Any] = {}
    rows = []
    comparisons = []
    for child in sorted(reports_dir.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        if (child / COMPARE_HTML).exists():
            comparisons.append(_comparison_entry(child))
        if not is_run_dir(child):
            continue
        fingerprint_now = fingerprint(child)
        cached = cache.get(child.name)
        if isinstance(cached, dict) and cached.get("fingerprint") == fingerprint_now and "summary" in cached:
            summary = cached["summary"]
        else:
            summary = summarize_run(child)
        fresh[child.name] = {"fingerprint": fingerprint_now, "summary": summary}
        report = child / REPORT
        rows.append(IndexRow(child.name, summary, link(child.name, REPORT) if report.exists() else None))
    if (reports_dir / COMPARE_HTML).exists():
        comparisons.append(_comparison_entry(reports_dir, top=True))
    if fresh != cache:
        _write_cache(reports_dir / CACHE, fresh)
    rows.sort(key=lambda row: (row.sort_key, row.name), reverse=True)
    comparisons.sort(key=lambda entry: (entry.written, entry.folder), reverse=True)
    by_name = {row.name: row for row in rows}
    for entry in comparisons:
        for name in entry.runs:
            if name in by_name:
                by_name[name].comparisons.append((entry.link, entry.folder))
    return rows, comparisons


def _comparison_entry(folder: Path, top: bool = False) -> ComparisonEntry:
    data = read_json_object(folder / COMPARE_JSON)
    runs = [str(r.get("name")) for r in data.get("runs") or [] if isinstance(r, dict) and r.get("name")]
    try:
        written = (folder / COMPARE_HTML).stat().st_mtime
    except OSError:
        written = 0.0
    baseline = data.get("baseline")
    return ComparisonEntry(
        link=COMPARE_HTML if top else link(folder.name, COMPARE_HTML),
        folder="." if top else folder.name,
        written=written,
        baseline=str(baseline) if baseline else None,
        runs=runs,
    )


def link(folder: str, name: str) -> str:
    return f"{quote(folder)}/{quote(name)}"


def _read_cache(path: Path) -> dict[str, Any]:
    cache = read_json_object(path)
    runs = cache.get("runs")
    return runs if cache.get("version") == CACHE_VERSION and isinstance(runs, dict) else {}


def _write_cache(path: Path, runs: dict[str, Any]) -> None:
    try:
        with atomic_file(path) as handle:
            json.dump({"version": CACHE_VERSION, "runs": runs}, handle, separators=(",", ":"))
    except (OSError, TypeError, ValueError) as error:  # a cache that cannot be kept only costs time
        log.warning("index cache not written in %s: %s", path, error)
