"""Capacity against the objectives, and what it means for the nation's first morning.

SLO capacity: a sweep offers rising load in steps; each step either holds every objective (login p95 under its
limit, error ratio under its limit...) or breaches one. The capacity is the highest throughput at which every
objective still holds, interpolated linearly between the last step that held and the first that breached, at the
lowest throughput where one of the breached objectives crosses its limit: that objective is the limiting one.

National answer: a run replays the scenario at load fraction f = scale × speed, so it offers f times the nation's
rate (a run at scale 0.01 and speed 2 offers 1/50 of it). A capacity X measured in run terms therefore stands for
X/f nationally, but only if the platform scales out as the replay assumes: the national platform would be 1/f
copies of the tested one, each serving its share independently. A shared bottleneck (one database, one identity
provider) breaks that assumption, and then X/f overstates the nation's capacity. For the embedded platform the
statement is exact: its profile limits are set in national units and scaled by f (platform/settings.py), so X/f
is its national capacity by construction.

The national demand (the scenario's curves, per second) is compared with that capacity minute by minute: each
clock minute's rate is the mean of its per-second rates, so a few seconds' jitter of the model does not count as
an overload, while a surge that lasts a minute does. Pure: numbers in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from schoolsurge.errors import FitError
from schoolsurge.scenario.clock import seconds_to_clock

if TYPE_CHECKING:
    from schoolsurge.models.population import NationalCurves

DEFAULT_HEADROOM = 0.30
SMOOTHING_S = 60


# ---- SLO capacity ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SloCapacity:
    throughput: float | None  # highest throughput at which every objective holds; None if no step held
    limiting_objective: str | None  # the objective that breaks first; None if none broke
    beyond_measured: bool  # every step held: the capacity is at least the highest throughput measured
    held_steps: int  # steps that held before the first breach

    def to_dict(self) -> dict[str, Any]:
        return {
            "throughput": self.throughput,
            "limiting_objective": self.limiting_objective,
            "beyond_measured": self.beyond_measured,
            "held_steps": self.held_steps,
        }


def slo_capacity(
    throughput: Sequence[float],
    measures: Mapping[str, Sequence[float | None]],
    limits: Mapping[str, float],
) -> SloCapacity:
    """The highest throughput at which every objective in `limits` holds, from a sweep's steps in sweep order.

    `measures` maps each objective to its value at every step; a step holds when every value is at most its
    limit. A missing value (None or NaN: nothing was measured, e.g. no login completed) counts as a breach.
    The first breaching step in sweep order ends the search, even if a later step happens to hold again.
    """
    steps = _throughputs(throughput)
    values, bounds = _measures(measures, limits, len(steps))
    held = [all(_holds(values[name][k], limit) for name, limit in bounds.items()) for k in range(len(steps))]
    first_breach = next((k for k, ok in enumerate(held) if not ok), None)

    if first_breach is None:
        return SloCapacity(float(steps.max()) if len(steps) else None, None, len(steps) > 0, len(steps))
    breached = [name for name, limit in bounds.items() if not _holds(values[name][first_breach], limit)]
    if first_breach == 0:
        return SloCapacity(None, breached[0], False, 0)

    before, after = first_breach - 1, first_breach
    t0, t1 = float(steps[before]), float(steps[after])
    crossings = []
    for order, name in enumerate(breached):
        v0, v1, limit = values[name][before], values[name][after], bounds[name]
        assert v0 is not None  # the step before held, so every value there was measured
        # An unmeasured v1 gives no slope: take the last step that held.
        share = 0.0 if v1 is None else (limit - v0) / (v1 - v0)
        # Throughput that fell past saturation adds nothing above the step that held.
        crossings.append((t0 + share * max(t1 - t0, 0.0), share, order, name))
    crossing, _, _, limiting = min(crossings)  # a tie goes to the objective listed first
    best_held = float(steps[:first_breach].max())
    return SloCapacity(max(crossing, best_held), limiting, False, first_breach)


def _throughputs(throughput: Sequence[float]) -> np.ndarray:
    try:
        steps = np.asarray(throughput, dtype=float)
    except (TypeError, ValueError):
        raise FitError("every step's throughput must be a number: fix the sweep's table") from None
    if steps.ndim != 1 or not np.all(np.isfinite(steps)) or np.any(steps < 0):
        raise FitError("every step's throughput must be a finite number at or above 0: fix the sweep's table")
    return steps


def _measures(
    measures: Mapping[str, Sequence[float | None]], limits: Mapping[str, float], steps: int
) -> tuple[dict[str, list[float | None]], dict[str, float]]:
    """Each objective's values (None where not measured) and its limit, as floats."""
    out: dict[str, list[float | None]] = {}
    bounds: dict[str, float] = {}
    for name, limit in limits.items():
        if name not in measures:
            raise FitError(f"objective {name!r} has a limit but no measures; measured: {', '.join(measures) or 'none'}")
        bound = _number(limit)
        if bound is None:
            raise FitError(f"objective {name!r} needs a finite number as its limit, not {limit!r}")
        bounds[name] = bound
        column = list(measures[name])
        if len(column) != steps:
            raise FitError(f"objective {name!r} has {len(column)} values for {steps} steps: one per step is needed")
        out[name] = [_number(v) for v in column]  # not measured (None, NaN) counts as a breach
    return out, bounds


def _holds(value: float | None, limit: float) -> bool:
    return value is not None and value <= limit


# ---- national answer ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demand:
    """The scenario's national demand over the morning, one value per second from `start_s`."""

    start_s: int  # clock second of index 0 (seconds since midnight)
    arrivals_per_s: np.ndarray  # people arriving to log in (logins asked for)
    requests_per_s: np.ndarray  # HTTP requests, people's and bots'


def demand_from_curves(curves: NationalCurves) -> Demand:
    """The national demand of a scenario's curves (models/population.py)."""
    return Demand(curves.start_s, curves.total_arrivals(), curves.total_requests())


@dataclass(frozen=True)
class NationalAnswer:
    load_fraction: float
    capacity_logins_per_s_run: float | None
    capacity_requests_per_s_run: float | None
    capacity_logins_per_s_national: float | None  # run / load_fraction
    capacity_requests_per_s_national: float | None
    peak_demand_logins_per_s: float  # highest one-minute mean
    peak_demand_logins_at: str  # HH:MM
    peak_demand_requests_per_s: float
    peak_demand_requests_at: str
    exceeds_from: str | None  # HH:MM of the first minute the demand exceeds the capacity
    exceeds_for_s: float  # seconds of the morning above capacity
    people_arriving_while_exceeded: float
    headroom: float
    instances_needed: int | None  # copies of the tested platform the peak needs, with headroom
    limiting: str | None  # "logins" or "requests": what sets the instance count

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_fraction": self.load_fraction,
            "capacity_logins_per_s_run": self.capacity_logins_per_s_run,
            "capacity_requests_per_s_run": self.capacity_requests_per_s_run,
            "capacity_logins_per_s_national": self.capacity_logins_per_s_national,
            "capacity_requests_per_s_national": self.capacity_requests_per_s_national,
            "peak_demand_logins_per_s": self.peak_demand_logins_per_s,
            "peak_demand_logins_at": self.peak_demand_logins_at,
            "peak_demand_requests_per_s": self.peak_demand_requests_per_s,
            "peak_demand_requests_at": self.peak_demand_requests_at,
            "exceeds_from": self.exceeds_from,
            "exceeds_for_s": self.exceeds_for_s,
            "people_arriving_while_exceeded": self.people_arriving_while_exceeded,
            "headroom": self.headroom,
            "instances_needed": self.instances_needed,
            "limiting": self.limiting,
            "smoothing_s": SMOOTHING_S,
        }


def national_answer(
    capacity_logins_per_s_run: float | None,
    capacity_requests_per_s_run: float | None,
    load_fraction: float,
    demand: Demand,
    headroom: float = DEFAULT_HEADROOM,
) -> NationalAnswer:
    """Compare the national demand with the tested capacity scaled to national terms (capacity / load fraction).

    Demand is smoothed to one-minute means (each clock minute's per-second rates averaged) before it is compared
    and before its peak is taken. A capacity of None (not measured) leaves that side out of the comparison. The
    instance count is ceil(peak × (1 + headroom) / national capacity), the larger over logins and requests.
    """
    fraction = _number(load_fraction)
    if fraction is None or fraction <= 0:
        raise FitError(f"the load fraction must be a number above 0, not {load_fraction!r}")
    margin = _number(headroom)
    if margin is None or margin < 0:
        raise FitError(f"the headroom must be a number at or above 0, not {headroom!r}")
    run: dict[str, float | None] = {}
    for side, value in (("logins", capacity_logins_per_s_run), ("requests", capacity_requests_per_s_run)):
        number = _number(value)
        if value is not None and (number is None or number <= 0):
            raise FitError(f"the {side} capacity must be a number above 0 or None (not measured), not {value!r}")
        run[side] = number

    minute_start, seconds, logins, requests = per_minute(demand)
    national = {side: None if value is None else value / fraction for side, value in run.items()}
    rates = {"logins": logins, "requests": requests}

    exceeded = np.zeros(len(seconds), dtype=bool)
    for side, capacity in national.items():
        if capacity is not None:
            exceeded |= rates[side] > capacity
    first = int(np.argmax(exceeded)) if exceeded.any() else None

    instances: int | None = None
    limiting: str | None = None
    worst = -math.inf
    for side, capacity in national.items():
        if capacity is None:
            continue
        ratio = float(rates[side].max()) * (1 + margin) / capacity
        if ratio > worst:
            worst, limiting = ratio, side
    if limiting is not None:
        instances = max(1, math.ceil(worst - 1e-9))  # 1e-9: a ratio of 2.0000000001 from rounding needs 2

    peak_logins = int(np.argmax(logins))
    peak_requests = int(np.argmax(requests))
    return NationalAnswer(
        load_fraction=fraction,
        capacity_logins_per_s_run=run["logins"],
        capacity_requests_per_s_run=run["requests"],
        capacity_logins_per_s_national=national["logins"],
        capacity_requests_per_s_national=national["requests"],
        peak_demand_logins_per_s=float(logins[peak_logins]),
        peak_demand_logins_at=seconds_to_clock(minute_start[peak_logins]),
        peak_demand_requests_per_s=float(requests[peak_requests]),
        peak_demand_requests_at=seconds_to_clock(minute_start[peak_requests]),
        exceeds_from=None if first is None else seconds_to_clock(minute_start[first]),
        exceeds_for_s=float(seconds[exceeded].sum()),
        people_arriving_while_exceeded=float((logins * seconds)[exceeded].sum()),
        headroom=margin,
        instances_needed=instances,
        limiting=limiting,
    )


def per_minute(demand: Demand) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(clock second each minute starts, seconds of the demand in it, mean logins/s, mean requests/s) per clock
    minute; the first and last minutes may be partial and are averaged over the seconds they have."""
    arrivals = np.asarray(demand.arrivals_per_s, dtype=float)
    requests = np.asarray(demand.requests_per_s, dtype=float)
    if arrivals.ndim != 1 or arrivals.shape != requests.shape or len(arrivals) == 0:
        raise FitError("the demand needs one arrival rate and one request rate for every second, and at least one")
    both = np.concatenate((arrivals, requests))
    if not np.all(np.isfinite(both)) or both.min() < 0:
        raise FitError("the demand's rates must be finite numbers at or above 0")
    minute = (int(demand.start_s) + np.arange(len(arrivals))) // SMOOTHING_S
    minutes, index, seconds = np.unique(minute, return_inverse=True, return_counts=True)
    logins = np.bincount(index, weights=arrivals) / seconds
    request_rate = np.bincount(index, weights=requests) / seconds
    return minutes * SMOOTHING_S, seconds.astype(float), logins, request_rate


def _number(value: object) -> float | None:
    """A finite float, or None for None, NaN, infinities and what is not a number."""
    if value is None or isinstance(value, bool | str | bytes):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
