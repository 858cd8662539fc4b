"""A capacity sweep's card: its figures (the USL fit, the knee, the SLO capacity, the national answer) as the
report's sentences and table, its steps as report cells, and its part of capacity.json. Built by
capacity/sweep.py from the sweep's capacity.csv.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from schoolsurge.models.capacity import NationalAnswer
from schoolsurge.report.capacity.card import CapacityCard
from schoolsurge.report.capacity.wording import (
    coefficient_text,
    count_text,
    duration_text,
    ms_cell,
    ms_text,
    or_dash,
    people_text,
    rate_text,
    steps_text,
    were,
)
from schoolsurge.report.platform.laws import OperationalLaws, sweep_laws
from schoolsurge.report.platform.series import PlatformSeries
from schoolsurge.rundir import TIME_TO_LOGIN_PERCENTILES, StepStatus

KNEE_MIN_SHARE = 0.10  # a knee is meaningful when latency past it reaches 10% of the login p95 objective


@dataclass
class SweepCard(CapacityCard):
    """A sweep's capacity answer: steps, fit, knee, SLO capacity and the national answer."""

    kind = "sweep"

    def headline(self) -> list[str]:
        lines = [_slo_sentence(self), _usl_sentence(self), _knee_sentence(self)]
        if self.national is not None:
            lines.append(_national_sentence(self, self.national))
        lines += _step_sentences(self)
        return [line for line in lines if line]

    def figures(self) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        rate = self.rate_row
        fit = self.usl
        if fit is not None and shed_steps(self):
            rows.append(("USL fit", "flagged: an admission limit refused work (the steps' 503/429)", "-"))
        if fit is not None:
            rows.append(
                (
                    "N* (people in a session at peak throughput)",
                    or_dash(fit.peak_concurrency, count_text),
                    or_dash(self.national_people(fit.peak_concurrency), people_text),
                )
            )
            rows.append(rate("X(N*) peak throughput, successful requests/s", fit.peak_throughput))
            rows.append(rate("Amdahl ceiling γ/α, successful requests/s", fit.amdahl_ceiling))
            rows.append(("α contention (95% CI)", coefficient_text(fit.alpha, fit.alpha_ci), "-"))
            rows.append(("β coherency (95% CI)", coefficient_text(fit.beta, fit.beta_ci), "-"))
            rows.append(("γ requests/s of one person alone (95% CI)", coefficient_text(fit.gamma, fit.gamma_ci), "-"))
            rows.append(("R² of the USL fit", f"{fit.r_squared:.3f} ({fit.points} steps)", "-"))
        elif self.usl_error:
            rows.append(("USL fit", f"not fitted: {self.usl_error}", "-"))
        if self.knee_measure is not None and knee_is_meaningful(self):
            rows.append(rate(f"knee of {self.knee_measure}, successful requests/s", self.knee_requests_per_s))
        if self.slo_requests is not None:
            prefix = "at least " if self.slo_requests.beyond_measured else ""
            rows.append(rate("SLO capacity, successful requests/s", self.slo_requests_per_s, prefix))
            rows.append(rate("SLO capacity, logins/s", self.slo_logins_per_s, prefix))
            rows.append(("objective that breaks first", self.slo_requests.limiting_objective or "none broke", "-"))
        answer = self.national
        if answer is not None:
            rows.append(
                (
                    "national peak demand, logins/s",
                    "-",
                    f"{rate_text(answer.peak_demand_logins_per_s)} at {answer.peak_demand_logins_at}",
                )
            )
            rows.append(
                (
                    "national peak demand, requests/s",
                    "-",
                    f"{rate_text(answer.peak_demand_requests_per_s)} at {answer.peak_demand_requests_at}",
                )
            )
            rows.append(("headroom", "-", f"{answer.headroom:.0%}"))
            if answer.exceeds_from is not None:
                rows.append(
                    (
                        "one instance is exceeded",
                        "-",
                        f"from {answer.exceeds_from}, {duration_text(answer.exceeds_for_s)} in all, "
                        f"{people_text(answer.people_arriving_while_exceeded)} people arriving",
                    )
                )
        if self.load_fraction is not None:
            rows.append(("load fraction (scale x speed)", f"{self.load_fraction:.4g}", "1"))
        return rows

    def step_table(self) -> tuple[list[str], list[list[str]]]:
        """The sweep's steps as report columns and cells; skipped steps show as skipped with no figures."""
        columns = [
            ("step", "step", count_text),
            ("status", "status", str),
            ("offered arrivals/s", "offered_arrivals_per_s", rate_text),
            ("N (in a session)", "concurrency", rate_text),
            ("logins/s", "logins_per_s", rate_text),
            ("requests/s", "requests_per_s", rate_text),
            ("successful/s", "successful_requests_per_s", rate_text),
            ("error ratio", "error_ratio", lambda v: f"{v:.2%}"),
            *((f"login p{p} ms", f"time_to_login_p{p}_ms", ms_cell) for p in TIME_TO_LOGIN_PERCENTILES),
            *((f"request p{p} ms", f"request_latency_p{p}_ms", ms_cell) for p in TIME_TO_LOGIN_PERCENTILES),
            ("late", "late", count_text),
            ("dropped", "dropped", count_text),
            ("gave up", "gave_up", count_text),
            ("generator CPU %", "generator_cpu_percent", lambda v: f"{v:.0f}"),
            ("SLOs met", "slo_met", lambda v: "-" if v is None else "yes" if v else "no"),
            ("breaches", "breaches", str),
        ]
        rows = []
        for record in self.steps.to_dict("records") if self.steps is not None else []:
            skipped = record["status"] == StepStatus.SKIPPED.value
            cells = []
            for _, key, show in columns:
                value = record.get(key)
                if skipped and key not in ("step", "status", "offered_arrivals_per_s"):
                    cells.append("")
                elif value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
                    cells.append("-")
                else:
                    cells.append(show(value))
            rows.append(cells)
        return [label for label, _, _ in columns], rows

    def step_marks(self) -> list[tuple[float, str]]:
        if self.steps is None:
            return []
        steps = self.steps[self.steps["status"] != StepStatus.SKIPPED.value]
        starts = pd.to_numeric(steps["start_s"], errors="coerce")
        return [(float(x), f"step {int(step)}") for step, x in zip(steps["step"], starts, strict=True) if pd.notna(x)]

    def answer(self) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        fit = self.usl
        answer["usl"] = fit.to_dict() if fit is not None else {"error": self.usl_error}
        if fit is not None:
            answer["usl"]["peak_concurrency_national"] = self.national_people(fit.peak_concurrency)
            answer["usl"]["peak_throughput_national"] = self.national_rate(fit.peak_throughput)
        answer["knee"] = {
            "measure": self.knee_measure,
            "successful_requests_per_s": self.knee_requests_per_s,
            "successful_requests_per_s_national": self.national_rate(self.knee_requests_per_s),
            "latency_ms": self.knee_latency_ms,
        }
        if self.slo_requests is not None:
            answer["slo_capacity"] = {
                **self.slo_requests.to_dict(),
                "successful_requests_per_s": self.slo_requests_per_s,
                "logins_per_s": self.slo_logins_per_s,
                "successful_requests_per_s_national": self.national_rate(self.slo_requests_per_s),
                "logins_per_s_national": self.national_rate(self.slo_logins_per_s),
            }
        answer["national"] = self.national.to_dict() if self.national is not None else None
        answer["steps"] = self.steps.to_dict("records") if self.steps is not None else []
        answer["skipped_steps"] = self.steps_with(StepStatus.SKIPPED)
        answer["incomplete_steps"] = self.steps_with(StepStatus.INCOMPLETE)
        answer["stop_margin"] = self.stop_margin
        return answer

    def operational_laws(
        self,
        series: PlatformSeries,
        sessions: Callable[[], pd.DataFrame | None],
        speed: float | None,
        clock_start_s: float | None,
    ) -> OperationalLaws | None:
        return sweep_laws(series, self.measured_steps, self.usl)


# ---- its sentences -----------------------------------------------------------------------------------------


def _slo_sentence(card: SweepCard) -> str:
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


def _pair(card: SweepCard, requests: float | None, logins: float | None) -> str:
    """'41 successful requests/s and 1.2 logins/s (run terms; 11,400 requests/s and 330 logins/s nationally)'."""
    run = f"{rate_text(requests)} successful requests/s"
    if logins is not None:
        run += f" and {rate_text(logins)} logins/s"
    national_requests, national_logins = card.national_rate(requests), card.national_rate(logins)
    if national_requests is None:
        return f"{run} (run terms; national terms unknown without the run's scale and speed)"
    national = f"{rate_text(national_requests)} requests/s"
    if national_logins is not None:
        national += f" and {rate_text(national_logins)} logins/s"
    return f"{run} (run terms; {national} nationally)"


def shed_steps(card: SweepCard) -> list[int]:
    """Measured steps in which an admission limit refused work (503 or 429 answers): there throughput follows
    the limit, not contention, and the USL describes nothing of the machine."""
    measured = card.measured_steps
    if measured.empty:
        return []
    refused = measured["failures_503_per_s"].fillna(0) + measured["failures_429_per_s"].fillna(0)
    sent = measured["requests_per_s"].fillna(0)
    budget = card.limits.get("error ratio", 0.0)  # refusals within the error budget are not a limit binding
    return [int(step) for step in measured.loc[(refused > 0) & (refused > budget * sent), "step"]]


def knee_is_meaningful(card: SweepCard) -> bool:
    """A knee means queueing only when latency past it grew to a share of the login objective worth planning
    around (KNEE_MIN_SHARE of it); a few milliseconds' rise is noise."""
    objective = card.limits.get("login p95")
    if card.knee_latency_ms is None or objective is None:
        return card.knee_latency_ms is not None
    column = "request_latency_p95_ms"
    measured = card.measured_steps
    highest = float(measured[column].max()) if column in measured and len(measured) else card.knee_latency_ms
    return highest >= KNEE_MIN_SHARE * objective


def _usl_sentence(card: SweepCard) -> str:
    fit = card.usl
    if fit is None:
        if not card.usl_error:
            return ""
        return f"The USL could not be fitted to the measured steps: {card.usl_error.rstrip('.')}."
    quality = f"USL fit, R² {fit.r_squared:.2f}"
    shed = shed_steps(card)
    if shed:  # flagged: past the limit, throughput follows the limit, and no projection of it is a capacity
        quality += (
            f"; flagged: an admission limit refused work in {steps_text(shed).lower()} beyond the error budget, so "
            "there throughput follows that limit, not contention: not a capacity to plan with"
        )
    peak_n, peak_x = fit.peak_concurrency, fit.peak_throughput
    if peak_n is not None and peak_x is not None:
        people = card.national_people(peak_n)
        terms = f"run terms; about {people_text(people)} nationally" if people is not None else "run terms"
        national_x = card.national_rate(peak_x)
        x_text = f"{rate_text(national_x)} nationally" if national_x is not None else "national terms unknown"
        return (
            f"Peak throughput N* = {count_text(peak_n)} people in a session ({terms}; {quality}, contention "
            f"α = {fit.alpha:.3g}, coherency β = {fit.beta:.3g}) delivers X(N*) = {rate_text(peak_x)} successful "
            f"requests/s (run terms; {x_text}): past N*, more people get less done."
        )
    ceiling = fit.amdahl_ceiling
    if ceiling is not None:
        national = card.national_rate(ceiling)
        national_text = f"; {rate_text(national)} nationally" if national is not None else ""
        return (
            f"Throughput has no peak in the measured range ({quality}, coherency β = 0): it levels off towards "
            f"the Amdahl ceiling γ/α = {rate_text(ceiling)} successful requests/s (run terms{national_text})."
        )
    return (
        f"Throughput grows in proportion to the people in a session over the measured range ({quality}, no "
        "contention or coherency measured): the sweep did not reach the platform's limit."
    )


def _knee_sentence(card: SweepCard) -> str:
    if card.knee_measure is None:
        return "No latency was measured at enough steps to find the knee of latency against throughput."
    if card.knee_requests_per_s is None:
        return f"No knee in {card.knee_measure} against throughput over the measured steps: it rose evenly."
    if not knee_is_meaningful(card):
        return (
            f"No meaningful knee: {card.knee_measure} stayed below {KNEE_MIN_SHARE:.0%} of the login p95 objective "
            "over the measured steps, so no queueing shows in it."
        )
    national = card.national_rate(card.knee_requests_per_s)
    national_text = f"; {rate_text(national)} nationally" if national is not None else ""
    at = f" ({ms_text(card.knee_latency_ms)} there)" if card.knee_latency_ms is not None else ""
    return (
        f"The knee of latency is at {rate_text(card.knee_requests_per_s)} successful requests/s (run terms"
        f"{national_text}): past it, {card.knee_measure} climbs steeply{at}."
    )


def _national_sentence(card: SweepCard, answer: NationalAnswer) -> str:
    """When the morning's demand passes one instance's SLO capacity. No instance count: the answer block gives the
    one count, from its range on offered load (one figure, one definition)."""
    morning = f"The {card.scenario} morning ({card.window})"
    if answer.limiting is None:
        return (
            f"{morning} asks up to {rate_text(answer.peak_demand_logins_per_s)} logins/s at "
            f"{answer.peak_demand_logins_at} and {rate_text(answer.peak_demand_requests_per_s)} requests/s at "
            f"{answer.peak_demand_requests_at} (national terms); with no SLO capacity measured, when it passes one "
            "instance is not known."
        )
    if answer.limiting == "logins":
        peak = f"{rate_text(answer.peak_demand_logins_per_s)} logins/s at {answer.peak_demand_logins_at}"
        capacity = f"{rate_text(answer.capacity_logins_per_s_national)} logins/s"
    else:
        peak = f"{rate_text(answer.peak_demand_requests_per_s)} requests/s at {answer.peak_demand_requests_at}"
        capacity = f"{rate_text(answer.capacity_requests_per_s_national)} requests/s"
    sentence = f"{morning}: its national demand ({peak}) against one instance's SLO capacity ({capacity} nationally)"
    if answer.exceeds_from is None:
        return f"{sentence} stays within it all morning."
    return (
        f"{sentence} passes it from {answer.exceeds_from} for {duration_text(answer.exceeds_for_s)} in all, while "
        f"{people_text(answer.people_arriving_while_exceeded)} people arrive."
    )


def _step_sentences(card: SweepCard) -> list[str]:
    lines = []
    skipped, stopped = card.steps_with(StepStatus.SKIPPED), card.steps_with(StepStatus.STOPPED)
    if skipped:
        why = (
            f"the sweep stopped after step {stopped[0]}, which breached an objective by its stop margin"
            + (f" ({card.stop_margin:g}x)" if card.stop_margin else "")
            if stopped
            else "the run ended before them"
        )
        lines.append(f"{steps_text(skipped)} of {len(card.steps)} {were(skipped)} skipped: {why}.")
    incomplete = card.steps_with(StepStatus.INCOMPLETE)
    if incomplete:
        lines.append(
            f"{steps_text(incomplete)} {were(incomplete)} cut short (the run stopped before the measured part "
            "ended) and left out of the figures."
        )
    return lines
