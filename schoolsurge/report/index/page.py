"""reports/index.html: the index's rows (rows.py) as one self-contained page."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from schoolsurge.errors import ReportError
from schoolsurge.files import atomic_file
from schoolsurge.report.index.rows import ComparisonEntry, IndexRow, index_rows, link

INDEX = "index.html"


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


def _scale_speed(summary: dict[str, Any]) -> str:
    scale, speed = summary.get("scale"), summary.get("speed")
    if not scale or not speed:
        return "?"
    return f"{scale:g} × {speed:g}x = {scale * speed:.3g}"


def _verdicts_cell(summary: dict[str, Any]) -> dict[str, Any]:
    """{"text": headline, "lines": [(text, met)], "state": met|breached|none}: the run's answer when it has one."""
    answer = summary.get("answer")
    if answer and answer.get("lines"):
        held = answer.get("held")
        first, *rest = answer["lines"]
        return {
            "text": first,
            "lines": [(line, None) for line in rest],
            "state": "met" if held is True else "breached" if held is False else "none",
        }
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
    environment = Environment(
        loader=PackageLoader("schoolsurge", "report/index"), autoescape=select_autoescape(["html", "j2"])
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
                "folder": link(row.name, ""),
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
