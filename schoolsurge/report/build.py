"""Assemble the self-contained HTML report of a run directory."""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from schoolsurge.report import capacity_charts, charts
from schoolsurge.report.capacity import CapacityCard, capacity_card, write_capacity_json
from schoolsurge.report.data import RunData, load_run, number_or_none
from schoolsurge.report.health import health
from schoolsurge.report.outcome import plan_agreement, served_share
from schoolsurge.report.verdicts import judge_run
from schoolsurge.rundir import AGGREGATED, REPORT, atomic_file

SUMMARY_COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "50%", "95%", "99%", "Requests/s"]
CHARTS = (
    ("Simulated users (agents) over the morning", charts.users_over_time),
    ("Requests and failures per second", charts.throughput_over_time),
    ("Login (whole SSO flow, Locust entry): p50 and p95", charts.login_latency_over_time),
)
SESSION_CHARTS = (
    ("Who got in: share of the people due in each 5 minutes who logged in, gave up, or left", charts.served_over_time),
    ("The reconnection bubble: retries per second against people's requests", charts.retries_over_time),
    ("Arrivals per minute: scheduled, started, late, dropped, gave up", charts.arrivals_per_minute),
    ("Time to log in from the intended arrival: p50, p95, p99", charts.time_to_login_over_time),
    ("Agent pool, people in a session and in a virtual class", charts.pool_and_sessions),
)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "-" if pd.isna(value) else f"{value:,.1f}" if value % 1 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _run_facts(data: RunData) -> list[tuple[str, str]]:
    manifest = data.manifest
    scale, speed = number_or_none(manifest.get("scale")), number_or_none(manifest.get("speed"))
    facts = [
        ("scenario", f"{manifest.get('scenario', '?')} ({manifest.get('scenario_file', '?')})"),
        (
            "target",
            f"{manifest.get('target', '?')}" + (" (embedded reference platform)" if manifest.get("embedded") else ""),
        ),
        ("scale (fraction of people)", f"{scale:g}" if scale else "?"),
        ("speed (time compression)", f"{speed:g}x" if speed else "?"),
        (
            "load fraction (scale x speed)",
            f"{scale * speed:.4g} of the national request rate" if scale and speed else "?",
        ),
        ("seed", str(manifest.get("seed", "?"))),
        ("started / ended (UTC)", f"{manifest.get('started_at', '?')} / {manifest.get('ended_at', '?')}"),
        ("status", str(manifest.get("status", "unknown"))),
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
                f"{int(s['pool_size'].max()):,} / {int(s['active_sessions'].max()):,}",
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
            {"title": title, "png": base64.b64encode(png).decode("ascii")}
            for title, png in (capacity_charts.sweep_charts(card) if card.kind == "sweep" else [])
        ],
        "step_columns": columns,
        "step_rows": rows,
    }


def render_report(data: RunData) -> str:
    """The report's HTML, its capacity answer first."""
    return _render(data, capacity_card(data))


def _render(data: RunData, card: CapacityCard | None) -> str:
    environment = Environment(
        loader=PackageLoader("schoolsurge", "report"), autoescape=select_autoescape(["html", "j2"])
    )
    # Locust's Aggregated row also counts the login FLOW entries; the run facts carry the true totals.
    stats = data.stats[data.stats["Name"] != AGGREGATED][SUMMARY_COLUMNS]
    failures = data.failures
    failure_rows = []
    if not failures.empty and {"Name", "Error", "Occurrences"} <= set(failures.columns):
        top = failures.sort_values("Occurrences", ascending=False).head(15)
        failure_rows = [(r.Name, r.Error, int(r.Occurrences)) for r in top.itertuples()]
    scenario = data.scenario
    run_health = health(data)
    sweep = card is not None and card.kind == "sweep"
    return environment.get_template("template.html.j2").render(
        sweep=sweep,
        title=f"{data.manifest.get('scenario', data.run_dir.name)} — {data.run_dir.name}",
        description=scenario.description if scenario else "",
        warnings=run_health.notes(),
        capacity=_capacity(card),
        notes=data.notes,
        run_facts=_run_facts(data),
        # A sweep's steps are not the morning: its verdicts are per step (the capacity section), and the morning's
        # SLO window, served share and plan agreement would read it against the wrong clock.
        verdicts=judge_run(data) if not sweep else [],
        served=served_share(data) if not sweep else None,
        agreement=plan_agreement(data) if not sweep else [],
        health=run_health,
        charts=[
            {"title": title, "png": base64.b64encode(draw(data)).decode("ascii")}
            for title, draw in (CHARTS + SESSION_CHARTS if data.sessions is not None else CHARTS)
        ],
        summary_columns=list(stats.columns),
        summary_rows=[[_cell(v) for v in row] for row in stats.itertuples(index=False)],
        failure_rows=failure_rows,
        versions=sorted(versions.items()) if isinstance(versions := data.manifest.get("versions"), dict) else [],
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
