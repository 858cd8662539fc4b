"""The capacity card in words: the headline sentences a planner pastes into a memo, and the wording of its
numbers (rates, people, durations, latencies) that the card's table shares.

Every figure of a sentence says whether it is in run terms (this run's people and clock) or national terms
(rates divided by the load fraction, scale x speed, and people by the scale). The functions read a
CapacityCard (report/capacity_card.py, whose `headline()` calls `headline` here) and compute nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from schoolsurge.report.outcome import PUBLISHED_2021_REACHED, PUBLISHED_2021_SHARE, PUBLISHED_2021_TRIED
from schoolsurge.rundir import StepStatus

if TYPE_CHECKING:
    from schoolsurge.models.capacity import NationalAnswer
    from schoolsurge.report.capacity_card import CapacityCard, RunLoad


def headline(card: CapacityCard) -> list[str]:
    """Sentences a planner can paste into a memo; each figure says run terms or national terms."""
    return _sweep_headline(card) if card.kind == "sweep" else _run_headline(card)


# ---- a sweep's sentences -----------------------------------------------------------------------------------


def _sweep_headline(card: CapacityCard) -> list[str]:
    lines = [_slo_sentence(card), _usl_sentence(card), _knee_sentence(card)]
    if card.national is not None:
        lines.append(_national_sentence(card, card.national))
    lines += _step_sentences(card)
    return [line for line in lines if line]


def _slo_sentence(card: CapacityCard) -> str:
    capacity = card.slo_requests
    if capacity is None:
        return "The SLO capacity is not known: the scenario (and so its objectives) could not be read."
    measured = card.measured_steps
    if capacity.throughput is None:
        if measured.empty:
            return "No step was measured whole: there is no SLO capacity to give."
        first = measured.iloc[0]
        return (
            f"No measured step met every SLO: already at the lowest load, "
            f"{_pair(card, first['successful_requests_per_s'], first['logins_per_s'])}, "
            f"{capacity.limiting_objective} broke."
        )
    figures = _pair(card, capacity.throughput, card.slo_logins_per_s)
    if capacity.beyond_measured:
        return (
            f"This platform holds at least {figures} with every SLO met: every measured step held them, so "
            "its capacity lies above the highest step; sweep higher (--sweep-high) to find where they break."
        )
    return f"This platform holds {figures} with every SLO met; past that, {capacity.limiting_objective} breaks first."


def _pair(card: CapacityCard, requests: float | None, logins: float | None) -> str:
    """'41 successful requests/s and 1.2 logins/s (run terms; 11,400 requests/s and 330 logins/s nationally)'."""
    run = f"{_rate(requests)} successful requests/s"
    if logins is not None:
        run += f" and {_rate(logins)} logins/s"
    national_requests, national_logins = card.national_rate(requests), card.national_rate(logins)
    if national_requests is None:
        return f"{run} (run terms; national terms unknown without the run's scale and speed)"
    national = f"{_rate(national_requests)} requests/s"
    if national_logins is not None:
        national += f" and {_rate(national_logins)} logins/s"
    return f"{run} (run terms; {national} nationally)"


def _usl_sentence(card: CapacityCard) -> str:
    fit = card.usl
    if fit is None:
        if not card.usl_error:
            return ""
        return f"The USL could not be fitted to the measured steps: {card.usl_error.rstrip('.')}."
    quality = f"USL fit, R² {fit.r_squared:.2f}"
    peak_n, peak_x = fit.peak_concurrency, fit.peak_throughput
    if peak_n is not None and peak_x is not None:
        people = card.national_people(peak_n)
        people_text = f"run terms; about {_people(people)} nationally" if people is not None else "run terms"
        national_x = card.national_rate(peak_x)
        x_text = f"{_rate(national_x)} nationally" if national_x is not None else "national terms unknown"
        return (
            f"Peak throughput N* = {_count(peak_n)} people in a session ({people_text}; {quality}, contention "
            f"α = {fit.alpha:.3g}, coherency β = {fit.beta:.3g}) delivers X(N*) = {_rate(peak_x)} successful "
            f"requests/s (run terms; {x_text}): past N*, more people get less done."
        )
    ceiling = fit.amdahl_ceiling
    if ceiling is not None:
        national = card.national_rate(ceiling)
        national_text = f"; {_rate(national)} nationally" if national is not None else ""
        return (
            f"Throughput has no peak in the measured range ({quality}, coherency β = 0): it levels off towards "
            f"the Amdahl ceiling γ/α = {_rate(ceiling)} successful requests/s (run terms{national_text})."
        )
    return (
        f"Throughput grows in proportion to the people in a session over the measured range ({quality}, no "
        "contention or coherency measured): the sweep did not reach the platform's limit."
    )


def _knee_sentence(card: CapacityCard) -> str:
    if card.knee_measure is None:
        return "No latency was measured at enough steps to find the knee of latency against throughput."
    if card.knee_requests_per_s is None:
        return f"No knee in {card.knee_measure} against throughput over the measured steps: it rose evenly."
    national = card.national_rate(card.knee_requests_per_s)
    national_text = f"; {_rate(national)} nationally" if national is not None else ""
    at = f" ({_ms(card.knee_latency_ms)} there)" if card.knee_latency_ms is not None else ""
    return (
        f"The knee of latency is at {_rate(card.knee_requests_per_s)} successful requests/s (run terms"
        f"{national_text}): past it, {card.knee_measure} climbs steeply{at}."
    )


def _national_sentence(card: CapacityCard, answer: NationalAnswer) -> str:
    morning = f"The {card.scenario} morning ({card.window})"
    if answer.instances_needed is None:
        return (
            f"{morning} asks up to {_rate(answer.peak_demand_logins_per_s)} logins/s at "
            f"{answer.peak_demand_logins_at} and {_rate(answer.peak_demand_requests_per_s)} requests/s at "
            f"{answer.peak_demand_requests_at} (national terms); with no SLO capacity measured, the instances "
            "it needs are not known."
        )
    if answer.limiting == "logins":
        peak = f"{_rate(answer.peak_demand_logins_per_s)} logins/s at {answer.peak_demand_logins_at}"
    else:
        peak = f"{_rate(answer.peak_demand_requests_per_s)} requests/s at {answer.peak_demand_requests_at}"
    count = answer.instances_needed
    needs = f"{'at most ' if card.slo_requests and card.slo_requests.beyond_measured else ''}{count} "
    needs += "instance" if count == 1 else "instances"
    sentence = (
        f"{morning} needs {needs} of this platform with {answer.headroom:.0%} headroom: its national demand ({peak})"
    )
    if answer.exceeds_from is None:
        return f"{sentence} stays within one instance's capacity all morning."
    return (
        f"{sentence} exceeds one instance's capacity from {answer.exceeds_from} for "
        f"{_duration(answer.exceeds_for_s)} in all, while {_people(answer.people_arriving_while_exceeded)} "
        "people arrive."
    )


def _step_sentences(card: CapacityCard) -> list[str]:
    lines = []
    skipped, stopped = card.steps_with(StepStatus.SKIPPED), card.steps_with(StepStatus.STOPPED)
    if skipped:
        why = (
            f"the sweep stopped after step {stopped[0]}, which breached an objective by its stop margin"
            + (f" ({card.stop_margin:g}x)" if card.stop_margin else "")
            if stopped
            else "the run ended before them"
        )
        lines.append(f"{_steps_text(skipped)} of {len(card.steps)} {_were(skipped)} skipped: {why}.")
    incomplete = card.steps_with(StepStatus.INCOMPLETE)
    if incomplete:
        lines.append(
            f"{_steps_text(incomplete)} {_were(incomplete)} cut short (the run stopped before the measured part "
            "ended) and left out of the figures."
        )
    return lines


# ---- a normal run's sentences ------------------------------------------------------------------------------


def _run_headline(card: CapacityCard) -> list[str]:
    run = card.run
    if run is None:
        return []
    minutes = f"{run.sustained_bins * run.bin_scenario_s / 60:g} scenario minutes"
    lines = []
    if run.held is not None:
        lines.append(
            f"This run held {_load(card, run.held)} for {minutes} in a row ({run.held.from_clock}-"
            f"{run.held.to_clock}) with every SLO met."
        )
    else:
        lines.append(f"The SLOs never held for {minutes} in a row in this run.")
    if run.broke is not None:
        lines.append(
            f"The lowest load at which they broke was {_load(card, run.broke)}, in the minute from "
            f"{run.broke.from_clock}: {'; '.join(run.broke.breaches)}."
        )
    elif run.top is not None:
        lines.append(
            f"They held throughout the run, up to {_load(card, run.top)}: this platform's capacity lies above "
            "that; a capacity sweep (`schoolsurge capacity`) measures it."
        )
    if run.within_objective is not None and run.tried:
        share = run.within_objective / run.tried
        lines.append(
            f"{share:.0%} of the people who tried to log in {run.window} did so within the login p95 objective "
            f"({run.objective_ms:,.0f} ms): {run.within_objective:,} of {run.tried:,} "
            f"{_people_terms(card, run.within_objective, run.tried)}."
        )
    served = run.served
    if served is not None and served.tried:
        lines.append(
            f"In all {served.share:.0%} of them got in, after retries: {served.served:,} of {served.tried:,} "
            f"{_people_terms(card, served.served, served.tried)}; on 6 April 2021, {PUBLISHED_2021_SHARE:.0%} did "
            f"({PUBLISHED_2021_REACHED:,} of about {PUBLISHED_2021_TRIED:,}, national terms)."
        )
    return lines


def _load(card: CapacityCard, load: RunLoad) -> str:
    requests, logins = card.national_rate(load.requests_per_s), card.national_rate(load.logins_per_s)
    if card.run is not None and not card.run.requests_known:  # only logins were counted
        national = f"; {_rate(logins)} logins/s nationally" if logins is not None else ""
        return f"{_rate(load.logins_per_s)} logins/s (run terms{national})"
    run = f"{_rate(load.requests_per_s)} people's requests/s and {_rate(load.logins_per_s)} logins/s"
    if requests is None or logins is None:
        return f"{run} (run terms)"
    return f"{run} (run terms; {_rate(requests)} requests/s and {_rate(logins)} logins/s nationally)"


def _people_terms(card: CapacityCard, part: int, whole: int) -> str:
    national_part, national_whole = card.national_people(part), card.national_people(whole)
    if national_part is None or national_whole is None:
        return "(run terms)"
    return f"(run terms; about {_people(national_part)} of {_people(national_whole)} nationally)"


# ---- wording -----------------------------------------------------------------------------------------------


def _significant(value: float, digits: int = 3) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _rate(value: float | None) -> str:
    """A rate as a memo writes it: 11,400 / 1,849 / 41 / 1.2 / 0.035."""
    if value is None or not math.isfinite(value):
        return "?"
    size = abs(value)
    if size >= 10_000:
        return f"{_significant(value):,.0f}"
    if size >= 10:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:.1f}"
    return "0" if size == 0 else f"{value:.2g}"


def _people(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f} million"
    if abs(value) >= 10_000:
        return f"{_significant(value):,.0f}"
    return f"{value:,.0f}"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _ms(value: float | None) -> str:
    return "?" if value is None else "never (people gave up)" if math.isinf(value) else f"{value:,.0f} ms"


def _ms_cell(value: float) -> str:
    return "gave up" if math.isinf(value) else f"{value:,.0f}"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _opt(value: float | None, show: Any) -> str:
    return "-" if value is None else show(value)


def _coefficient(value: float, interval: tuple[float, float] | None) -> str:
    if interval is None:
        return f"{value:.4g}"
    return f"{value:.4g} [{interval[0]:.3g}, {interval[1]:.3g}]"


def _steps_text(steps: Sequence[int]) -> str:
    if len(steps) == 1:
        return f"Step {steps[0]}"
    return f"Steps {', '.join(str(s) for s in steps[:-1])} and {steps[-1]}"


def _were(steps: Sequence[int]) -> str:
    return "was" if len(steps) == 1 else "were"
