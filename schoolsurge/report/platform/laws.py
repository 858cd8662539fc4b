"""The platform's capacity by the operational laws (models/operational.py), from what its series measured
(platform/series.py).

Per measured step of a sweep (capacity.csv: measured_from_s to end_s), or per window of about one scenario minute
(never shorter than the scrape interval) of a morning: the utilisation U (CPU seconds over cores x seconds: the
whole machine's busy fraction, m = the cores the platform sees, `schoolsurge_platform_cpu_cores`), the throughput
X (people's successful requests/s: capacity.csv's successful_requests_per_s, or sessions.csv's requests minus
failures), the service demand D = m U / X (CPU seconds per successful request, all cores together: the CPU spent
on refused requests is charged to the served ones) and the bound X <= m / D. The bound quoted is the one measured
where throughput was highest (at a light load D also carries the platform's idle work); a line fitted through all
windows gives the marginal demand as a check. For a sweep it is set beside the USL fit's ceiling: two independent
estimates of one ceiling, whose difference says which resource bound (the shed reasons tell a profile's limits
from the machine's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from schoolsurge.models.operational import Demand, MarginalDemand, marginal_demand
from schoolsurge.models.usl import UslFit
from schoolsurge.report.load.json_fields import number_or_none
from schoolsurge.report.platform.series import PlatformSeries
from schoolsurge.rundir import FAILURE_COUNTERS, Counter
from schoolsurge.rundir.metrics import MACHINE_REASONS, PROFILE_REASONS, SHED_REASONS
from schoolsurge.scenario import seconds_to_clock

CPU_BINDS_WITHIN = 1.25  # a CPU bound at most this many times the USL ceiling: the CPU is what bound


@dataclass(frozen=True)
class LawWindow:
    """The platform's CPU over one window: a measured step of a sweep, or about a scenario minute of a morning."""

    label: str
    start_s: float
    end_s: float
    cpu: Demand
    db_busy: float | None = None  # database seconds per second (statements in execution on average)

    def row(self) -> dict[str, Any]:
        return {
            "window": self.label,
            "start_s": round(self.start_s, 2),
            "end_s": round(self.end_s, 2),
            "successful_requests_per_s": self.cpu.throughput,
            "cpu_busy_cores": self.cpu.busy_servers,
            "cpu_utilisation": self.cpu.utilisation,
            "cpu_demand_s": self.cpu.demand_s,
            "cpu_bound_requests_per_s": self.cpu.bound,
            "database_busy": self.db_busy,
        }


@dataclass
class OperationalLaws:
    """The laws over a run's windows; SweepLaws (a sweep's measured steps, beside its USL fit) and MorningLaws (a
    morning's minutes) say what differs."""

    # What a window is, for the charts' captions.
    window_is: ClassVar[str] = "window"
    cores: int | None  # m; None when the target does not say (the figures are then per core: m = 1)
    cpu_metric: str
    windows: list[LawWindow]
    usl_ceiling: float | None = None  # a sweep's USL ceiling, successful requests/s (run terms)
    usl_ceiling_kind: str | None = None  # "peak_throughput" (X at N*) or "amdahl_ceiling" (gamma / alpha)
    usl_fitted: bool = False  # a USL fit was made (linear over the steps when it has no ceiling)
    shed: dict[str, float] = field(default_factory=dict)  # requests shed by reason, the whole run
    throttled_429: float = 0.0

    @property
    def servers(self) -> int:
        return self.cores or 1

    @property
    def busiest(self) -> LawWindow | None:
        """The window with the highest throughput: where D carries least of the idle work."""
        served = [w for w in self.windows if w.cpu.completions > 0 and w.cpu.bound is not None]
        return max(served, key=lambda w: w.cpu.throughput) if served else None

    @property
    def bound(self) -> float | None:
        busiest = self.busiest
        return busiest.cpu.bound if busiest is not None else None

    @property
    def marginal(self) -> MarginalDemand | None:
        served = [w for w in self.windows if w.cpu.completions > 0]
        return marginal_demand([w.cpu.busy_servers for w in served], [w.cpu.throughput for w in served])

    @property
    def peak_utilisation(self) -> float | None:
        return max((w.cpu.utilisation for w in self.windows), default=None)

    @property
    def bound_over_usl(self) -> float | None:
        bound = self.bound
        return bound / self.usl_ceiling if bound and self.usl_ceiling else None

    def _servers_text(self) -> str:
        if self.cores is None:
            return "per core (the target does not say how many cores it has: m = 1)"
        return f"m = {self.cores} core{'s' if self.cores > 1 else ''} (those the platform's processes may use)"

    def _shed_text(self) -> tuple[str, float, float]:
        profile = sum(v for k, v in self.shed.items() if k in PROFILE_REASONS)
        machine = sum(v for k, v in self.shed.items() if k in MACHINE_REASONS)
        reasons = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(self.shed.items()) if v)
        return reasons, profile, machine

    def what_bound(self) -> str:
        """Which resource bound, from the shed reasons (a morning: what refused work, if anything)."""
        reasons, profile, machine = self._shed_text()
        throttled = f"; {self.throttled_429:,.0f} answers were 429 (login throttling)" if self.throttled_429 else ""
        if profile > machine and profile > 0:
            return (
                f"the platform shed {profile:,.0f} requests at its profile's limits and {machine:,.0f} at the "
                f"machine's ({reasons}{throttled}): its profile's limits (national capacity scaled to the run) "
                "bound first"
            )
        if machine > 0:
            return (
                f"the platform shed {machine:,.0f} requests at the machine's limits and {profile:,.0f} at its "
                f"profile's ({reasons}{throttled}): admission control (slots and queue per worker) bound first"
            )
        return self._nothing_shed(throttled)

    def _nothing_shed(self, throttled: str) -> str:
        return f"the platform shed nothing{throttled}: no limit refused work during this run"

    def explanation(self) -> str:
        busiest = self.busiest
        if busiest is None or self.bound is None:
            return "No service-demand bound: no window with both the platform's CPU and successful requests measured."
        demand_ms = 1000 * (busiest.cpu.demand_s or 0)
        first = (
            f"Operational laws: at {self._where(busiest)}, where throughput was highest ({busiest.cpu.throughput:,.1f} "
            f"successful requests/s, run terms), the platform's CPU was {busiest.cpu.utilisation:.0%} busy with "
            f"{self._servers_text()}, so a request costs D = m U / X = {demand_ms:,.2f} ms of CPU and the CPU bounds "
            f"throughput at X <= m / D = {self.bound:,.0f} requests/s."
        )
        return self._compared(first, busiest, self.bound)

    def _where(self, window: LawWindow) -> str:
        return window.label

    def _compared(self, first: str, busiest: LawWindow, bound: float) -> str:
        """The explanation's first sentence and what the bound is set against."""
        factor = bound / busiest.cpu.throughput if busiest.cpu.throughput else math.inf
        return f"{first} That is {factor:,.1f} times the busiest window's load; {self.what_bound()}."

    def step_table(self) -> tuple[list[str], list[list[str]]]:
        """The windows as the report's table (columns, rows); none for a morning's minutes."""
        return [], []

    def to_json(self, national_rate: Callable[[float | None], float | None] | None = None) -> dict[str, Any]:
        """capacity.json's "operational_laws"; `national_rate` turns a run rate into national terms."""
        busiest, marginal = self.busiest, self.marginal

        def national(rate: float | None) -> float | None:
            return national_rate(rate) if national_rate is not None else None

        return {
            "resource": f"platform CPU ({self.cpu_metric})",
            "cores": self.cores,
            "definitions": {
                "utilisation": "U = CPU seconds / (cores x seconds): the whole machine's busy fraction, 0..1",
                "throughput": "X = people's successful requests per second, run terms",
                "service_demand_s": "D = m U / X: CPU seconds one successful request costs, all cores together",
                "bound": "X <= m / D (the utilisation law at U = 1)",
            },
            "windows": [w.row() for w in self.windows],
            "at": busiest.label if busiest else None,
            "service_demand_s": busiest.cpu.demand_s if busiest else None,
            "utilisation": busiest.cpu.utilisation if busiest else None,
            "bound_requests_per_s": self.bound,
            "bound_requests_per_s_national": national(self.bound),
            "marginal": None
            if marginal is None
            else {
                "service_demand_s": marginal.demand_s,
                "idle_cores": marginal.idle,
                "windows": marginal.windows,
                "bound_requests_per_s": marginal.bound(self.servers),
            },
            "usl_ceiling_requests_per_s": self.usl_ceiling,
            "usl_ceiling_requests_per_s_national": national(self.usl_ceiling),
            "usl_ceiling": self.usl_ceiling_kind,
            "bound_over_usl_ceiling": self.bound_over_usl,
            "peak_utilisation": self.peak_utilisation,
            "shed_by_reason": self.shed,
            "throttled_429": self.throttled_429,
            "explanation": self.explanation(),
        }


@dataclass
class MorningLaws(OperationalLaws):
    """A morning's windows of about a scenario minute."""

    window_is = "window (about a scenario minute, at least a scrape interval)"


@dataclass
class SweepLaws(OperationalLaws):
    """A sweep's measured steps, the bound set beside the USL fit's ceiling."""

    window_is = "measured step"

    def _nothing_shed(self, throttled: str) -> str:
        return (
            f"the platform shed nothing{throttled}: no limit refused work, so what levelled throughput off was waiting "
            "(threads, the database lock, the generator) rather than a resource running out"
        )

    def _where(self, window: LawWindow) -> str:
        return f"step {window.label}"

    def step_table(self) -> tuple[list[str], list[list[str]]]:
        columns = ["step", "X (successful req/s)", "CPU busy (cores)", "U", "D (ms CPU/req)", "m / D (req/s)"]
        columns.append("database busy (s/s)")
        rows = []
        for window in self.windows:
            cpu = window.cpu
            rows.append(
                [
                    window.label,
                    f"{cpu.throughput:,.1f}",
                    f"{cpu.busy_servers:.2f}",
                    f"{cpu.utilisation:.0%}",
                    f"{1000 * cpu.demand_s:,.2f}" if cpu.demand_s else "-",
                    f"{cpu.bound:,.0f}" if cpu.bound else "-",
                    f"{window.db_busy:.3f}" if window.db_busy is not None else "-",
                ]
            )
        return columns, rows

    def _compared(self, first: str, busiest: LawWindow, bound: float) -> str:
        if self.usl_ceiling is None and self.usl_fitted:
            factor = bound / busiest.cpu.throughput if busiest.cpu.throughput else math.inf
            return (
                f"{first} The USL fit is linear over the measured steps (no contention nor coherency measured), so it "
                f"sets no ceiling: the sweep ended before throughput levelled off, its highest {factor:,.1f} times "
                f"below the CPU bound; {self.what_bound()}."
            )
        if self.usl_ceiling is None:
            return f"{first} No USL fit to compare it with; {self.what_bound()}."
        ceiling = "peak X(N*)" if self.usl_ceiling_kind == "peak_throughput" else "Amdahl ceiling gamma/alpha"
        ratio = self.bound_over_usl or math.nan
        _, profile, machine = self._shed_text()
        if profile + machine > 0:  # a limit refused work: the CPU's bound is stated beside it, not as the ceiling
            return (
                f"{first} That is the CPU's own bound (at most {self.peak_utilisation or 0:.0%} busy); the limit "
                f"that refused work bound first: {self.what_bound()}. The USL fit's ceiling ({ceiling}, "
                f"{self.usl_ceiling:,.0f} requests/s) describes that limit, not the CPU."
            )
        second = f" The USL fit's ceiling ({ceiling}) is {self.usl_ceiling:,.0f} requests/s:"
        if ratio < 1:
            return (
                f"{first}{second} above the CPU bound, so the fit extrapolates past what the CPU allows; the CPU "
                f"(at most {self.peak_utilisation or 0:.0%} busy) is the ceiling to plan with; {self.what_bound()}."
            )
        if ratio <= CPU_BINDS_WITHIN:
            return (
                f"{first}{second} the two estimates agree within {CPU_BINDS_WITHIN - 1:.0%}, so the platform's CPU "
                f"is the bottleneck; {self.what_bound()}."
            )
        return (
            f"{first}{second} the CPU bound is {ratio:,.1f} times higher, so the CPU (at most "
            f"{self.peak_utilisation or 0:.0%} busy) never bound; {self.what_bound()}."
        )


def _demand(series: PlatformSeries, start_s: float, end_s: float, completions: float) -> Demand | None:
    busy = series.between("cpu_s", start_s, end_s)
    if busy is None or end_s <= start_s:
        return None
    return Demand(max(0.0, busy), end_s - start_s, max(0.0, completions), series.cores or 1)


def _window(series: PlatformSeries, label: str, start_s: float, end_s: float, completions: float) -> LawWindow | None:
    cpu = _demand(series, start_s, end_s, completions)
    if cpu is None:
        return None
    db = series.between("db_s", start_s, end_s)
    return LawWindow(label, start_s, end_s, cpu, None if db is None else db / (end_s - start_s))


def sweep_windows(series: PlatformSeries, steps: pd.DataFrame) -> list[LawWindow]:
    """One window per measured step: its settled part, measured_from_s to end_s."""
    windows = []
    for _, step in steps.iterrows():
        start, end = number_or_none(step.get("measured_from_s")), number_or_none(step.get("end_s"))
        rate = number_or_none(step.get("successful_requests_per_s"))
        if start is None or end is None or rate is None or end <= start:
            continue
        window = _window(series, str(int(step["step"])), start, end, rate * (end - start))
        if window is not None:
            windows.append(window)
    return windows


def morning_windows(
    series: PlatformSeries, sessions: pd.DataFrame, speed: float | None, clock_start_s: float | None
) -> list[LawWindow]:
    """Windows of about a scenario minute (whole run seconds, never shorter than the scrape interval) over the
    scraped span; X from sessions.csv (people's requests minus their failures, event time)."""
    per_second = sessions.set_index("second")
    served = pd.to_numeric(per_second[Counter.REQUESTS.value], errors="coerce").fillna(0)
    for counter in FAILURE_COUNTERS:
        served = served - pd.to_numeric(per_second[counter.value], errors="coerce").fillna(0)
    minute = 60 / speed if speed else 60.0
    interval = series.interval_s if math.isfinite(series.interval_s) else 5.0
    width = max(1, math.ceil(max(minute, interval)))
    last = int(per_second.index.max()) + 1 if len(per_second) else 0
    windows = []
    for start in range(0, last, width):
        end = min(start + width, last)
        completions = float(served[(served.index >= start) & (served.index < end)].sum())
        clock = (
            seconds_to_clock(clock_start_s + start * speed)
            if clock_start_s is not None and speed
            else f"{start}-{end} s"
        )
        window = _window(series, clock, float(start), float(end), completions)
        if window is not None:
            windows.append(window)
    return windows


def sweep_laws(series: PlatformSeries, measured_steps: pd.DataFrame, usl: UslFit | None) -> SweepLaws | None:
    """The laws over a sweep's measured steps, beside its USL fit; None without the platform's CPU."""
    if series.cpu_metric is None:
        return None
    laws = SweepLaws(series.cores, series.cpu_metric, sweep_windows(series, measured_steps), **_shed(series))
    if usl is not None:
        laws.usl_fitted = True
        if usl.peak_throughput is not None:
            laws.usl_ceiling, laws.usl_ceiling_kind = usl.peak_throughput, "peak_throughput"
        elif usl.amdahl_ceiling is not None:
            laws.usl_ceiling, laws.usl_ceiling_kind = usl.amdahl_ceiling, "amdahl_ceiling"
    return laws


def morning_laws(
    series: PlatformSeries, sessions: pd.DataFrame | None, speed: float | None, clock_start_s: float | None
) -> MorningLaws | None:
    """The laws over a morning's minutes; None without the platform's CPU or the engine's sessions."""
    if series.cpu_metric is None or sessions is None or not len(sessions):
        return None
    windows = morning_windows(series, sessions, speed, clock_start_s)
    return MorningLaws(series.cores, series.cpu_metric, windows, **_shed(series))


def _shed(series: PlatformSeries) -> dict[str, Any]:
    """Requests shed by reason and answers 429 from the first scrape to the last."""
    totals = series.totals()
    return {
        "shed": {reason: totals.get(f"shed_{reason}", 0.0) for reason in SHED_REASONS if series.has(f"shed_{reason}")},
        "throttled_429": totals.get("status_429", 0.0),
    }
