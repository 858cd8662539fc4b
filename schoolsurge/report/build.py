"""Assemble the self-contained HTML report of a run directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from schoolsurge.files import atomic_file
from schoolsurge.report import capacity_charts, charts
from schoolsurge.report.capacity import CapacityCard, capacity_card, write_capacity_json
from schoolsurge.report.data import RunData, load_run
from schoolsurge.report.funnel import login_funnel
from schoolsurge.report.health import health
from schoolsurge.report.outcome import plan_agreement, served_share
from schoolsurge.report.platform_side import platform_section
from schoolsurge.report.retries import retry_figures
from schoolsurge.report.tables import STEP_COLUMNS, bot_lines, exception_rows, failure_rows, step_rows
from schoolsurge.report.verdicts import judge_run
from schoolsurge.rundir import REPORT, StepStatus

CONTENTS = {
    "capacity": "Capacity",
    "served": "Who got in",
    "slo": "SLOs",
    "plan": "Against plan",
    "arrivals": "Arrivals",
    "concurrency": "Concurrency",
    "requests": "Requests",
    "latency": "Latency",
    "funnel": "Funnel",
    "retries": "Retries",
    "health": "Health",
    "platform": "Platform side",
    "steps": "Steps",
    "failures": "Failures",
}


def _peak(column: pd.Series) -> int:
    peak = pd.to_numeric(column, errors="coerce").max()
    return int(peak) if pd.notna(peak) else 0


def _known(value: object, unknown: str = "?") -> str:
    return unknown if value is None else str(value)


def _run_facts(data: RunData) -> list[tuple[str, str]]:
    manifest = data.manifest
    scale, speed, fraction = manifest.scale, manifest.speed, manifest.load_fraction
    facts = [
        ("scenario", f"{_known(manifest.scenario)} ({_known(manifest.scenario_file)})"),
        ("target", _known(manifest.target) + (" (embedded reference platform)" if manifest.embedded else "")),
        ("single sign-on", {"cas": "CAS", "oidc": "OpenID Connect"}.get(manifest.sso or "cas", "?")),
        ("scale (fraction of people)", f"{scale:g}" if scale else "?"),
        ("speed (time compression)", f"{speed:g}x" if speed else "?"),
        ("load fraction (scale x speed)", f"{fraction:.4g} of the national request rate" if fraction else "?"),
        ("seed", _known(manifest.seed)),
        ("started / ended (UTC)", f"{_known(manifest.started_at)} / {_known(manifest.ended_at)}"),
        ("status", _known(manifest.status, "unknown")),
    ]
    totals = data.totals()
    facts.append(
        (
            f"requests / failures / logins ({totals.window})",
            f"{totals.requests:,} / {totals.failures:,} / {totals.logins:,}",
        )
    )
    if data.sessions is not None:
        s = data.sessions
        facts.append(
            (
                "people scheduled / started / late / dropped / gave up",
                " / ".join(f"{int(s[c].sum()):,}" for c in ("scheduled", "started", "late", "dropped", "abandoned")),
            )
        )
        facts.append(
            (
                "peak agent pool / peak people in a session",
                f"{_peak(s['pool_size']):,} / {_peak(s['active_sessions']):,}",
            )
        )
        bots = int(s["bot_login_attempts"].sum())
        if bots:
            facts.append(("bot login attempts (counted apart)", f"{bots:,}"))
    return facts


def _capacity(card: CapacityCard | None) -> dict[str, object] | None:
    """What the report's first section shows: the headline, the figures, and for a sweep its charts and steps."""
    if card is None:
        return None
    columns, rows = card.step_table() if card.kind == "sweep" else ([], [])
    return {
        "kind": card.kind,
        "headline": card.headline(),
        "notes": card.notes,
        "figures": card.figures(),
        "charts": [
            {"title": title, "svg": markup}
            for title, markup in (capacity_charts.sweep_charts(card) if card.kind == "sweep" else [])
        ],
        "step_columns": columns,
        "step_rows": rows,
    }


def render_report(data: RunData) -> str:
    """The report's HTML, its capacity answer first."""
    return _render(data, capacity_card(data))


def _sweep_steps(card: CapacityCard | None) -> list[tuple[float, str]]:
    """Where each step of a sweep began (run seconds), to mark on its time charts."""
    if card is None or card.kind != "sweep" or card.steps is None:
        return []
    steps = card.steps[card.steps["status"] != StepStatus.SKIPPED.value]
    starts = pd.to_numeric(steps["start_s"], errors="coerce")
    return [(float(x), f"step {int(step)}") for step, x in zip(steps["step"], starts, strict=True) if pd.notna(x)]


def _render(data: RunData, card: CapacityCard | None) -> str:
    environment = Environment(
        loader=PackageLoader("schoolsurge", "report"), autoescape=select_autoescape(["html", "j2"])
    )
    scenario = data.scenario
    run_health = health(data)
    sweep = card is not None and card.kind == "sweep"
    chart_context = charts.context(data, sweep, _sweep_steps(card))
    axis = chart_context.axis
    served = served_share(data) if not sweep else None
    agreement = plan_agreement(data) if not sweep else []
    sections = charts.section_charts(chart_context)
    funnel = login_funnel(data)
    retries = retry_figures(data.sessions, axis).lines(axis.clock) if data.sessions is not None else []
    bots = bot_lines(data)
    platform = platform_section(data, axis, card)  # the target's own metrics, when the run scraped them
    present = {
        "capacity": card is not None,
        "served": served is not None,
        "slo": True,
        "plan": bool(agreement),
        "arrivals": bool(sections.get("arrivals")),
        "concurrency": bool(sections.get("concurrency")),
        "requests": bool(sections.get("requests") or bots),
        "latency": bool(sections.get("latency")),
        "funnel": bool(funnel),
        "retries": bool(retries or sections.get("retries")),
        "health": True,
        "platform": platform is not None,
        "steps": True,
        "failures": True,
    }
    return environment.get_template("template.html.j2").render(
        sweep=sweep,
        title=f"{_known(data.manifest.scenario, data.run_dir.name)} — {data.run_dir.name}",
        description=scenario.description if scenario else "",
        contents=[(anchor, CONTENTS[anchor]) for anchor, shown in present.items() if shown],
        warnings=run_health.notes(),
        capacity=_capacity(card),
        notes=data.notes,
        run_facts=_run_facts(data),
        # A sweep's steps are not the morning: its verdicts are per step (the capacity section), and the morning's
        # SLO window, served share and plan agreement would read it against the wrong clock.
        verdicts=judge_run(data) if not sweep else [],
        served=served,
        agreement=agreement,
        health=run_health,
        platform=platform,
        sections=sections,
        funnel=funnel,
        retries=retries,
        bots=bots,
        step_columns=STEP_COLUMNS,
        step_rows=step_rows(data),
        failure_rows=failure_rows(data),
        exception_rows=exception_rows(data),
        versions=sorted(data.manifest.versions.items()),
    )


def build_report(run_dir: Path) -> Path:
    """Write report.html into the run directory and return its path."""
    return write_report(load_run(Path(run_dir)))


def write_report(data: RunData) -> Path:
    """Write report.html of an already loaded run, and capacity.json beside it when it has a capacity answer."""
    card = capacity_card(data)
    html = _render(data, card)
    path = data.run_dir / REPORT
    with atomic_file(path) as handle:
        handle.write(html)
    if card is not None:
        write_capacity_json(card)
    return path
