"""reports/index.html: every run directory under reports/, newest first, and the comparisons written there.

    write_index(Path("reports"))   # -> reports/index.html

A row per run directory (a folder with a manifest.json or Locust's CSV files): scenario, start, status, kind (run,
sweep, plain locust), platform profile, scale and speed, SLO verdicts (a sweep: its steps that met them and its
SLO capacity), the share of people served, and links to its report.html and to the compare.html files that
include it. A folder that cannot be read is listed as "unreadable: <reason>", never fatal.

It is written after every run, report and comparison, so it must be fast and never rebuild a report. What a
row needs beyond the manifest (the verdicts and served share, which take the run's histograms and statistics) is
computed once per run and kept in reports/.index-cache.json, keyed by the size and time of the files it was
computed from: a run is read again only when one of them changes. Nothing is written into the run directories.

A folder beside the others may be anything: of a run it reads only what the row needs, its large files a block
or a line at a time (`load_run(summary=True)`: its memory does not grow with them), and a file that is not a
regular file (a FIFO would block it forever, a link lead anywhere) is skipped, with a note in the row. Several
processes may write the index at once (schoolsurge/files.py: each its own temporary file; the last one wins).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from schoolsurge.errors import ReportError
from schoolsurge.files import atomic_file, irregular_kind, read_regular_text, readable, skipped_note
from schoolsurge.report.compare import COMPARE_HTML, COMPARE_JSON, is_run_dir, run_kind, run_profile
from schoolsurge.report.data import number_or_none
from schoolsurge.rundir import (
    CAPACITY_CSV,
    CAPACITY_JSON,
    HISTOGRAMS,
    MANIFEST,
    REPORT,
    SCENARIO_COPY,
    SESSIONS_CSV,
    TIMELINE,
    Manifest,
    StepStatus,
    salvage_manifest,
)

INDEX = "index.html"
CACHE = ".index-cache.json"
CACHE_VERSION = 1
# The files a row is computed from, with Locust's CSV files whatever their prefix: a change in any of them (size
# or time) recomputes the row.
SOURCE_FILES = frozenset({MANIFEST, SESSIONS_CSV, HISTOGRAMS, SCENARIO_COPY, TIMELINE, CAPACITY_JSON, CAPACITY_CSV})
MEASURED = (StepStatus.MEASURED.value, StepStatus.STOPPED.value)
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


def write_index(reports_dir: Path) -> Path:
    """Write reports_dir/index.html and return its path."""
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        raise ReportError(f"{reports_dir}: no such reports directory; run a scenario first or pass --reports-dir")
    rows, comparisons = index_rows(reports_dir)
    page = render_index(reports_dir, rows, comparisons)
    path = reports_dir / INDEX
    with atomic_file(path) as handle:
        handle.write(page)
    return path


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
        fingerprint = _fingerprint(child)
        cached = cache.get(child.name)
        if isinstance(cached, dict) and cached.get("fingerprint") == fingerprint and "summary" in cached:
            summary = cached["summary"]
        else:
            summary = summarize_run(child)
        fresh[child.name] = {"fingerprint": fingerprint, "summary": summary}
        report = child / REPORT
        rows.append(IndexRow(child.name, summary, _link(child.name, REPORT) if report.exists() else None))
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


# ---- one run's summary -------------------------------------------------------------------------------------


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """What the index shows of a run: its manifest's facts, verdicts (a sweep: its steps and SLO capacity) and
    served share; `unreadable` says why a run could not be read. Never raises."""
    notes = _skipped(run_dir)
    manifest = salvage_manifest(run_dir, notes)
    if readable(run_dir / MANIFEST) and not manifest.present:
        notes.append(f"{MANIFEST} unreadable")
    kind = run_kind(run_dir, manifest)
    summary: dict[str, Any] = {
        "kind": kind,
        "scenario": manifest.scenario or "?",
        "status": str(manifest.status or "unknown"),
        "profile": run_profile(manifest),
        "scale": manifest.scale,
        "speed": manifest.speed,
        "started_at": manifest.started_at or "",
        "started_unix": _started_unix(run_dir, manifest),
        "verdicts": None,
        "sweep": None,
        "served": None,
        "unreadable": None,
        "notes": notes,
    }
    try:
        if kind == "sweep":
            summary["sweep"] = _sweep_summary(run_dir)
        else:
            _run_summary(run_dir, summary)
    except ReportError as error:
        summary["unreadable"] = str(error).replace(f"{run_dir}/", "")
    except Exception as error:  # a broken folder must not break the index of the others
        log.warning("index: cannot read %s", run_dir, exc_info=True)
        summary["unreadable"] = f"{type(error).__name__}: {error}"
    return summary


def _run_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    from schoolsurge.report.data import load_run
    from schoolsurge.report.outcome import served_share
    from schoolsurge.report.verdicts import judge_run

    data = load_run(run_dir, summary=True)
    if data.scenario is not None:
        summary["verdicts"] = [
            {"objective": v.objective, "measured": v.measured, "met": v.met} for v in judge_run(data)
        ]
        if summary["scenario"] == "?":
            summary["scenario"] = data.scenario.name
    else:
        summary["notes"].append("scenario unknown: not judged")
    served = served_share(data)
    if served is not None:
        summary["served"] = {
            "share": served.share if served.tried else None,
            "served": served.served,
            "tried": served.tried,
        }


def _sweep_summary(run_dir: Path) -> dict[str, Any]:
    """Steps measured and those that met every SLO, and the SLO capacity: capacity.json, else capacity.csv."""
    capacity = _read_json(run_dir / CAPACITY_JSON)
    steps: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    if capacity:
        steps = [s for s in capacity.get("steps") or [] if isinstance(s, dict)]
        slo = capacity.get("slo_capacity")
        if isinstance(slo, dict):
            out["slo_requests_per_s"] = number_or_none(slo.get("successful_requests_per_s"))
            out["slo_requests_per_s_national"] = number_or_none(slo.get("successful_requests_per_s_national"))
            out["beyond_measured"] = bool(slo.get("beyond_measured"))
            out["limiting_objective"] = slo.get("limiting_objective")
    elif (run_dir / CAPACITY_CSV).exists():
        from schoolsurge.report.capacity_steps import load_capacity_steps

        frame = load_capacity_steps(run_dir)
        steps = frame.to_dict("records") if frame is not None else []
    measured = [s for s in steps if s.get("status") in MEASURED]
    out["steps_measured"] = len(measured)
    out["steps_met"] = sum(1 for s in measured if s.get("slo_met") is True or s.get("slo_met") == "true")
    out["steps"] = len(steps)
    return out


def _started_unix(run_dir: Path, manifest: Manifest) -> float:
    """When the run started: the manifest, else the folder's UTC timestamp, else the folder's time."""
    if manifest.started_unix is not None:
        return manifest.started_unix
    for text, form in ((manifest.started_at, None), (run_dir.name[:16], "%Y%m%dT%H%M%SZ")):
        if not isinstance(text, str) or not text:
            continue
        try:
            moment = datetime.strptime(text, form) if form else datetime.fromisoformat(text)
        except ValueError:
            continue
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    try:
        return run_dir.stat().st_mtime
    except OSError:
        return 0.0


def _fingerprint(run_dir: Path) -> list[Any]:
    """Name, size and time of each file a row is computed from (Locust's CSV files whatever their prefix); a link
    or a FIFO among them counts by its own size and time (it is skipped, not read)."""
    stamps: list[Any] = []
    with os.scandir(run_dir) as entries:
        for entry in entries:
            if _is_source(entry.name):
                status = entry.stat(follow_symlinks=False)
                stamps.append([entry.name, status.st_size, status.st_mtime_ns])
    return sorted(stamps)


def _skipped(run_dir: Path) -> list[str]:
    """A note for each file a row is computed from that is not a regular file (a FIFO, a link...): never read."""
    notes = []
    with os.scandir(run_dir) as entries:
        for entry in entries:
            kind = irregular_kind(Path(entry.path)) if _is_source(entry.name) else None
            if kind is not None:
                notes.append(skipped_note(Path(entry.path), kind))
    return sorted(notes)


def _is_source(name: str) -> bool:
    return name in SOURCE_FILES or (name.endswith(".csv") and not name.startswith("."))


# ---- comparisons -------------------------------------------------------------------------------------------


def _comparison_entry(folder: Path, top: bool = False) -> ComparisonEntry:
    data = _read_json(folder / COMPARE_JSON)
    runs = [str(r.get("name")) for r in data.get("runs") or [] if isinstance(r, dict) and r.get("name")]
    try:
        written = (folder / COMPARE_HTML).stat().st_mtime
    except OSError:
        written = 0.0
    baseline = data.get("baseline")
    return ComparisonEntry(
        link=COMPARE_HTML if top else _link(folder.name, COMPARE_HTML),
        folder="." if top else folder.name,
        written=written,
        baseline=str(baseline) if baseline else None,
        runs=runs,
    )


# ---- files -------------------------------------------------------------------------------------------------


def _link(folder: str, name: str) -> str:
    return f"{quote(folder)}/{quote(name)}"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_regular_text(path))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_cache(path: Path) -> dict[str, Any]:
    cache = _read_json(path)
    runs = cache.get("runs")
    return runs if cache.get("version") == CACHE_VERSION and isinstance(runs, dict) else {}


def _write_cache(path: Path, runs: dict[str, Any]) -> None:
    try:
        with atomic_file(path) as handle:
            json.dump({"version": CACHE_VERSION, "runs": runs}, handle, separators=(",", ":"))
    except (OSError, TypeError, ValueError) as error:  # a cache that cannot be kept only costs time
        log.warning("index cache not written in %s: %s", path, error)


# ---- the page ----------------------------------------------------------------------------------------------


def _scale_speed(summary: dict[str, Any]) -> str:
    scale, speed = summary.get("scale"), summary.get("speed")
    if not scale or not speed:
        return "?"
    return f"{scale:g} × {speed:g}x = {scale * speed:.3g}"


def _verdicts_cell(summary: dict[str, Any]) -> dict[str, Any]:
    """{"text": headline, "lines": [(text, met)], "state": met|breached|none}."""
    sweep = summary.get("sweep")
    if sweep is not None:
        capacity = sweep.get("slo_requests_per_s")
        text = f"{sweep['steps_met']} of {sweep['steps_measured']} steps measured met every SLO"
        items = []
        if capacity is not None:
            national = sweep.get("slo_requests_per_s_national")
            prefix = "at least " if sweep.get("beyond_measured") else ""
            items.append(
                (
                    f"SLO capacity {prefix}{capacity:,.3g} successful requests/s (run terms)"
                    + (f", {prefix}{national:,.0f}/s national" if national is not None else ""),
                    None,
                )
            )
        elif sweep.get("limiting_objective"):
            items.append((f"no SLO capacity: already the lowest step broke {sweep['limiting_objective']}", False))
        return {"text": text, "lines": items, "state": "met" if capacity else "breached" if items else "none"}
    verdicts = summary.get("verdicts")
    if not verdicts:
        return {"text": "not judged", "lines": [], "state": "none"}
    met = sum(1 for v in verdicts if v["met"])
    breached = len(verdicts) - met
    return {
        "text": f"{met} met, {breached} breached",
        "lines": [(f"{v['objective']}: {v['measured']}", v["met"]) for v in verdicts],
        "state": "breached" if breached else "met",
    }


def _served_cell(summary: dict[str, Any]) -> str:
    served = summary.get("served")
    if not served or served.get("share") is None:
        return "-"
    return f"{served['share']:.0%} ({served['served']:,} of {served['tried']:,})"


def render_index(reports_dir: Path, rows: list[IndexRow], comparisons: list[ComparisonEntry]) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("schoolsurge", "report"), autoescape=select_autoescape(["html", "j2"])
    )
    return environment.get_template("index.html.j2").render(
        reports_dir=str(reports_dir),
        written=datetime.now(UTC).isoformat(timespec="seconds"),
        rows=[
            {
                "name": row.name,
                "summary": row.summary,
                "started": row.summary.get("started_at")
                or datetime.fromtimestamp(row.sort_key, UTC).isoformat(timespec="seconds"),
                "scale_speed": _scale_speed(row.summary),
                "verdicts": _verdicts_cell(row.summary),
                "served": _served_cell(row.summary),
                "report": row.report,
                "folder": _link(row.name, ""),
                "comparisons": row.comparisons,
            }
            for row in rows
        ],
        comparisons=[
            {
                "entry": entry,
                "written": datetime.fromtimestamp(entry.written, UTC).isoformat(timespec="seconds"),
            }
            for entry in comparisons
        ],
    )
