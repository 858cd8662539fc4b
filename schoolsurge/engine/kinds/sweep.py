"""A capacity sweep as the engine runs it (`schoolsurge capacity`): the scenario's mix at a constant arrival rate
per step (models/sweep.py), each step measured on its settled part, the stop rule, capacity.csv.

The figures of a step come from the run's ledger (merged over the workers on the master): counters by the
person's intended arrival (their cohort) or by the second things happened (requests, failures), gauges sampled
every second, histograms merged. Time to log in counts the people who gave up logging in as never logged in,
so a platform that turns people away cannot look fast.

The stop rule: a step whose error ratio or login percentile exceeds its objective by the sweep's stop margin
ends the planned steps, a few seconds after the step (the workers' figures reach the master every few seconds);
the planned steps not run are written as skipped.

Refinement: once the planned steps end, the sweep bisects the range between the highest offered load that held
and the lowest that broke (rundir `offered_range`, as the answer reads it) until it is within the sweep's
`refine_within` or `refine_steps` refinement steps have run. Each refinement step is a real step, settled and
judged as the planned ones: its level (the range's geometric middle) is chosen once the step before is judged,
and it starts a second after that; the arrivals planned from then on are replaced by its own on every process
(roles.py `change_schedule`). capacity.csv lists it after the planned steps, `phase` refinement.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import gevent
import numpy as np

from schoolsurge.engine.kinds.base import MIN_SCRAPE_EVERY_S, SCRAPE_EVERY_S, EngineView, Kind
from schoolsurge.engine.ledger import Ledger, SecondMetrics
from schoolsurge.engine.share import FleetStatus
from schoolsurge.files import atomic_file
from schoolsurge.models.sweep import RefineStep, SweepReplay, range_width, refine_level
from schoolsurge.rundir import (
    CAPACITY_COLUMNS,
    CAPACITY_CSV,
    FAILURE_COUNTERS,
    TIME_TO_LOGIN_PERCENTILES,
    Counter,
    Gauge,
    RunKind,
    StepPhase,
    StepStatus,
    login_percentile_value,
    merged,
    min_people,
    offered_range,
)
from schoolsurge.scenario import Slo

JUDGE_AFTER_S = 4.0  # after a step ends: the workers' last figures of it have reached the master
SCRAPES_PER_SWEEP_STEP = 3  # a step's measured part gets at least this many scrapes (down to 1 s apart)
REFINE_LEAD_S = 1.0  # a refinement step starts this long after its level is chosen: the workers hear it first
log = logging.getLogger(__name__)


class SweepRun(Kind):
    """A sweep ends at its last step, or after the step that broke the stop rule: it is not drained."""

    name = RunKind.SWEEP
    persona_users_refused = (
        "a capacity sweep replays open arrivals: run it with `schoolsurge capacity`, not the persona users"
    )

    def __init__(self, engine: EngineView, replay: SweepReplay) -> None:
        super().__init__(engine)
        self.replay = replay
        self.stopped_after: int | None = None  # the step that breached past the stop margin, if one did
        self.refinements: list[RefineStep] = []  # the refinement steps chosen so far
        self.refinement_people: list[int] = []  # how many people each of them schedules (the whole run's)
        self.finished = False  # with refinement: the watcher has judged the last step it will run

    def test_started(self, start_unix: float) -> None:
        self.stopped_after, self.refinements, self.refinement_people, self.finished = None, [], [], False
        self.engine.spawn(self._watch)

    def ended(self, run_s: float, status: FleetStatus) -> bool:
        if self.replay.refine_steps:  # the last planned step is judged first: refinement may follow it
            return self.finished
        return run_s >= self.replay.planned_s or self.stopped_after is not None

    def progress_clock(self, run_s: float) -> str:
        """The step running (planned, or refinement), its level, and how many of its own people have arrived: the
        line's "arrived x/y" counts the whole sweep so far, whose people a refinement step adds to as it is chosen
        (y includes it once the workers have heard it)."""
        replay = self.replay
        if self.refinements:
            refinement = self.refinements[-1]
            (start, measured_from, end), people = replay.bounds_from(refinement.start_s), self.refinement_people[-1]
            where = f"refinement {len(self.refinements)}/{replay.refine_steps} {refinement.rate:.2f}/s"
        else:
            step = replay.step_at(run_s)
            start, measured_from, end = replay.step_bounds(step)
            times = self.engine.share.schedule.arrays.at_s
            people = int(np.searchsorted(times, end, side="left") - np.searchsorted(times, start, side="left"))
            where = f"step {step + 1}/{len(replay.rates)} {replay.rates[step]:.2f}/s"
        ledger = self.engine.ledger()
        arrived = sum(
            ledger.seconds[second].counters.get(Counter.STARTED, 0)
            for second in range(math.floor(start), math.ceil(end))
            if second in ledger.seconds
        )
        return f"{where}{' settling' if run_s < measured_from else ''}, its people {arrived}/{people} arrived"

    def apply_schedule_change(self, change: dict[str, Any]) -> None:
        """A refinement step: from its start on, its arrivals instead of the planned steps' (this process's part)."""
        step = RefineStep.from_wire(change)
        arrivals = self.replay.refinement_arrays(self.engine.context.seed, step)
        size = self.engine.share.replace_from(step.start_s, arrivals)
        log.info(
            "refinement step %d at %.3f/s from %.0f s: %d arrivals here", step.step + 1, step.rate, step.start_s, size
        )

    def describe_schedule_change(self, change: dict[str, Any]) -> tuple[str, float]:
        step = RefineStep.from_wire(change)
        return f"refinement step {step.step + 1}", step.start_s

    def part_arrival_times(self, parts: int, index: int) -> np.ndarray:
        """The planned part, each refinement step's part replacing it from the step's start (as every process
        replaces its own: share.py `replace_from`)."""
        times = super().part_arrival_times(parts, index)
        for step in self.refinements:
            refined = self.replay.refinement_arrays(self.engine.context.seed, step).round_robin(parts, index)
            times = np.concatenate([times[times < step.start_s], refined.at_s])
        return times

    def scrape_every_s(self) -> float:
        """5 s, and at least SCRAPES_PER_SWEEP_STEP scrapes in each step's measured part."""
        measure_s = self.replay.measure_s
        if not measure_s:
            return SCRAPE_EVERY_S
        return max(MIN_SCRAPE_EVERY_S, min(SCRAPE_EVERY_S, float(measure_s) / SCRAPES_PER_SWEEP_STEP))

    def manifest_fields(self) -> dict[str, Any]:
        replay = self.replay
        sweep = {
            "steps": len(replay.multiples),
            "multiples_of_peak": [round(m, 5) for m in replay.multiples],
            "offered_arrivals_per_s": [round(r, 4) for r in replay.rates],
            "settle_s": round(replay.settle_s, 2),
            "measure_s": replay.measure_s,
            "stop_margin": replay.stop_margin,
            "load_fraction": replay.load_fraction,
            "refine_within": replay.refine_within,
            "refine_steps": replay.refine_steps,
        }
        return {**super().manifest_fields(), "sweep": sweep}

    def write_files(self, run_dir: Path, ledger: Ledger) -> None:
        """capacity.csv: every step's row, as far as the test ran."""
        engine = self.engine
        ran_s = engine.stopped_at_s
        if ran_s is None:
            ran_s = engine.share.queue.run_seconds()
        slo = engine.context.scenario.slo
        rows = sweep_rows(ledger, self.replay, slo, self.stopped_after, ran_s)
        rows += refinement_rows(ledger, self.replay, slo, self.refinements, ran_s)
        write_capacity_csv(rows, run_dir / CAPACITY_CSV)

    def _watch(self) -> None:
        """On the process that keeps the results: judge each step once its figures are in; stop past the margin;
        then refine near the break."""
        try:
            judged = self._run_planned()
            if self.replay.refine_steps:
                self._refine(judged)
        finally:
            self.finished = True  # the load shape ends the test at its next tick

    def _wait_judged(self, end_s: float) -> None:
        queue = self.engine.share.queue
        while queue.run_seconds() < end_s + JUDGE_AFTER_S:
            gevent.sleep(0.5)

    def _run_planned(self) -> list[tuple[float, bool]]:
        """Judge the planned steps as they end, until one breaks the stop rule; their (offered, held)."""
        replay, engine = self.replay, self.engine
        slo = engine.context.scenario.slo
        judged: list[tuple[float, bool]] = []
        last = len(replay.multiples) - 1
        for step in range(len(replay.multiples)):
            self._wait_judged(replay.step_bounds(step)[2])
            if step == last and not replay.refine_steps:
                break  # the load shape ends the test at the last step's end
            row = measure_step(engine.ledger(), replay, step, slo)
            if row["slo_met"] != "":
                judged.append((replay.rates[step], bool(row["slo_met"])))
            breaches = step_breaches(row, slo, replay.stop_margin)
            if breaches and step < last:
                log.warning("sweep stopped after step %d: %s", step + 1, "; ".join(breaches))
                print(f"schoolsurge: sweep stopped after step {step + 1} ({'; '.join(breaches)})", flush=True)
                self.stopped_after = step
                break
        return judged

    def choose_refinement(self, rate: float, start_s: float) -> RefineStep:
        """The next refinement step, at `rate` from run second `start_s`: its people continue each group's after
        the steps before (accounts keep cycling), and it counts them for the progress line."""
        replay, seed = self.replay, self.engine.context.seed
        drawn = np.array(replay.people_drawn(self.engine.share.schedule.arrays))
        for chosen in self.refinements:
            drawn += replay.people_drawn(replay.refinement_arrays(seed, chosen))
        step = RefineStep(len(replay.multiples) + len(self.refinements), rate, start_s, tuple(int(n) for n in drawn))
        self.refinements.append(step)
        self.refinement_people.append(len(replay.refinement_arrays(seed, step)))
        return step

    def _refine(self, judged: list[tuple[float, bool]]) -> None:
        """Bisect [highest that held, lowest that broke] with measured steps until it is narrow enough or the
        refinement steps are spent."""
        replay, engine = self.replay, self.engine
        slo, queue = engine.context.scenario.slo, engine.share.queue
        while True:
            found = offered_range(judged)
            if found.held is None or found.broke is None:
                say = "every step held" if found.broke is None else "the first step broke"
                print(f"schoolsurge: no refinement: {say}, so no range to narrow", flush=True)
                return
            width = range_width(found.held, found.broke)
            if width <= replay.refine_within or len(self.refinements) == replay.refine_steps:
                spent = width > replay.refine_within
                print(
                    f"schoolsurge: capacity range {found.held:.3f}-{found.broke:.3f} arrivals/s (run terms), "
                    f"{width:.0%} wide after {len(self.refinements)} refinement step"
                    f"{'' if len(self.refinements) == 1 else 's'}"
                    + (f" (the budget of {replay.refine_steps} steps ran out)" if spent else ""),
                    flush=True,
                )
                return
            rate = refine_level(found.held, found.broke)
            step = self.choose_refinement(rate, math.ceil(queue.run_seconds()) + REFINE_LEAD_S)
            print(
                f"schoolsurge: refinement step {step.step + 1} at {rate:.3f} arrivals/s (run terms): the range "
                f"{found.held:.3f}-{found.broke:.3f} is {width:.0%} wide",
                flush=True,
            )
            engine.change_schedule(step.to_wire())
            end_s = replay.bounds_from(step.start_s)[2]
            self._wait_judged(end_s)
            row = measure_step(engine.ledger(), replay, step.step, slo, step)
            if row["slo_met"] == "":
                print(f"schoolsurge: refinement step {step.step + 1} measured nothing; refinement ends", flush=True)
                return
            judged.append((rate, bool(row["slo_met"])))


def measure_step(
    ledger: Ledger, replay: SweepReplay, step: int, slo: Slo, refinement: RefineStep | None = None
) -> dict[str, Any]:
    """One row of capacity.csv for a step (a planned one, or a refinement step), from the seconds of its settled
    part."""
    if refinement is None:
        (start, measured_from, end), rate = replay.step_bounds(step), replay.rates[step]
    else:
        (start, measured_from, end), rate = replay.bounds_from(refinement.start_s), refinement.rate
    seconds = [ledger.seconds.get(s, SecondMetrics()) for s in range(math.ceil(measured_from), math.floor(end))]
    span = max(len(seconds), 1)

    def total(name: Counter) -> int:
        return sum(b.counters.get(name, 0) for b in seconds)

    def mean(name: Gauge) -> float:
        return sum(b.gauges.get(name, 0) for b in seconds) / span

    requests = total(Counter.REQUESTS)
    failures = sum(total(counter) for counter in FAILURE_COUNTERS)
    abandoned = total(Counter.ABANDONED)
    logins = merged(b.time_to_login for b in seconds if b.time_to_login is not None)
    latency = merged(b.request_latency for b in seconds if b.request_latency is not None)
    row: dict[str, Any] = {
        "step": step + 1,
        "status": StepStatus.MEASURED.value,
        "phase": (StepPhase.PLANNED if refinement is None else StepPhase.REFINEMENT).value,
        "offered_arrivals_per_s": round(rate, 4),
        "national_arrivals_per_s": round(rate / replay.load_fraction, 1),
        "start_s": round(start, 1),
        "measured_from_s": round(measured_from, 1),
        "end_s": round(end, 1),
        "arrivals": total(Counter.STARTED),
        "logins_per_s": round(total(Counter.LOGINS_SUCCEEDED) / span, 4),
        "requests_per_s": round(requests / span, 3),
        "successful_requests_per_s": round((requests - failures) / span, 3),
        "concurrency": round(mean(Gauge.ACTIVE_SESSIONS), 2),
        "in_virtual_class": round(mean(Gauge.IN_VIRTUAL_CLASS), 2),
        "error_ratio": round(failures / requests, 5) if requests else "",
        "late": total(Counter.LATE),
        "dropped": total(Counter.DROPPED),
        "gave_up": abandoned + total(Counter.GAVE_UP_PAGE),
        "generator_cpu_percent": round(mean(Gauge.GENERATOR_CPU_PERCENT), 1),
    }
    for counter in FAILURE_COUNTERS:
        row[f"{counter.value}_per_s"] = round(total(counter) / span, 4)
    for p in TIME_TO_LOGIN_PERCENTILES:
        value = login_percentile_value(logins, abandoned, p)
        row[f"time_to_login_p{p}_ms"] = "" if value is None else value if math.isinf(value) else round(value)
        row[f"request_latency_p{p}_ms"] = latency.get_value_at_percentile(p) if latency.get_total_count() else ""
    if not requests and not row["arrivals"]:  # nothing measured (a step cut short): not judged
        row["slo_met"], row["breaches"] = "", ""
        return row
    breaches = step_breaches(row, slo, 1.0)
    row["slo_met"] = not breaches
    row["breaches"] = "; ".join(breaches)
    return row


def step_breaches(row: dict[str, Any], slo: Slo, margin: float) -> list[str]:
    """The objectives a step's figures exceed by more than `margin` times (1: the SLOs themselves)."""
    breaches = []
    for p, objective in ((50, slo.login_p50_ms), (95, slo.login_p95_ms), (99, slo.login_p99_ms)):
        measured = row[f"time_to_login_p{p}_ms"]
        if objective is None:
            continue
        people = int(row["arrivals"] or 0)
        if people < min_people(p):  # too few people for this percentile: it judges nothing (rundir/figures.py)
            continue
        if measured == "":
            breaches.append(f"login p{p}: nobody logged in (objective {objective:.0f} ms)")
        elif math.isinf(measured):
            breaches.append(f"login p{p}: {row['gave_up']} of {people} gave up (objective {objective:.0f} ms)")
        elif measured > objective * margin:
            breaches.append(f"login p{p} {measured:.0f} ms > {margin:g} x {objective:.0f} ms")
    ratio = row["error_ratio"]
    if ratio != "" and ratio > slo.error_ratio * margin:
        breaches.append(f"error ratio {ratio:.2%} > {margin:g} x {slo.error_ratio:.2%}")
    return breaches


def sweep_rows(ledger: Ledger, replay: SweepReplay, slo: Slo, stopped_after: int | None, ran_s: float) -> list[dict]:
    """Every step's row: measured, the one that stopped the sweep, those cut short, those skipped."""
    rows = []
    for step in range(len(replay.multiples)):
        start, _, end = replay.step_bounds(step)
        if (stopped_after is not None and step > stopped_after) or ran_s <= start:
            rate = replay.rates[step]
            rows.append(
                {
                    "step": step + 1,
                    "status": StepStatus.SKIPPED.value,
                    "phase": StepPhase.PLANNED.value,
                    "offered_arrivals_per_s": round(rate, 4),
                    "national_arrivals_per_s": round(rate / replay.load_fraction, 1),
                    "start_s": round(start, 1),
                    "measured_from_s": round(start + replay.settle_s, 1),
                    "end_s": round(end, 1),
                }
            )
            continue
        row = measure_step(ledger, replay, step, slo)
        if step == stopped_after:
            row["status"] = StepStatus.STOPPED.value
        elif ran_s < end:
            row["status"] = StepStatus.INCOMPLETE.value
        rows.append(row)
    return rows


def refinement_rows(
    ledger: Ledger, replay: SweepReplay, slo: Slo, refinements: list[RefineStep], ran_s: float
) -> list[dict]:
    """The refinement steps' rows, after the planned steps'; one the run stopped in is incomplete."""
    rows = []
    for refinement in refinements:
        row = measure_step(ledger, replay, refinement.step, slo, refinement)
        if ran_s < replay.bounds_from(refinement.start_s)[2]:
            row["status"] = StepStatus.INCOMPLETE.value
        rows.append(row)
    return rows


def write_capacity_csv(rows: list[dict], path: Path) -> None:
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=CAPACITY_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
