"""Assemble the self-contained HTML report of a run directory: its sections, in the order of CONTENTS, each shown
when it has something to say.

    build_report(Path("reports/20210406T063000Z-first-day-2021"))   # -> its report.html (and capacity.json)
    written = write_report(data, run_health)   # a loaded run, its validity judged once: report.html and its answer

A section is a function of the loaded run (RunData) computed here and a block of template.html.j2 that shows it;
what differs between kinds of runs (a sweep has no morning to judge) the run's kind says (report/kinds.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from schoolsurge.files import atomic_file
from schoolsurge.report.capacity.answer import capacity_card, write_run_answer
from schoolsurge.report.capacity.card import CapacityCard
from schoolsurge.report.capacity.charts import capacity_charts
from schoolsurge.report.charts.sections import context, section_charts
from schoolsurge.report.load.loader import load_run
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.outcome.against_plan import plan_agreement
from schoolsurge.report.outcome.answer import Answer
from schoolsurge.report.outcome.health import Health, health
from schoolsurge.report.outcome.served import served_share
from schoolsurge.report.outcome.verdicts import judge_run
from schoolsurge.report.run.client_steps import client_steps_section, comparable_to_plan
from schoolsurge.report.run.facts import known, run_facts
from schoolsurge.report.run.funnel import login_funnel
from schoolsurge.report.run.platform_section import platform_section
from schoolsurge.report.run.tables import STEP_COLUMNS, bot_lines, exception_rows, failure_rows, step_rows
from schoolsurge.report.series.retries import retry_figures
from schoolsurge.rundir import REPORT

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
    "client_steps": "Client steps",
    "retries": "Retries",
    "health": "Health",
    "platform": "Platform side",
    "steps": "Steps",
    "failures": "Failures",
}


@dataclass(frozen=True)
class WrittenReport:
    path: Path  # report.html
    answer: Answer  # what answer.json holds, the report's first block and the console's last lines


def build_report(run_dir: Path) -> Path:
    """Write report.html into the run directory and return its path."""
    return write_report(load_run(Path(run_dir))).path


def write_report(data: RunData, run_health: Health | None = None) -> WrittenReport:
    """Write report.html of an already loaded run, answer.json beside it, and capacity.json when it has a capacity
    card. `run_health`: the run's health, when the caller has judged it (the one judgement of its validity for
    the manifest, the report, the answer and the console); else judged here."""
    run_health = run_health if run_health is not None else health(data)
    card = capacity_card(data)
    # capacity.json and answer.json: the answer is the report's first block
    answer = write_run_answer(data, card, run_health.invalid_reason())
    html = _render(data, card, answer, run_health)
    path = data.run_dir / REPORT
    with atomic_file(path) as handle:
        handle.write(html)
    return WrittenReport(path, answer)


def _capacity(card: CapacityCard | None, answer: Answer) -> dict[str, object] | None:
    """What the report's first section shows: the headline, the figures, its charts (a sweep's steps and national
    demand, a run's national demand against the answer's capacity) and a sweep's steps."""
    if card is None:
        return None
    columns, rows = card.step_table()
    return {
        "kind": card.kind,
        "headline": card.headline(),
        "notes": card.notes,
        "figures": card.figures(),
        "charts": capacity_charts(card, answer),
        "step_columns": columns,
        "step_rows": rows,
    }


def _render(data: RunData, card: CapacityCard | None, answer: Answer, run_health: Health) -> str:
    environment = Environment(
        loader=PackageLoader("schoolsurge", "report/run"), autoescape=select_autoescape(["html", "j2"])
    )
    scenario = data.scenario
    # A sweep's steps are not the morning: its verdicts are per step (the capacity section), and the morning's
    # SLO window, served share and plan agreement would read it against the wrong clock.
    morning = data.kind.judged_on_the_morning
    chart_context = context(data, card.step_marks() if card is not None else [])
    axis = chart_context.axis
    served = served_share(data) if morning else None
    agreement = plan_agreement(data) if morning else []
    sections = section_charts(chart_context)
    funnel = login_funnel(data)
    client_steps = client_steps_section(data)
    agreement, plan_left_out = comparable_to_plan(agreement, client_steps)
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
        "client_steps": bool(client_steps),
        "retries": bool(retries or sections.get("retries")),
        "health": True,
        "platform": platform is not None,
        "steps": True,
        "failures": True,
    }
    shown: dict[str, Any] = {
        "answer": answer.lines(),
        "answer_held": answer.held,
        "sweep": not morning,
        "title": f"{known(data.manifest.scenario, 'plain Locust run' if data.plain_locust else data.run_dir.name)}"
        f" — {data.run_dir.name}",
        "description": scenario.description if scenario else "",
        "contents": [(anchor, CONTENTS[anchor]) for anchor, present_ in present.items() if present_],
        "warnings": run_health.notes(),
        "capacity": _capacity(card, answer),
        "notes": data.notes,
        "run_facts": run_facts(data),
        "verdicts": judge_run(data) if morning else [],
        "served": served,
        "agreement": agreement,
        "plan_left_out": plan_left_out,
        "health": run_health,
        "platform": platform,
        "sections": sections,
        "funnel": funnel,
        "client_steps": client_steps,
        "retries": retries,
        "bots": bots,
        "step_columns": STEP_COLUMNS,
        "step_rows": step_rows(data),
        "plain_locust": data.plain_locust,
        "failure_rows": failure_rows(data),
        "exception_rows": exception_rows(data),
        "versions": sorted(data.manifest.versions.items()),
    }
    return environment.get_template("template.html.j2").render(**shown)
