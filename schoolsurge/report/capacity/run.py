"""The capacity answer of a normal run (not a sweep): the highest load it held for a few scenario minutes in a
row with every SLO met, the lowest load at which an objective broke, and the share of people who logged in
within the login p95 objective.

The run is read from the engine's sessions.csv and per-second time-to-login histograms, cut into bins of about
one scenario minute; each bin's objectives are judged as a sweep judges its steps (people who gave up count as
never logged in). Runs of earlier versions, whose sessions.csv does not count requests, fall back on Locust's
statistics history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from schoolsurge.errors import FitError
from schoolsurge.models.capacity import DEFAULT_HEADROOM, Demand, demand_from_curves
from schoolsurge.models.population import national_curves
from schoolsurge.report.capacity.card import NO_REQUESTS, SUSTAINED_BINS, RunFigures, RunLoad
from schoolsurge.report.capacity.run_card import RunCard
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.outcome.served import served_share
from schoolsurge.report.series.latency import count_at_or_below
from schoolsurge.rundir import FAILURE_COUNTERS, TIME_TO_LOGIN_PERCENTILES, Counter, login_percentile, merged
from schoolsurge.scenario import seconds_to_clock

BIN_SCENARIO_S = 60  # a bin is about one scenario minute (SUSTAINED_BINS of them in a row count as held)
# ... and at least this many run seconds: a rate limit admits bursts (its tokens, its queue's timeout), so a bin of
# one run second holds a burst above the limit and counts it held
MIN_BIN_RUN_S = 4


def run_card(data: RunData, headroom: float = DEFAULT_HEADROOM) -> RunCard | None:
    """A normal run's capacity answer from sessions.csv, binned by about one scenario minute; None without the
    engine's sessions or the scenario (no objectives to hold)."""
    if data.sessions is None or data.scenario is None or data.sessions.empty:
        return None
    card = RunCard.empty(data, headroom)
    speed = card.speed or data.scenario.run.speed
    width = max(MIN_BIN_RUN_S, round(BIN_SCENARIO_S / speed))
    sessions = data.sessions.set_index("second").sort_index()
    seconds = pd.RangeIndex(0, int(sessions.index.max()) + 1)
    sessions = sessions[~sessions.index.duplicated()].reindex(seconds)
    requests, failures, source = _requests_and_failures(data, sessions)
    bins = pd.Series(seconds // width, index=seconds)
    start = data.clock_start_s if data.clock_start_s is not None else data.scenario.window.start_s

    loads: list[RunLoad] = []
    held: list[bool | None] = []
    for number, members in bins.groupby(bins).groups.items():
        span = len(members)
        frame = sessions.loc[members]
        clock_s = start + number * width * speed
        clock = seconds_to_clock(clock_s)
        end = seconds_to_clock(start + (number * width + span) * speed)
        breaches, judged = _bin_breaches(data, card.limits, frame, members, requests, failures)
        logins = float(pd.to_numeric(frame[Counter.LOGINS_SUCCEEDED], errors="coerce").fillna(0).sum())
        # Offered: login attempts sent in the bin, first tries (arrivals) and retries (event time): what a
        # login-rate limit admits or sheds. Without overload there are no retries and it is the arrivals.
        offered = sum(
            float(pd.to_numeric(frame[column], errors="coerce").fillna(0).sum())
            for column in (Counter.STARTED, Counter.LOGIN_RETRIES)
            if column in frame
        )
        loads.append(
            RunLoad(
                float(requests.loc[members].sum()) / span,
                logins / span,
                clock,
                end,
                tuple(breaches),
                offered / span,
                clock_s,
            )
        )
        held.append(None if not judged else not breaches)

    # held and broke on the load offered (people arriving per second), not achieved: rundir/figures.py
    broke = min((load for load, ok in zip(loads, held, strict=True) if ok is False), default=None, key=_by_load)
    card.run = RunFigures(
        bin_run_s=width,
        bin_scenario_s=width * speed,
        bins=len(loads),
        held=_sustained(loads, held, below=broke),
        broke=broke,
        top=_top(loads),
        within_objective=None,
        tried=0,
        objective_ms=card.limits.get("login p95", math.nan),
        window=data.slo_window_label(),
        served=served_share(data),
        requests_source=source,
        loads=tuple(loads),
    )
    card.demand = _national_demand(data)
    _within_objective(card.run, data, sessions)
    if source != "sessions":
        card.notes.append(f"People's requests and failures per second come from {source}.")
    return card


def _by_load(load: RunLoad) -> tuple[float, float, float]:
    """Loads compare by the load offered (people arriving per second), then requests/s and logins/s achieved."""
    return load.offered_per_s, load.requests_per_s, load.logins_per_s


def _top(loads: list[RunLoad]) -> RunLoad | None:
    """The highest requests/s, logins/s and offered load of any bin (each in its own bin), over the whole run."""
    if not loads:
        return None
    return RunLoad(
        max(load.requests_per_s for load in loads),
        max(load.logins_per_s for load in loads),
        loads[0].from_clock,
        loads[-1].to_clock,
        offered_per_s=max(load.offered_per_s for load in loads),
        clock_s=loads[0].clock_s,
    )


def _national_demand(data: RunData) -> Demand | None:
    """The scenario's national demand over its morning (models/population.py), which the answer's instance count
    and the demand-against-capacity chart both read; None when the scenario's curves cannot be made."""
    assert data.scenario is not None
    try:
        return demand_from_curves(national_curves(data.scenario))
    except (FitError, ValueError):
        return None


def _requests_and_failures(data: RunData, sessions: pd.DataFrame) -> tuple[pd.Series, pd.Series, str]:
    """People's requests and failed requests in each run second: the engine's event-time counters when the
    run has them, else Locust's running totals (runs of earlier versions)."""
    columns = [Counter.REQUESTS, *FAILURE_COUNTERS]
    if all(column in sessions.columns for column in columns):
        counts = sessions[columns].apply(pd.to_numeric, errors="coerce").fillna(0)
        if counts[Counter.REQUESTS].sum() > 0:
            return counts[Counter.REQUESTS], counts[list(FAILURE_COUNTERS)].sum(axis=1), "sessions"
    zero = pd.Series(0.0, index=sessions.index)
    if data.test_start_unix is None or not len(data.history):
        return zero, zero, NO_REQUESTS
    rows = data.history[data.is_request_row(data.history)].sort_values("Timestamp")
    if rows.empty:
        return zero, zero, NO_REQUESTS
    second = (rows["Timestamp"] - data.test_start_unix).round().astype(int).clip(lower=0)
    per_second = []
    for column in ("Total Request Count", "Total Failure Count"):
        added = rows.groupby("Name")[column].diff().fillna(rows[column])
        per_second.append(added.groupby(second).sum().reindex(sessions.index, fill_value=0).astype(float))
    return per_second[0], per_second[1], "Locust's statistics history (this run's sessions.csv does not count them)"


def _bin_breaches(
    data: RunData,
    limits: dict[str, float],
    frame: pd.DataFrame,
    members: Sequence[int],
    requests: pd.Series,
    failures: pd.Series,
) -> tuple[list[str], bool]:
    """The objectives broken in one bin, and whether anything could be judged in it (people or requests)."""
    breaches, judged = [], False
    histogram = merged(data.histograms[s] for s in members if s in data.histograms) if data.histograms else None
    abandoned = int(pd.to_numeric(frame[Counter.ABANDONED], errors="coerce").fillna(0).sum())
    unfinished = int(pd.to_numeric(frame[Counter.UNFINISHED], errors="coerce").fillna(0).sum())
    for p in TIME_TO_LOGIN_PERCENTILES:
        limit = limits.get(f"login p{p}")
        if limit is None:
            continue
        if histogram is not None:
            figure = login_percentile(histogram, abandoned + unfinished, p)
            if not figure.judged:  # nobody, or too few people for this percentile (rundir/figures.py)
                continue
            judged = True
            if not figure.meets(limit):
                breaches.append(f"login p{p} {figure.text()} (objective {limit:,.0f} ms)")
            continue
        else:  # no histograms: the worst second's percentile, an upper bound of the bin's
            column = pd.to_numeric(frame[f"time_to_login_p{p}_ms"], errors="coerce")
            measured = None if column.isna().all() else float(column.max())
        if measured is None:
            continue
        judged = True
        if measured > limit:
            breaches.append(f"login p{p} {measured:,.0f} ms > {limit:,.0f} ms")
    sent = float(requests.loc[list(members)].sum())
    if sent > 0 and "error ratio" in limits:
        judged = True
        ratio = float(failures.loc[list(members)].sum()) / sent
        if ratio > limits["error ratio"]:
            breaches.append(f"error ratio {ratio:.2%} > {limits['error ratio']:.2%}")
    return breaches, judged


def _sustained(loads: list[RunLoad], held: list[bool | None], below: RunLoad | None) -> RunLoad | None:
    """The highest offered load held SUSTAINED_BINS bins in a row with every SLO met, below the lowest offered
    load that broke (a quiet stretch above it says nothing of the limit): over each such run of bins, the least
    of their loads (the level held throughout); the highest of those."""
    best: RunLoad | None = None
    for first in range(len(loads) - SUSTAINED_BINS + 1):
        window = range(first, first + SUSTAINED_BINS)
        if not all(held[i] is True and loads[i].offered_per_s > 0 for i in window):  # nothing offered: no test
            continue
        level = RunLoad(
            min(loads[i].requests_per_s for i in window),
            min(loads[i].logins_per_s for i in window),
            loads[first].from_clock,
            loads[first + SUSTAINED_BINS - 1].to_clock,
            offered_per_s=min(loads[i].offered_per_s for i in window),
        )
        if below is not None and level.offered_per_s >= below.offered_per_s:
            continue
        if best is None or _by_load(level) > _by_load(best):
            best = level
    return best


def _within_objective(run: RunFigures, data: RunData, sessions: pd.DataFrame) -> None:
    """People due in the SLO window who logged in within the login p95 objective, to the histograms' 1%
    resolution (a value counts when its bucket's highest value is within, as percentiles are read)."""
    low, high = data.slo_seconds() or (0.0, math.inf)
    cohort = sessions[(sessions.index >= low) & (sessions.index < high)]
    run.tried = int(pd.to_numeric(cohort[Counter.STARTED], errors="coerce").fillna(0).sum())
    if not data.histograms or math.isnan(run.objective_ms):
        return
    within = count_at_or_below((h for second, h in data.histograms.items() if low <= second < high), run.objective_ms)
    run.within_objective = within
