"""The capacity card: the capacity answer of one run as data, in run and national terms.

CapacityCard holds what every card has (the run's scenario, scale, speed and objectives) and the figures each
kind fills in: a sweep's fit, knee, SLO capacity and national answer (SweepCard, capacity/sweep_card.py, built by
capacity/sweep.py), or a normal run's load held and load that broke (RunCard, capacity/run_card.py, built by
capacity/run.py). Each kind says its own sentences, table and part of capacity.json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import pandas as pd

from schoolsurge.models.capacity import DEFAULT_HEADROOM, Demand, NationalAnswer, SloCapacity
from schoolsurge.models.replay import load_fraction
from schoolsurge.models.usl import UslFit
from schoolsurge.report.capacity.wording import rate_text
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.outcome.served import ServedShare
from schoolsurge.report.platform.laws import OperationalLaws
from schoolsurge.report.platform.series import PlatformSeries
from schoolsurge.rundir import CAPACITY_COLUMNS, MEASURED_STATUSES, TIME_TO_LOGIN_PERCENTILES, StepStatus
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
    offered_per_s: float = 0.0  # people arriving to log in per second (offered load: held and broke are said on it)
    clock_s: float | None = None  # scenario clock second the stretch starts (seconds since midnight)


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
    loads: tuple[RunLoad, ...] = ()  # every bin's load, in order: what held and broke were chosen from

    @property
    def requests_known(self) -> bool:
        return self.requests_source != NO_REQUESTS


@dataclass
class CapacityCard:
    """The capacity answer of one run; SweepCard and RunCard say what differs (sentences, table, capacity.json)."""

    kind: ClassVar[str]  # as capacity.json names it: "sweep" or "run"
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

    @classmethod
    def empty(cls, data: RunData, headroom: float) -> Self:
        """A card with the run's scenario, scale, speed and objectives, no figures."""
        scenario = data.scenario
        speed = data.speed or data.manifest.speed
        if scenario is not None and not speed:
            speed = scenario.run.speed
        return cls(
            run_dir=data.run_dir,
            scenario=scenario.name if scenario else (data.manifest.scenario or "?"),
            window=f"{scenario.window.start}-{scenario.window.end}" if scenario else "?",
            scale=data.scale,
            speed=speed if speed and speed > 0 else None,
            limits=objective_limits(scenario.slo) if scenario else {},
            headroom=headroom,
        )

    # ---- what every kind says --------------------------------------------------------------------------------

    def headline(self) -> list[str]:
        """Sentences a planner can paste into a memo; each figure says run terms or national terms."""
        raise NotImplementedError

    def figures(self) -> list[tuple[str, str, str]]:
        """(figure, run terms, national terms) rows of the report's capacity table; '-' where not applicable."""
        raise NotImplementedError

    def answer(self) -> dict[str, Any]:
        """This kind's figures in capacity.json, beside what every card writes (capacity/answer.py)."""
        raise NotImplementedError

    def operational_laws(
        self,
        series: PlatformSeries,
        sessions: Callable[[], pd.DataFrame | None],
        speed: float | None,
        clock_start_s: float | None,
    ) -> OperationalLaws | None:
        """The platform's CPU bound over this run's windows (a sweep's steps, a morning's minutes)."""
        raise NotImplementedError

    def step_table(self) -> tuple[list[str], list[list[str]]]:
        """A sweep's steps as the report's columns and cells; none for a run."""
        return [], []

    def step_marks(self) -> list[tuple[float, str]]:
        """Where each step began (run seconds), to mark on the report's time charts; none for a run."""
        return []

    # ---- run terms and national terms ------------------------------------------------------------------------

    @property
    def load_fraction(self) -> float | None:
        """scale x speed: the share of the national request rate this run offers."""
        return load_fraction(self.scale, self.speed) if self.scale and self.speed else None

    def national_rate(self, run_rate: float | None) -> float | None:
        fraction = self.load_fraction
        return None if run_rate is None or fraction is None else run_rate / fraction

    def national_people(self, run_people: float | None) -> float | None:
        return None if run_people is None or not self.scale else run_people / self.scale

    def rate_row(self, label: str, run_rate: float | None, prefix: str = "") -> tuple[str, str, str]:
        national = self.national_rate(run_rate)
        return (
            label,
            "-" if run_rate is None else prefix + rate_text(run_rate),
            "-" if national is None else prefix + rate_text(national),
        )

    # ---- a sweep's steps (none for a run) --------------------------------------------------------------------

    @property
    def measured_steps(self) -> pd.DataFrame:
        """The steps measured whole (measured, and the one that stopped the sweep), by offered load: refinement
        steps, run after the planned ones, take their place between them (fit, SLO capacity, charts)."""
        if self.steps is None:
            return pd.DataFrame(columns=list(CAPACITY_COLUMNS))
        measured = self.steps[self.steps["status"].isin(MEASURED_STATUSES)]
        return measured.sort_values("offered_arrivals_per_s", kind="stable")

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


def objective_limits(slo: Slo) -> dict[str, float]:
    """Each objective the scenario sets, by its report name, with its limit."""
    limits = {}
    for name, attribute, _ in OBJECTIVES:
        value = getattr(slo, attribute)
        if value is not None:
            limits[name] = float(value)
    return limits
