"""The capacity card: the capacity answer of one run as data (a sweep's fit, knee, SLO capacity and national
answer, or a normal run's load held and load that broke), its table of figures in run and national terms, and
the sweep's steps as report cells.

The card is filled in by report/capacity.py (a sweep) and report/capacity_run.py (a normal run); its sentences
are worded in report/capacity_text.py. `empty_card` starts one with the run's scenario, scale, speed and
objectives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from schoolsurge.models.capacity import DEFAULT_HEADROOM, Demand, NationalAnswer, SloCapacity
from schoolsurge.models.usl import UslFit
from schoolsurge.report import capacity_text
from schoolsurge.report.capacity_steps import MEASURED_STATUSES
from schoolsurge.report.capacity_text import _coefficient, _count, _duration, _ms_cell, _opt, _people, _rate
from schoolsurge.report.data import RunData
from schoolsurge.report.outcome import PUBLISHED_2021_SHARE, ServedShare
from schoolsurge.rundir import CAPACITY_COLUMNS, TIME_TO_LOGIN_PERCENTILES, StepStatus
from schoolsurge.scenario import Slo

# A run's load counts as held when every objective holds over this many consecutive bins of about one scenario
# minute each: one good minute between two bad ones is luck, three in a row is a level the platform sustains.
SUSTAINED_BINS = 3
NO_REQUESTS = "nowhere: this run counted no requests, so only the login objectives are judged"

# (objective as named in the report, Slo field, capacity.csv column)
OBJECTIVES = (
    *((f"login p{p}", f"login_p{p}_ms", f"time_to_login_p{p}_ms") for p in TIME_TO_LOGIN_PERCENTILES),
    ("error ratio", "error_ratio", "error_ratio"),
)


@dataclass(frozen=True)
class RunLoad:
    """A load a normal run went through (run terms), over a stretch of the scenario clock."""

    requests_per_s: float  # people's HTTP requests, failed or not
    logins_per_s: float
    from_clock: str
    to_clock: str
    breaches: tuple[str, ...] = ()


@dataclass
class RunFigures:
    """What a normal run says about capacity: the load held, the load that broke, who got in in time."""

    bin_run_s: int  # width of a bin, run seconds (about one scenario minute)
    bin_scenario_s: float
    bins: int
    held: RunLoad | None  # the highest load held `sustained_bins` bins in a row with every SLO met
    broke: RunLoad | None  # the lowest load of a bin in which an objective broke
    top: RunLoad | None  # the highest requests/s and logins/s of any bin (each its own), the whole run
    within_objective: int | None  # people who logged in within the login p95 objective (SLO window)
    tried: int  # people who tried to log in (SLO window)
    objective_ms: float
    window: str
    served: ServedShare | None
    requests_source: str  # where the per-second requests and failures came from
    sustained_bins: int = SUSTAINED_BINS  # how many bins in a row `held` was held

    @property
    def requests_known(self) -> bool:
        return self.requests_source != NO_REQUESTS


@dataclass
class CapacityCard:
    """The capacity answer of one run: a sweep's (kind "sweep") or a normal run's (kind "run")."""

    kind: str
    run_dir: Path
    scenario: str
    window: str
    scale: float | None
    speed: float | None
    limits: dict[str, float]  # objective -> limit
    headroom: float = DEFAULT_HEADROOM
    notes: list[str] = field(default_factory=list)
    # a sweep's
    steps: pd.DataFrame | None = None
    usl: UslFit | None = None
    usl_error: str | None = None
    knee_requests_per_s: float | None = None
    knee_latency_ms: float | None = None
    knee_measure: str | None = None
    slo_requests: SloCapacity | None = None
    slo_logins: SloCapacity | None = None
    national: NationalAnswer | None = None
    demand: Demand | None = None
    stop_margin: float | None = None
    # a normal run's
    run: RunFigures | None = None

    @property
    def load_fraction(self) -> float | None:
        """scale x speed: the share of the national request rate this run offers."""
        return self.scale * self.speed if self.scale and self.speed else None

    def national_rate(self, run_rate: float | None) -> float | None:
        fraction = self.load_fraction
        return None if run_rate is None or fraction is None else run_rate / fraction

    def national_people(self, run_people: float | None) -> float | None:
        return None if run_people is None or not self.scale else run_people / self.scale

    @property
    def measured_steps(self) -> pd.DataFrame:
        """The steps measured whole (measured, and the one that stopped the sweep), in sweep order."""
        if self.steps is None:
            return pd.DataFrame(columns=list(CAPACITY_COLUMNS))
        return self.steps[self.steps["status"].isin(MEASURED_STATUSES)]

    def steps_with(self, status: StepStatus) -> list[int]:
        if self.steps is None:
            return []
        return [int(s) for s in self.steps.loc[self.steps["status"] == status.value, "step"]]

    @property
    def slo_requests_per_s(self) -> float | None:
        return self.slo_requests.throughput if self.slo_requests else None

    @property
    def slo_logins_per_s(self) -> float | None:
        return self.slo_logins.throughput if self.slo_logins else None

    def headline(self) -> list[str]:
        """Sentences a planner can paste into a memo; each figure says run terms or national terms."""
        return capacity_text.headline(self)

    def figures(self) -> list[tuple[str, str, str]]:
        """(figure, run terms, national terms) rows of the report's capacity table; '-' where not applicable."""
        return self._sweep_figures() if self.kind == "sweep" else self._run_figures()

    def _sweep_figures(self) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        rate = self._rate_row
        fit = self.usl
        if fit is not None:
            rows.append(
                (
                    "N* (people in a session at peak throughput)",
                    _opt(fit.peak_concurrency, _count),
                    _opt(self.national_people(fit.peak_concurrency), _people),
                )
            )
            rows.append(rate("X(N*) peak throughput, successful requests/s", fit.peak_throughput))
            rows.append(rate("Amdahl ceiling γ/α, successful requests/s", fit.amdahl_ceiling))
            rows.append(("α contention (95% CI)", _coefficient(fit.alpha, fit.alpha_ci), "-"))
            rows.append(("β coherency (95% CI)", _coefficient(fit.beta, fit.beta_ci), "-"))
            rows.append(("γ requests/s of one person alone (95% CI)", _coefficient(fit.gamma, fit.gamma_ci), "-"))
            rows.append(("R² of the USL fit", f"{fit.r_squared:.3f} ({fit.points} steps)", "-"))
        elif self.usl_error:
            rows.append(("USL fit", f"not fitted: {self.usl_error}", "-"))
        if self.knee_measure is not None:
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
                    f"{_rate(answer.peak_demand_logins_per_s)} at {answer.peak_demand_logins_at}",
                )
            )
            rows.append(
                (
                    "national peak demand, requests/s",
                    "-",
                    f"{_rate(answer.peak_demand_requests_per_s)} at {answer.peak_demand_requests_at}",
                )
            )
            rows.append(("headroom", "-", f"{answer.headroom:.0%}"))
            rows.append(
                (
                    "instances of this platform needed",
                    "-",
                    "unknown"
                    if answer.instances_needed is None
                    else f"{answer.instances_needed} (set by {answer.limiting})",
                )
            )
            if answer.exceeds_from is not None:
                rows.append(
                    (
                        "one instance is exceeded",
                        "-",
                        f"from {answer.exceeds_from}, {_duration(answer.exceeds_for_s)} in all, "
                        f"{_people(answer.people_arriving_while_exceeded)} people arriving",
                    )
                )
        if self.load_fraction is not None:
            rows.append(("load fraction (scale x speed)", f"{self.load_fraction:.4g}", "1"))
        return rows

    def _rate_row(self, label: str, run_rate: float | None, prefix: str = "") -> tuple[str, str, str]:
        national = self.national_rate(run_rate)
        return (
            label,
            "-" if run_rate is None else prefix + _rate(run_rate),
            "-" if national is None else prefix + _rate(national),
        )

    def _run_figures(self) -> list[tuple[str, str, str]]:
        run = self.run
        if run is None:
            return []
        rows = []
        for label, load in (
            (f"load held {run.sustained_bins} bins in a row, SLOs met", run.held),
            ("lowest load at which an SLO broke", run.broke),
            ("highest load of any bin", run.top),
        ):
            if load is None:
                rows.append((label, "none", "-"))
                continue
            stretch = f"{load.from_clock}-{load.to_clock}"
            rows.append(self._rate_row(f"{label}: people's requests/s ({stretch})", load.requests_per_s))
            rows.append(self._rate_row(f"{label}: logins/s ({stretch})", load.logins_per_s))
        if run.within_objective is not None:
            rows.append(
                (
                    f"logged in within {run.objective_ms:,.0f} ms ({run.window})",
                    f"{run.within_objective:,} of {run.tried:,}",
                    _opt(self.national_people(run.within_objective), _people),
                )
            )
        if run.served is not None:
            rows.append(
                (
                    f"got in, after retries ({run.served.window})",
                    f"{run.served.served:,} of {run.served.tried:,} ({run.served.share:.0%})",
                    f"{_opt(self.national_people(run.served.served), _people)} (2021: {PUBLISHED_2021_SHARE:.0%})",
                )
            )
        rows.append(("bin", f"{run.bin_run_s} run s", f"{run.bin_scenario_s / 60:g} scenario min"))
        if self.load_fraction is not None:
            rows.append(("load fraction (scale x speed)", f"{self.load_fraction:.4g}", "1"))
        return rows

    def step_table(self) -> tuple[list[str], list[list[str]]]:
        """The sweep's steps as report columns and cells; skipped steps show as skipped with no figures."""
        columns = [
            ("step", "step", _count),
            ("status", "status", str),
            ("offered arrivals/s", "offered_arrivals_per_s", _rate),
            ("N (in a session)", "concurrency", _rate),
            ("logins/s", "logins_per_s", _rate),
            ("requests/s", "requests_per_s", _rate),
            ("successful/s", "successful_requests_per_s", _rate),
            ("error ratio", "error_ratio", lambda v: f"{v:.2%}"),
            *((f"login p{p} ms", f"time_to_login_p{p}_ms", _ms_cell) for p in TIME_TO_LOGIN_PERCENTILES),
            *((f"request p{p} ms", f"request_latency_p{p}_ms", _ms_cell) for p in TIME_TO_LOGIN_PERCENTILES),
            ("late", "late", _count),
            ("dropped", "dropped", _count),
            ("gave up", "gave_up", _count),
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


def empty_card(data: RunData, kind: str, headroom: float) -> CapacityCard:
    """A card of this kind ("sweep" or "run") with the run's scenario, scale, speed and objectives, no figures."""
    scenario = data.scenario
    speed = data.speed or data.manifest.speed
    if scenario is not None and not speed:
        speed = scenario.run.speed
    return CapacityCard(
        kind=kind,
        run_dir=data.run_dir,
        scenario=scenario.name if scenario else (data.manifest.scenario or "?"),
        window=f"{scenario.window.start}-{scenario.window.end}" if scenario else "?",
        scale=data.scale,
        speed=speed if speed and speed > 0 else None,
        limits=objective_limits(scenario.slo) if scenario else {},
        headroom=headroom,
    )


def objective_limits(slo: Slo) -> dict[str, float]:
    """Each objective the scenario sets, by its report name, with its limit."""
    limits = {}
    for name, attribute, _ in OBJECTIVES:
        value = getattr(slo, attribute)
        if value is not None:
            limits[name] = float(value)
    return limits
