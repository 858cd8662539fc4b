"""The run's answer (report/outcome/answer.py) from what the report already computed: the verdicts, who got in,
the capacity card (a morning's bins or a sweep's steps), the platform's shed reasons and CPU, the generator's
health. Pure: no file is read here.

    answer = run_answer(data, card, laws, invalid)  # laws: capacity.json's "operational_laws" (None without
                                                    # scrapes); invalid: the run's one validity judgement (health)

Capacity is said on offered load (people arriving to log in per second, rundir/figures.py): the range is [the
highest offered load that held below the lowest that broke, the lowest that broke]; the instances the national
morning needs come from the scenario's national demand against both ends.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from schoolsurge.models.capacity import Demand, national_answer
from schoolsurge.models.sweep import DEFAULT_REFINE_WITHIN
from schoolsurge.report.capacity.card import SUSTAINED_BINS, CapacityCard
from schoolsurge.report.capacity.wording import people_text, rate_text
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.outcome.answer import Answer, Capacity, Instances, Served
from schoolsurge.report.outcome.health import measured_instead
from schoolsurge.report.outcome.served import (
    PUBLISHED_2021_REACHED,
    PUBLISHED_2021_SHARE,
    PUBLISHED_2021_TRIED,
    ServedShare,
    served_share,
)
from schoolsurge.report.outcome.verdicts import judge_run
from schoolsurge.rundir import OfferedRange, StepPhase, offered_range

PLAIN_P95_OBJECTIVE_MS = 1000  # a plain Locust run states no objective: its capacity is judged on this p95
CPU_BUSY = 0.8  # a CPU at least this busy at its busiest window binds
REFERENCE_SCENARIOS = ("first-day-2021", "cyberattack-2021", "datacenter-loss")  # stand for 6 April 2021
SHED_NAMES = {
    "login_rate": "the login-rate limit",
    "request_rate": "the request-rate limit",
    "sessions_full": "the sessions limit",
    "queue_full": "the admission queue (full)",
    "queue_timeout": "the admission queue (timed out)",
}
SWEEP_UNIT = "people arriving to log in per second"
MORNING_UNIT = "login attempts per second (first tries and retries)"


def run_answer(data: RunData, card: CapacityCard | None, laws: dict[str, Any] | None, invalid: str | None) -> Answer:
    """The answer of a loaded run: a sweep's from its steps, a morning's from its minutes, a plain Locust run's
    from Locust's history. `invalid` is why the run is invalid (report/outcome/health.py `invalid_reason`, judged
    once by the caller for the manifest, the report and the answer), None when it is valid."""
    if data.plain_locust:
        return _plain_answer(data)
    answer = _sweep_answer(data, card, laws, invalid) if card is not None and card.kind == "sweep" else None
    answer = answer or _morning_answer(data, card, laws, invalid)
    if invalid is not None:  # what it measured was not the platform: no verdict, capacity or count for it
        answer.invalid, answer.held = invalid, None
        answer.held_text = f"not judged, the run is invalid (its own figures: {answer.held_text})"
        answer.capacity, answer.instances = None, None
        answer.capacity_text = answer.instances_text = "not judged, the run is invalid"
    return answer


# ---- a plain Locust CSV folder -----------------------------------------------------------------------------


def _plain_answer(data: RunData) -> Answer:
    """What Locust's CSV files can say: no scenario (no peak, no people, no nation), so capacity is the highest
    request rate of a history interval with no failure and p95 within PLAIN_P95_OBJECTIVE_MS, the range's top
    the lowest rate of an interval that failed either; rates from the running totals' differences."""
    answer = Answer("locust", None, "not determined: a plain Locust run has no scenario, so no SLO window to judge")
    rows = data.history[data.history["Name"].astype(str) == "Aggregated"].sort_values("Timestamp")
    judged: list[tuple[float, bool]] = []
    if len(rows) > 1:
        seconds = rows["Timestamp"].diff()
        rates = rows["Total Request Count"].diff() / seconds
        failed = rows["Total Failure Count"].diff()
        p95 = pd.to_numeric(rows["95%"], errors="coerce")
        for rate, fail, latency in zip(rates, failed, p95, strict=True):
            if not (rate > 0) or math.isnan(latency):
                continue
            judged.append((float(rate), bool(fail == 0 and latency <= PLAIN_P95_OBJECTIVE_MS)))
    found = offered_range(judged)
    unit = f"requests per second achieved (no failure, p95 <= {PLAIN_P95_OBJECTIVE_MS:,} ms)"
    answer.capacity = Capacity(found.held, found.broke, None, None, found.within, "Locust's history", unit)
    answer.capacity_text = _capacity_text(found, None, None, unit)
    answer.instances_text = "not determined: no scenario, so no national morning to size"
    answer.binds = "not determined: a plain Locust run scrapes none of the platform's metrics (shed reasons, CPU)"
    answer.confidence = (
        f"{len(judged)} intervals of Locust's history; Locust's users are a closed loop, so the rate is what was "
        "achieved, not offered: a schoolsurge run (`schoolsurge run`) offers a scenario's arrivals"
    )
    return answer


# ---- a morning ---------------------------------------------------------------------------------------------


def _morning_answer(
    data: RunData, card: CapacityCard | None, laws: dict[str, Any] | None, invalid: str | None
) -> Answer:
    verdicts = judge_run(data)
    met = sum(v.met for v in verdicts)
    window = data.slo_window_label()
    if not verdicts:
        held, held_text = None, "not determined: the run has no scenario, so no objective to judge"
    else:
        held = met == len(verdicts)
        broken = [v.objective.split(" (")[0] for v in verdicts if not v.met]
        held_text = f"{'yes' if held else 'no'} ({window}): SLOs met {met} of {len(verdicts)}" + (
            f"; breached: {', '.join(broken)}" if broken else ""
        )
    answer = Answer("run", held, held_text, met, len(verdicts))
    answer.served = _served(data)
    found = _morning_range(card)
    _capacity_and_instances(answer, data, card, found, "minutes of the morning", MORNING_UNIT)
    answer.binds, answer.binds_determined = _binds(laws, held, card, invalid)
    bins = card.run.bins if card is not None and card.run is not None else 0
    minutes = card.run.bin_scenario_s / 60 if card is not None and card.run is not None else 0.0
    tried = answer.served.tried if answer.served else 0
    answer.confidence = (
        f"one morning run: {bins} bins of {minutes:g} scenario minutes, {tried:,} people in the SLO window (a "
        f"bin holds few people, a level counts as held only {SUSTAINED_BINS} bins in a row, and a retry storm "
        "offers more than the people arriving); a capacity sweep (`make capacity`) measures the range on steps of "
        "steady load and makes it firmer"
    )
    return answer


def _morning_range(card: CapacityCard | None) -> OfferedRange:
    run = card.run if card is not None else None
    if run is None:
        return OfferedRange(None, None)
    return OfferedRange(run.held.offered_per_s if run.held else None, run.broke.offered_per_s if run.broke else None)


def _served(data: RunData) -> Served | None:
    share = served_share(data)
    if share is None or not share.tried:
        return None
    national = f", about {people_text(share.tried / share.scale)} nationally" if share.scale else ""
    population = f"people of this scenario who tried to log in (every group{national})"
    stands_for_2021 = data.scenario is not None and data.scenario.name in REFERENCE_SCENARIOS
    return Served(
        share.served,
        share.tried,
        share.share,
        share.window,
        population,
        _virtual_class_reference(share, stands_for_2021),
        share.came_for_virtual_class,
        share.reached_virtual_class,
        share.virtual_class_share,
        share.virtual_class_window,
    )


def _virtual_class_reference(share: ServedShare, stands_for_2021: bool) -> str | None:
    """The share of 2021's population in this run (teachers and pupils who came for a virtual class), and 2021's
    own when the scenario stands for 2021."""
    reference = (
        f"6 April 2021: {PUBLISHED_2021_SHARE:.0%} of {PUBLISHED_2021_TRIED:,} ({PUBLISHED_2021_REACHED:,} reached one)"
        if stands_for_2021
        else None
    )
    came, reached, same = share.came_for_virtual_class, share.reached_virtual_class, share.virtual_class_share
    if same is not None:
        national = f", about {people_text(came / share.scale)} nationally" if share.scale else ""
        measured = (
            f"{same:.0%} of the {came:,} teachers and pupils who came for a virtual class {share.virtual_class_window} "
            "reached one "
            f"({reached:,}{national})"
        )
        return f"{measured}; {reference}" if reference else measured
    not_recorded = "this run did not record who came for one (an earlier version)"
    if reference is None:
        return f"teachers and pupils who came for a virtual class: {not_recorded}" if came is None else None
    why = (
        f"{not_recorded}, so its share of that population is not known"
        if came is None
        else f"nobody of this run came for one {share.virtual_class_window}"
    )
    return (
        f"6 April 2021: {PUBLISHED_2021_SHARE:.0%} of the {PUBLISHED_2021_TRIED:,} teachers and pupils who came for a "
        f"virtual class reached one; {why}"
    )


# ---- a sweep -----------------------------------------------------------------------------------------------


def _sweep_answer(data: RunData, card: CapacityCard, laws: dict[str, Any] | None, invalid: str | None) -> Answer:
    measured = card.measured_steps
    judged = [
        (float(row.offered_arrivals_per_s), bool(row.slo_met))
        for row in measured.itertuples()
        if str(row.slo_met) in ("True", "False") or isinstance(row.slo_met, bool)
    ]
    found = offered_range(judged)
    answer = Answer("sweep", None, "")
    _capacity_and_instances(answer, data, card, found, "sweep steps", SWEEP_UNIT)
    instances = answer.instances
    if instances is not None and instances.fewest is not None and instances.fewest > 1:
        answer.held = False
        answer.held_text = (
            f"no: one instance stops meeting the SLOs at {rate_text(answer.capacity.broke_per_s_national)} "
            f"{SWEEP_UNIT} nationally (a measured step), below the morning's peak of "
            f"{rate_text(instances.peak_per_s_national)}"
            if answer.capacity is not None
            else "no"
        )
    elif instances is not None and instances.needed == 1:
        answer.held = True
        answer.held_text = "yes: one instance held a step above the morning's peak with its headroom"
    else:
        answer.held_text = "not determined: the sweep's range does not place the morning's peak"
    answer.binds, answer.binds_determined = _binds(laws, answer.held, card, invalid)
    people = measured["arrivals"].dropna()
    fit = f"; USL fit R² {card.usl.r_squared:.2f}" if card.usl is not None else ""
    answer.confidence = (
        f"{len(measured)} measured steps, {int(people.min()) if len(people) else 0}-"
        f"{int(people.max()) if len(people) else 0} people a step{fit}; the range's ends are measured steps"
        f"{_refinement_text(data, measured, found)}"
    )
    return answer


def _refinement_text(data: RunData, measured: pd.DataFrame, found: OfferedRange) -> str:
    """How the sweep's refinement left the range: how many refinement steps ran, the width reached, and whether
    it is within the width asked or the refinement's budget (its steps) ran out first."""
    plan = data.manifest.sweep
    goal = plan.refine_within if plan is not None else None
    refined = int((measured["phase"] == StepPhase.REFINEMENT.value).sum())
    if found.within is None:
        return ""
    if goal is None:  # a sweep from before refinement
        return "" if found.within <= DEFAULT_REFINE_WITHIN else "; more steps near the break narrow it"
    width = f"{found.within:.0%} wide"
    done = f"; {refined} refinement step{'s' if refined != 1 else ''} near the break left it {width}"
    if found.within <= goal:
        return f"{done}, within the {goal:.0%} asked"
    budget = plan.refine_steps if plan is not None else None
    if budget is not None and refined >= budget:
        return (
            f"{done}: the refinement's budget of {budget} step{'s' if budget != 1 else ''} ran out before {goal:.0%} "
            "(--sweep-refine-steps allows more)"
        )
    return f"{done}, not within the {goal:.0%} asked (the refinement stopped early: see the sweep's log)"


# ---- both --------------------------------------------------------------------------------------------------


def _capacity_and_instances(
    answer: Answer, data: RunData, card: CapacityCard | None, found: OfferedRange, measured_on: str, unit: str
) -> None:
    national = card.national_rate if card is not None else (lambda _: None)
    held_n, broke_n = national(found.held), national(found.broke)
    answer.capacity = Capacity(found.held, found.broke, held_n, broke_n, found.within, measured_on, unit)
    answer.capacity_text = _capacity_text(found, held_n, broke_n, unit)
    if card is None or card.load_fraction is None or card.demand is None:
        return
    answer.instances = _instances(card.demand, card, found)
    answer.instances_text = _instances_text(answer.instances)


def _capacity_text(found: OfferedRange, held_n: float | None, broke_n: float | None, unit: str) -> str:
    def both(run: float | None, national: float | None) -> str:
        nat = f" ({rate_text(national)} nationally)" if national is not None else ""
        return f"{rate_text(run)}/s run terms{nat}"

    if found.broke is None and found.held is None:
        return "not determined: no stretch of the run could be judged"
    if found.broke is None:
        return f"above {both(found.held, held_n)}: nothing broke, {unit} offered"
    if found.held is None:
        return (
            f"below {both(found.broke, broke_n)}: the SLOs broke at the lowest {unit} judged, and nothing held below it"
        )
    width = f", within {found.within:.0%}" if found.within is not None else ""
    return (
        f"the SLOs stop being met between {rate_text(found.held)} and {rate_text(found.broke)} {unit} offered "
        f"(run terms; {rate_text(held_n)}-{rate_text(broke_n)} nationally{width}): highest that held, lowest "
        "that broke"
    )


def _instances(demand: Demand, card: CapacityCard, found: OfferedRange) -> Instances:
    fraction = card.load_fraction
    assert fraction is not None

    def count(capacity: float | None) -> tuple[int | None, float, str]:
        answer = national_answer(capacity if capacity and capacity > 0 else None, None, fraction, demand, card.headroom)
        return answer.instances_needed, answer.peak_demand_logins_per_s, answer.peak_demand_logins_at

    needed, peak, at = count(found.held)
    fewest, _, _ = count(found.broke)
    return Instances(needed, fewest, card.headroom, peak, at)


def _instances_text(instances: Instances) -> str:
    peak = (
        f"the morning's peak of {rate_text(instances.peak_per_s_national)} {SWEEP_UNIT} (national, at "
        f"{instances.peak_at})"
    )
    headroom = f"{instances.headroom:.0%} headroom"
    if instances.needed is not None and instances.fewest is not None:
        if instances.needed == instances.fewest:
            return f"{instances.needed} for {peak} with {headroom}"
        return (
            f"{instances.needed} for {peak} with {headroom} (range {instances.fewest}-{instances.needed}: from the "
            "load that broke to the load that held)"
        )
    if instances.fewest is not None:
        return f"more than {instances.fewest - 1}: at least {instances.fewest} for {peak} with {headroom}"
    if instances.needed is not None:
        return f"at most {instances.needed} for {peak} with {headroom} (nothing broke: the capacity lies above)"
    return "not determined: no capacity measured"


def _binds(
    laws: dict[str, Any] | None, held: bool | None, card: CapacityCard | None, invalid: str | None
) -> tuple[str, bool]:
    """What limits first, from the evidence, in one sentence naming its figure; or "not determined" and why."""
    if invalid is not None:
        return f"not the platform: this run measured {measured_instead(invalid)}", True
    if laws is None:
        return "not determined: the run did not scrape the platform's metrics (shed reasons, CPU)", False
    shed = {reason: count for reason, count in (laws.get("shed_by_reason") or {}).items() if count}
    cpu = laws.get("peak_utilisation")
    cpu_text = f"CPU at most {cpu:.0%} busy" if isinstance(cpu, int | float) and math.isfinite(cpu) else "CPU unknown"
    if shed:
        reason, count = max(shed.items(), key=lambda item: item[1])
        limit = _limit_text(laws, reason, card)
        return (
            f"{SHED_NAMES.get(reason, reason)}{limit}: the platform shed {count:,.0f} requests at it "
            f"({reason}); {cpu_text}",
            True,
        )
    if isinstance(cpu, int | float) and cpu >= CPU_BUSY:
        return f"the platform's CPU: {cpu_text}, nothing shed", True
    if held is False:
        return (
            f"not determined: an objective broke with nothing shed and the {cpu_text} (below {CPU_BUSY:.0%}); "
            "no scraped resource was at its limit (see the latency and platform sections)",
            False,
        )
    return f"not determined: nothing was at its limit within this load (nothing shed, {cpu_text})", False


def _limit_text(laws: dict[str, Any], reason: str, card: CapacityCard | None) -> str:
    """The login-rate limit's value, run and national terms, when the platform said it (its gauge)."""
    run = laws.get("login_rate_limit_per_s")
    if reason != "login_rate" or not isinstance(run, int | float) or not math.isfinite(run):
        return ""
    national = card.national_rate(run) if card is not None else None
    nat = f", {rate_text(national)}/s nationally" if national is not None else ""
    return f" ({rate_text(run)} logins/s run terms{nat})"
