"""What a scenario asks of the platform and of the load generators, before running anything (`schoolsurge plan`).

Pure: a replay in, JSON-ready figures out, nationally and for the run. schoolsurge/report/plan.py renders them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schoolsurge.models.fleet import FleetFigures, fleet_need
from schoolsurge.models.incidents import scaled_bot_rate
from schoolsurge.models.population import NationalCurves, logins_expected
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import people_at_scale
from schoolsurge.scenario import BotFlood, Scenario, seconds_to_clock


def _peak(curve: np.ndarray, start_s: int, step_s: int) -> tuple[float, str]:
    """(highest value, clock time HH:MM of the step it is reached in)."""
    index = int(np.argmax(curve))
    return float(curve[index]), seconds_to_clock(start_s + index * step_s)


def _national(scenario: Scenario, curves: NationalCurves) -> dict[str, Any]:
    start = curves.start_s
    peak_arrivals, peak_at = _peak(curves.per_minute(curves.total_arrivals()), start, 60)
    peak_sessions, sessions_at = _peak(curves.total_concurrent(), start, 1)
    peak_requests, requests_at = _peak(curves.total_requests(), start, 1)
    classes = curves.virtual_classes
    opened, joined = classes.total_opened, classes.total_joined
    peak_in_class, in_class_at = _peak(classes.total_in_class(), start, 1)
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
        "virtual_class_join_probability": {name: round(p, 3) for name, p in classes.join_probability.items()},
        "peak_in_virtual_class": round(peak_in_class),
        "peak_in_virtual_class_at": in_class_at,
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
        "virtual_classes": round(national["virtual_classes"] * scale, 1),
        "virtual_class_pupils": round(national["virtual_class_pupils"] * scale, 1),
        "peak_in_virtual_class": round(national["peak_in_virtual_class"] * scale, 1),
        "platform_pupils": replay.platform_pupils,
    }
    this_run = fleet_need(run["peak_requests_per_s"], run["peak_concurrent_sessions"], figures)
    full_scale = fleet_need(national["peak_requests_per_s"], national["peak_concurrent_sessions"], figures)
    fleet = {
        "requests_per_s_per_process": figures.requests_per_s_per_process,
        "kb_per_session": figures.kb_per_session,
        "cpu_target": figures.cpu_target,
        "source": figures.source,  # the constants file measured by `make bench`, or the documented defaults
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
