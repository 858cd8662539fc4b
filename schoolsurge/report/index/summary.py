"""One run's row of the index: its manifest's facts, its verdicts (a sweep: its steps that met them and its SLO
capacity) and the share of people served, read as little as the row needs (`load_run(summary=True)`)."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schoolsurge.errors import ReportError
from schoolsurge.files import irregular_kind, readable, skipped_note
from schoolsurge.report.kinds import pick_kind
from schoolsurge.report.load.capacity_steps import load_capacity_steps
from schoolsurge.report.load.json_fields import number_or_none, read_json_object
from schoolsurge.report.load.loader import has_engine_files, load_run
from schoolsurge.report.load.run_data import run_profile
from schoolsurge.report.outcome.answer import read_answer
from schoolsurge.report.outcome.served import served_share
from schoolsurge.report.outcome.verdicts import judge_run
from schoolsurge.rundir import (
    ANSWER_JSON,
    CAPACITY_CSV,
    CAPACITY_JSON,
    HISTOGRAMS,
    MANIFEST,
    MEASURED_STATUSES,
    SCENARIO_COPY,
    SESSIONS_CSV,
    TIMELINE,
    Manifest,
    salvage_manifest,
)

# The files a row is computed from, with Locust's CSV files whatever their prefix: a change in any of them (size
# or time) recomputes the row.
SOURCE_FILES = frozenset(
    {MANIFEST, SESSIONS_CSV, HISTOGRAMS, SCENARIO_COPY, TIMELINE, CAPACITY_JSON, CAPACITY_CSV, ANSWER_JSON}
)
log = logging.getLogger(__name__)


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """What the index shows of a run: its manifest's facts, verdicts (a sweep: its steps and SLO capacity) and
    served share; `unreadable` says why a run could not be read. Never raises."""
    notes = _skipped(run_dir)
    manifest = salvage_manifest(run_dir, notes)
    if readable(run_dir / MANIFEST) and not manifest.present:
        notes.append(f"{MANIFEST} unreadable")
    kind = pick_kind(manifest, has_engine_files(run_dir))
    summary: dict[str, Any] = {
        "kind": kind.label(manifest),
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
        "answer": None,  # the run's answer (answer.json): {"held": bool | None, "lines": [...]}
        "unreadable": None,
        "notes": notes,
    }
    answer = read_answer(run_dir)
    if answer is not None:
        summary["answer"] = {"held": answer.held, "lines": answer.lines()}
    try:
        if kind.judged_on_the_morning:
            _run_summary(run_dir, summary)
        else:
            summary["sweep"] = _sweep_summary(run_dir)
    except ReportError as error:
        summary["unreadable"] = str(error).replace(f"{run_dir}/", "")
    except Exception as error:  # a broken folder must not break the index of the others
        log.warning("index: cannot read %s", run_dir, exc_info=True)
        summary["unreadable"] = f"{type(error).__name__}: {error}"
    return summary


def _run_summary(run_dir: Path, summary: dict[str, Any]) -> None:
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
    capacity = read_json_object(run_dir / CAPACITY_JSON)
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
        frame = load_capacity_steps(run_dir)
        steps = frame.to_dict("records") if frame is not None else []
    measured = [s for s in steps if s.get("status") in MEASURED_STATUSES]
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


def fingerprint(run_dir: Path) -> list[Any]:
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
