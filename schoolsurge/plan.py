"""`schoolsurge plan`: what a scenario asks of the platform and of the load generators, before running anything.

`make_plan` is pure (scenario in, JSON-ready figures out); `format_plan` renders them for people; `write_chart`
and `run_plan` are the edges that write the PNG and print.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from schoolsurge.models.fleet import FleetFigures, fleet_need
from schoolsurge.models.incidents import scaled_bot_rate
from schoolsurge.models.population import NationalCurves, logins_expected, virtual_classes
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import people_at_scale
from schoolsurge.scenario import BotFlood, Scenario, load_scenario, seconds_to_clock

DEFAULT_CHART_DIR = Path("reports")


class PlanError(ValueError):
    """Options a plan cannot be made with; the message is one line saying what to change."""


def _peak(curve: np.ndarray, start_s: int, step_s: int) -> tuple[float, str]:
    """(highest value, clock time HH:MM of the step it is reached in)."""
    index = int(np.argmax(curve))
    return float(curve[index]), seconds_to_clock(start_s + index * step_s)


def _national(scenario: Scenario, curves: NationalCurves) -> dict[str, Any]:
    start = curves.start_s
    peak_arrivals, peak_at = _peak(curves.per_minute(curves.total_arrivals()), start, 60)
    peak_sessions, sessions_at = _peak(curves.total_concurrent(), start, 1)
    peak_requests, requests_at = _peak(curves.total_requests(), start, 1)
    opened, joined = virtual_classes(scenario)
    groups = {}
    for group in scenario.groups:
        group_peak, group_peak_at = _peak(curves.per_minute(curves.arrivals[group.name]), start, 60)
        groups[group.name] = {
            "persona": group.persona,
            "people": round(logins_expected(group)),
            "peak_arrivals_per_s": round(group_peak, 1),
            "peak_at": group_peak_at,
            "peak_concurrent_sessions": round(float(curves.concurrent[group.name].max())),
        }
    return {
        "total_people": round(sum(logins_expected(g) for g in scenario.groups)),
        "peak_arrivals_per_s": round(peak_arrivals, 1),
        "peak_at": peak_at,
        "peak_concurrent_sessions": round(peak_sessions),
        "peak_concurrent_at": sessions_at,
        "peak_requests_per_s": round(peak_requests),
        "peak_requests_at": requests_at,
        "virtual_classes": round(opened),
        "virtual_class_pupils": round(joined),
        "pupils_per_virtual_class": round(joined / opened, 2) if opened else None,
        "bot_attempts": round(float(curves.bot_attempts.sum())),
        "groups": groups,
    }


def make_plan(replay: Replay, figures: FleetFigures) -> dict[str, Any]:
    """National figures, the scaled run's figures and fleet sizing, as one JSON-ready mapping."""
    scenario, scale, speed = replay.scenario, replay.scale, replay.speed
    national = _national(scenario, replay.national)
    fraction = replay.load_fraction
    run = {
        "scale": scale,
        "speed": speed,
        "load_fraction": round(fraction, 12),
        "people": replay.people,
        "people_by_group": {g.name: people_at_scale(g, scale) for g in scenario.groups},
        "duration_s": round(replay.duration_s, 1),
        # A run second holds `speed` scenario seconds of arrivals from `scale` of the people.
        "peak_arrivals_per_s": round(national["peak_arrivals_per_s"] * scale * speed, 2),
        "peak_concurrent_sessions": round(national["peak_concurrent_sessions"] * scale, 1),
        "peak_requests_per_s": round(national["peak_requests_per_s"] * fraction, 1),
        "platform_pupils": replay.platform_pupils,
    }
    this_run = fleet_need(run["peak_requests_per_s"], run["peak_concurrent_sessions"], figures)
    full_scale = fleet_need(national["peak_requests_per_s"], national["peak_concurrent_sessions"], figures)
    fleet = {
        "requests_per_s_per_process": figures.requests_per_s_per_process,
        "kb_per_session": figures.kb_per_session,
        "cpu_target": figures.cpu_target,
        "workers": this_run.workers,
        "memory_mb": round(this_run.memory_mb, 1),
        "workers_full_scale": full_scale.workers,
        "memory_full_scale_mb": round(full_scale.memory_mb),
    }
    incidents = []
    for incident in scenario.incidents:
        if isinstance(incident, BotFlood):
            incidents.append(
                {
                    "kind": incident.kind,
                    "start": incident.start,
                    "end": incident.end,
                    "national_rate_per_s": incident.national_rate_per_s,
                    "run_rate_per_s": round(scaled_bot_rate(incident, scale, speed), 2),
                }
            )
        else:
            incidents.append(incident.model_dump())
    return {
        "scenario": scenario.name,
        "window": {"start": scenario.window.start, "end": scenario.window.end},
        "slo_window": {"start": scenario.slo_window.start, "end": scenario.slo_window.end},
        "national": national,
        "run": run,
        "fleet": fleet,
        "incidents": incidents,
    }


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
            f"({national['pupils_per_virtual_class']:.1f} per class)"
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
    for incident in plan["incidents"]:
        if incident["kind"] == "bot-flood":
            lines.append(f"  bot login attempts    {_rate(incident['run_rate_per_s'])}/s during the flood")
    lines += [
        "",
        f"Fleet ({_count(fleet['requests_per_s_per_process'])} requests/s per process at {fleet['cpu_target']:.0%} "
        f"CPU, {fleet['kb_per_session']:g} KB per open session)",
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
    figure.savefig(path, format="png")
    return path


def _figures(args: Any) -> FleetFigures:
    given = {
        "requests_per_s_per_process": args.rps_per_process,
        "kb_per_session": args.kb_per_session,
        "cpu_target": args.cpu_target,
    }
    try:
        return FleetFigures(**{k: v for k, v in given.items() if v is not None})
    except ValueError as error:
        raise PlanError(f"{error}; change the fleet option") from None


def run_plan(args: Any) -> int:
    """The command: load, plan, write the chart, print text or JSON. Raises ScenarioError or PlanError."""
    scenario = load_scenario(args.scenario)
    scale = args.scale if args.scale is not None else scenario.run.scale
    speed = args.speed if args.speed is not None else scenario.run.speed
    try:
        if not (math.isfinite(scale) and math.isfinite(speed)):
            raise ValueError(f"scale and speed must be finite numbers, got {scale} and {speed}")
        replay = Replay(scenario, scale, speed)
    except ValueError as error:
        raise PlanError(f"{error}; pass --scale in (0, 1] and a positive --speed") from None
    plan = make_plan(replay, _figures(args))
    chart = args.chart or DEFAULT_CHART_DIR / f"plan-{scenario.name}.png"
    try:
        plan["chart"] = str(write_chart(scenario, replay.national, Path(chart)))
    except OSError as error:
        raise PlanError(
            f"cannot write the chart {chart} ({error.strerror}); pass --chart with a writable path"
        ) from None
    if args.json:
        print(json.dumps(plan, indent=2))
    else:
        print(format_plan(plan))
        print(f"\nChart: {plan['chart']}")
    return 0
