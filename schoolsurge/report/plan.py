"""`schoolsurge plan` for people: the plan's figures as terminal lines, and a PNG of the national curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from schoolsurge.files import atomic_binary_file
from schoolsurge.models.population import NationalCurves
from schoolsurge.scenario import Scenario, seconds_to_clock


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def _memory(mb: float) -> str:
    return f"{mb / 1000:,.1f} GB" if mb >= 1000 else f"{mb:,.1f} MB"


def _workers(count: int) -> str:
    return f"{count} worker process{'es' if count > 1 else ''}"


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as lines for a terminal."""
    national, run, fleet = plan["national"], plan["run"], plan["fleet"]
    window = f"{plan['window']['start']}-{plan['window']['end']}"
    lines = [f"{plan['scenario']}: {window}, SLOs judged {plan['slo_window']['start']}-{plan['slo_window']['end']}"]
    lines += ["", "National (every person, real time)"]
    lines.append(f"  people logging in     {_count(national['total_people'])}")
    for name, group in national["groups"].items():
        lines.append(
            f"    {name:<20}{_count(group['people']):>12}  peak {_rate(group['peak_arrivals_per_s'])}/s "
            f"at {group['peak_at']}, {_count(group['peak_concurrent_sessions'])} open at most"
        )
    lines.append(
        f"  peak logins           {_rate(national['peak_arrivals_per_s'])}/s in the minute {national['peak_at']}"
    )
    lines.append(
        f"  peak open sessions    {_count(national['peak_concurrent_sessions'])} at {national['peak_concurrent_at']}"
    )
    lines.append(
        f"  peak requests         {_rate(national['peak_requests_per_s'])}/s at {national['peak_requests_at']}"
    )
    if national["virtual_classes"]:
        lines.append(
            f"  virtual classes       {_count(national['virtual_classes'])} opened, "
            f"{_count(national['virtual_class_pupils'])} pupils joining "
            f"({national['pupils_per_virtual_class']:.1f} per class), {_count(national['peak_in_virtual_class'])} "
            f"in a class at {national['peak_in_virtual_class_at']}"
        )
    for incident in plan["incidents"]:
        if incident["kind"] == "bot-flood":
            lines.append(
                f"  bot flood             {incident['start']}-{incident['end']}: "
                f"{_rate(incident['national_rate_per_s'])} login attempts/s "
                f"({_count(national['bot_attempts'])} in all)"
            )
        else:
            until = f"until {incident['restored_at']}" if incident["restored_at"] else "not restored"
            lines.append(f"  capacity loss         {incident['fraction']:.0%} from {incident['at']}, {until}")
    minutes = run["duration_s"] / 60
    lines += ["", f"Run (scale {run['scale']:g}, speed {run['speed']:g}x, load fraction {run['load_fraction']:.3g})"]
    lines.append(f"  people simulated      {_count(run['people'])} ({_count(run['platform_pupils'])} pupils' accounts)")
    lines.append(f"  run length            {run['duration_s']:,.0f} s ({minutes:.1f} min for {window})")
    lines.append(f"  peak arrivals         {_rate(run['peak_arrivals_per_s'])}/s")
    lines.append(f"  peak open sessions    {_rate(run['peak_concurrent_sessions'])}")
    lines.append(f"  peak requests         {_rate(run['peak_requests_per_s'])}/s")
    if run["virtual_classes"]:
        lines.append(
            f"  virtual classes       {_rate(run['virtual_classes'])} opened, {_rate(run['virtual_class_pupils'])} "
            f"pupils joining, {_rate(run['peak_in_virtual_class'])} in a class at most"
        )
    for incident in plan["incidents"]:
        if incident["kind"] == "bot-flood":
            lines.append(f"  bot login attempts    {_rate(incident['run_rate_per_s'])}/s during the flood")
    lines += [
        "",
        f"Fleet ({_count(fleet['requests_per_s_per_process'])} requests/s per process on a whole core, planned at "
        f"{fleet['cpu_target']:.0%}; {fleet['kb_per_session']:g} KB per open session)",
        f"  figures               {fleet.get('source', 'as given')}",
        f"  this run              {_workers(fleet['workers'])} (one per core), {_memory(fleet['memory_mb'])}",
        f"  full scale            {_workers(fleet['workers_full_scale'])} (one per core), "
        f"{_memory(fleet['memory_full_scale_mb'])}",
    ]
    return "\n".join(lines)


def write_chart(scenario: Scenario, curves: NationalCurves, path: Path) -> Path:
    """A PNG of the national logins per second and open sessions, per group, over the morning's clock."""
    figure = Figure(figsize=(9, 6), dpi=100)
    logins_axes, sessions_axes = figure.subplots(2, 1, sharex=True)
    minutes = curves.start_s + 60 * np.arange(curves.seconds // 60) + 30
    seconds = curves.clock_s
    names = [g.name for g in scenario.groups]
    logins_axes.stackplot(minutes, [curves.per_minute(curves.arrivals[n]) for n in names], labels=names, alpha=0.8)
    if curves.bot_attempts.any():
        logins_axes.plot(minutes, curves.per_minute(curves.bot_attempts), color="black", lw=1, label="bot attempts")
    sessions_axes.stackplot(seconds, [curves.concurrent[n] for n in names], labels=names, alpha=0.8)
    judged = scenario.slo_window
    for axes in (logins_axes, sessions_axes):
        axes.axvspan(judged.start_s, judged.end_s, color="grey", alpha=0.12, label="SLO window")
        for loss in scenario.capacity_losses:
            end = loss.restored_s if loss.restored_s is not None else scenario.window.end_s
            axes.axvspan(loss.at_s, end, color="red", alpha=0.12, label=f"{loss.fraction:.0%} capacity lost")
        axes.grid(True, alpha=0.3)
        axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:,.0f}"))
    logins_axes.set_ylabel("logins per second")
    logins_axes.set_title(f"{scenario.name}: national curves per group")
    logins_axes.legend(loc="upper left", fontsize=8)
    sessions_axes.set_ylabel("open sessions")
    sessions_axes.set_xlabel("scenario clock (HH:MM)")
    sessions_axes.xaxis.set_major_locator(MultipleLocator(1800 if scenario.window.duration_s <= 4 * 3600 else 3600))
    sessions_axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: seconds_to_clock(x)))
    sessions_axes.set_xlim(scenario.window.start_s, scenario.window.end_s)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_binary_file(path) as handle:  # never through a link at `path` (reports/ may hold anything)
        figure.savefig(handle, format="png")
    return path
