"""The platform's side of a run, from its own Prometheus figures, and its capacity by the operational laws.

The run scraped the target's /metrics every few seconds into target_metrics.jsonl (engine/target_metrics.py).
Here those scrapes become series on the run's clock: CPU (cores busy: the rate of
`schoolsurge_platform_cpu_seconds_total`, or of the standard `process_cpu_seconds_total` of another target),
requests in flight and queued, requests admitted and shed by reason (503), login throttling (429) and time in
the database (`schoolsurge_db_statement_duration_seconds`). Counters become rates over the interval between two
scrapes (a counter that went down was reset: its new value is what it counted since).

The operational laws (models/operational.py) then give the platform's CPU-bound capacity from what was
measured: per measured step of a sweep (capacity.csv: measured_from_s to end_s), or per window of about one
scenario minute (never shorter than the scrape interval) of a morning, the utilisation U (CPU seconds over
cores x seconds: the whole machine's busy fraction, m = the cores the platform sees,
`schoolsurge_platform_cpu_cores`), the throughput X (people's successful requests/s: capacity.csv's
successful_requests_per_s, or sessions.csv's requests minus failures), the service demand D = m U / X (CPU
seconds per successful request, all cores together: the CPU spent on refused requests is charged to the served
ones) and the bound X <= m / D. The bound quoted is the one measured where throughput was highest (at a light
load D also carries the platform's idle work); a line fitted through all windows gives the marginal demand as
a check. For a sweep it is set beside the USL fit's ceiling: two independent estimates of one ceiling, whose
difference says which resource bound (the shed reasons tell a profile's limits from the machine's).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from schoolsurge.files import open_regular, open_regular_text, read_regular_text, readable
from schoolsurge.models.operational import Demand, MarginalDemand, marginal_demand
from schoolsurge.report.capacity_card import CapacityCard
from schoolsurge.report.data import RunData, number_or_none
from schoolsurge.rundir import FAILURE_COUNTERS, SESSIONS_CSV, TARGET_METRICS_SERIES, TIMELINE, Counter
from schoolsurge.rundir.metrics import (
    CPU_CORES,
    DB_STATEMENT_SECONDS,
    HTTP_REQUESTS,
    IN_FLIGHT,
    IN_FLIGHT_LIMIT,
    LOGINS,
    MACHINE_REASONS,
    PLATFORM_CPU_SECONDS,
    PROCESS_CPU_SECONDS_TOTAL,
    PROFILE_REASONS,
    QUEUE_DEPTH,
    QUEUE_LIMIT,
    RATE_GATE_WAITING,
    SHED,
    SHED_REASONS,
    LoginOutcome,
    parse_scrape_line,
    total,
)
from schoolsurge.scenario import clock_to_seconds, seconds_to_clock

# The samples read here of the platform's metrics (rundir/metrics.py)
CPU_SECONDS = total(PLATFORM_CPU_SECONDS)
HTTP_REQUESTS_TOTAL = total(HTTP_REQUESTS)
SHED_TOTAL = total(SHED)
LOGINS_TOTAL = total(LOGINS)
DB_SECONDS = f"{DB_STATEMENT_SECONDS}_sum"
DB_STATEMENTS = f"{DB_STATEMENT_SECONDS}_count"
METRICS_ROUTE = "/metrics"  # the scrapes themselves, left out of the requests
COUNTER_COLUMNS = (
    "cpu_s",
    "requests",
    "status_429",
    "status_503",
    *(f"shed_{reason}" for reason in SHED_REASONS),
    "logins_throttled",
    "db_s",
    "db_statements",
)
GAUGE_COLUMNS = ("in_flight", "queued", "rate_gate_waiting", "in_flight_limit", "queue_limit", "cores")
CPU_BINDS_WITHIN = 1.25  # a CPU bound at most this many times the USL ceiling: the CPU is what bound
log = logging.getLogger(__name__)


# ---- the scrapes ---------------------------------------------------------------------------------------------


@dataclass
class PlatformSeries:
    """One row per scrape (`run_s`: run seconds of the scrape), counters cumulative, gauges as scraped."""

    frame: pd.DataFrame
    cpu_metric: str | None  # the CPU counter found, if any

    @property
    def cores(self) -> int | None:
        cores = self.frame["cores"].dropna()
        return int(cores.iloc[-1]) if len(cores) and cores.iloc[-1] >= 1 else None

    @property
    def interval_s(self) -> float:
        """The usual time between two scrapes."""
        gaps = np.diff(self.frame["run_s"].to_numpy(dtype=float))
        return float(np.median(gaps)) if len(gaps) else math.nan

    def has(self, column: str) -> bool:
        return bool(self.frame[column].notna().any())

    def cumulative(self, column: str) -> np.ndarray:
        """A counter made monotone: a drop is a reset, after which the counter's value is what it counted."""
        values = self.frame[column].to_numpy(dtype=float)
        if not len(values):
            return values
        steps = np.diff(values)
        steps = np.where(steps < 0, values[1:], steps)
        return np.concatenate([[values[0]], values[0] + np.cumsum(np.nan_to_num(steps))])

    def between(self, column: str, start_s: float, end_s: float) -> float | None:
        """How much a counter grew from run second start_s to end_s (linear between scrapes); None outside the
        scraped span."""
        run_s = self.frame["run_s"].to_numpy(dtype=float)
        if not self.has(column) or len(run_s) < 2 or start_s < run_s[0] or end_s > run_s[-1] or end_s <= start_s:
            return None
        values = self.cumulative(column)
        return float(np.interp(end_s, run_s, values) - np.interp(start_s, run_s, values))

    def rates(self) -> pd.DataFrame:
        """Per interval between consecutive scrapes: start, end, and each counter's rate per second."""
        run_s = self.frame["run_s"].to_numpy(dtype=float)
        out = pd.DataFrame({"start_s": run_s[:-1], "end_s": run_s[1:]})
        seconds = np.diff(run_s)
        for column in COUNTER_COLUMNS:
            out[column] = np.diff(self.cumulative(column)) / seconds if len(run_s) > 1 else []
        shed = out[[f"shed_{reason}" for reason in SHED_REASONS]].fillna(0).sum(axis=1)
        out["shed"] = shed
        out["admitted"] = out["requests"] - shed
        out["other_503"] = (out["status_503"] - shed).clip(lower=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["db_mean_ms"] = 1000 * np.diff(self.cumulative("db_s")) / np.diff(self.cumulative("db_statements"))
        return out[seconds > 0].reset_index(drop=True)

    def totals(self) -> dict[str, float]:
        """What each counter counted from the first scrape to the last."""
        return {
            column: float(values[-1] - values[0])
            for column in COUNTER_COLUMNS
            if self.has(column) and len(values := self.cumulative(column))
        }


def _scrape_row(samples: list[Any]) -> tuple[dict[str, float], bool]:
    row: dict[str, float] = {}
    own_cpu = False

    def add(column: str, value: float) -> None:
        row[column] = row.get(column, 0.0) + value

    for name, labels, value in samples:
        value = float(value)
        if name == CPU_SECONDS:
            own_cpu = True
            add("cpu_s", value)
        elif name == PROCESS_CPU_SECONDS_TOTAL:
            add("process_cpu_s", value)
        elif name == CPU_CORES:
            row["cores"] = value
        elif name == IN_FLIGHT:
            add("in_flight", value)
        elif name == QUEUE_DEPTH:
            add("queued", value)
        elif name == RATE_GATE_WAITING:
            add("rate_gate_waiting", value)
        elif name == IN_FLIGHT_LIMIT:
            row["in_flight_limit"] = value
        elif name == QUEUE_LIMIT:
            row["queue_limit"] = value
        elif name == HTTP_REQUESTS_TOTAL and labels.get("route") != METRICS_ROUTE:
            add("requests", value)
            status = labels.get("status")
            if status in ("429", "503"):
                add(f"status_{status}", value)
        elif name == SHED_TOTAL and labels.get("reason") in SHED_REASONS:
            add(f"shed_{labels['reason']}", value)
        elif name == LOGINS_TOTAL and labels.get("outcome") == LoginOutcome.THROTTLED:
            add("logins_throttled", value)
        elif name == DB_SECONDS:
            add("db_s", value)
        elif name == DB_STATEMENTS:
            add("db_statements", value)
    return row, own_cpu


def read_series(run_dir: Path, test_start_unix: float | None) -> PlatformSeries | None:
    """The run's scrapes of the target (None without target_metrics.jsonl or any scrape in it). A line that is
    not a scrape (a write cut short) is skipped."""
    path = Path(run_dir) / TARGET_METRICS_SERIES
    if not readable(path):
        return None
    rows: list[dict[str, float]] = []
    own_cpu = False
    with open_regular_text(path, errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                unix, samples = parse_scrape_line(line)
                row, own = _scrape_row(samples)
                row["unix"] = unix
            except (ValueError, KeyError, TypeError) as error:
                log.warning("%s line %d is not a scrape (%s)", path, number, error)
                continue
            own_cpu = own_cpu or own
            rows.append(row)
    if not rows:
        return None
    frame = pd.DataFrame(rows).sort_values("unix").reset_index(drop=True)
    for column in (*COUNTER_COLUMNS, *GAUGE_COLUMNS, "process_cpu_s"):
        if column not in frame:
            frame[column] = np.nan
        elif column in COUNTER_COLUMNS:  # a labelled counter has no sample before its first count: it was 0
            frame[column] = frame[column].fillna(0.0)
    cpu_metric = CPU_SECONDS if own_cpu else PROCESS_CPU_SECONDS_TOTAL if frame["process_cpu_s"].notna().any() else None
    if cpu_metric == PROCESS_CPU_SECONDS_TOTAL:
        frame["cpu_s"] = frame["process_cpu_s"]
    origin = test_start_unix if test_start_unix is not None else float(frame["unix"].iloc[0])
    frame.insert(0, "run_s", frame["unix"] - origin)
    return PlatformSeries(frame, cpu_metric)


# ---- the operational laws --------------------------------------------------------------------------------------


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
    kind: str  # "sweep" or "run"
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
        if self.kind != "sweep":
            return f"the platform shed nothing{throttled}: no limit refused work during this run"
        return (
            f"the platform shed nothing{throttled}: no limit refused work, so what levelled throughput off was waiting "
            "(threads, the database lock, the generator) rather than a resource running out"
        )

    def explanation(self) -> str:
        busiest = self.busiest
        if busiest is None or self.bound is None:
            return "No service-demand bound: no window with both the platform's CPU and successful requests measured."
        demand_ms = 1000 * (busiest.cpu.demand_s or 0)
        where = f"step {busiest.label}" if self.kind == "sweep" else busiest.label
        first = (
            f"Operational laws: at {where}, where throughput was highest ({busiest.cpu.throughput:,.1f} successful "
            f"requests/s, run terms), the platform's CPU was {busiest.cpu.utilisation:.0%} busy with "
            f"{self._servers_text()}, so a request costs D = m U / X = {demand_ms:,.2f} ms of CPU and the CPU bounds "
            f"throughput at X <= m / D = {self.bound:,.0f} requests/s."
        )
        if self.kind != "sweep":
            factor = self.bound / busiest.cpu.throughput if busiest.cpu.throughput else math.inf
            return f"{first} That is {factor:,.1f} times the busiest window's load; {self.what_bound()}."
        if self.usl_ceiling is None and self.usl_fitted:
            factor = self.bound / busiest.cpu.throughput if busiest.cpu.throughput else math.inf
            return (
                f"{first} The USL fit is linear over the measured steps (no contention nor coherency measured), so it "
                f"sets no ceiling: the sweep ended before throughput levelled off, its highest {factor:,.1f} times "
                f"below the CPU bound; {self.what_bound()}."
            )
        if self.usl_ceiling is None:
            return f"{first} No USL fit to compare it with; {self.what_bound()}."
        ceiling = "peak X(N*)" if self.usl_ceiling_kind == "peak_throughput" else "Amdahl ceiling gamma/alpha"
        ratio = self.bound_over_usl or math.nan
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

    def to_json(self, card: CapacityCard | None = None) -> dict[str, Any]:
        busiest, marginal = self.busiest, self.marginal

        def national(rate: float | None) -> float | None:
            return card.national_rate(rate) if card is not None else None

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


def operational_laws(
    series: PlatformSeries,
    card: CapacityCard | None,
    sessions: pd.DataFrame | None,
    speed: float | None,
    clock_start_s: float | None,
) -> OperationalLaws | None:
    """The laws for a sweep (its card's measured steps and USL fit) or a morning (its sessions)."""
    if series.cpu_metric is None:
        return None
    sweep = card is not None and card.kind == "sweep" and card.steps is not None
    if sweep:
        assert card is not None
        windows = sweep_windows(series, card.measured_steps)
    elif sessions is not None and len(sessions):
        windows = morning_windows(series, sessions, speed, clock_start_s)
    else:
        return None
    totals = series.totals()
    laws = OperationalLaws(
        "sweep" if sweep else "run",
        series.cores,
        series.cpu_metric,
        windows,
        shed={reason: totals.get(f"shed_{reason}", 0.0) for reason in SHED_REASONS if series.has(f"shed_{reason}")},
        throttled_429=totals.get("status_429", 0.0),
    )
    if sweep and card is not None and card.usl is not None:
        laws.usl_fitted = True
        if card.usl.peak_throughput is not None:
            laws.usl_ceiling, laws.usl_ceiling_kind = card.usl.peak_throughput, "peak_throughput"
        elif card.usl.amdahl_ceiling is not None:
            laws.usl_ceiling, laws.usl_ceiling_kind = card.usl.amdahl_ceiling, "amdahl_ceiling"
    return laws


def operational_laws_json(card: CapacityCard) -> dict[str, Any] | None:
    """capacity.json's "operational_laws", from the card's run directory (None without the target's scrapes)."""
    run_dir = card.run_dir
    try:
        timeline = json.loads(read_regular_text(run_dir / TIMELINE))
    except (OSError, ValueError):
        timeline = {}
    series = read_series(run_dir, number_or_none(timeline.get("test_start_unix")))
    if series is None:
        return None
    sessions = None
    if card.kind != "sweep" and readable(run_dir / SESSIONS_CSV):
        with open_regular(run_dir / SESSIONS_CSV) as handle:
            sessions = pd.read_csv(handle)
    try:
        clock_start: float | None = clock_to_seconds(str(timeline.get("window_start")))
    except ValueError:
        clock_start = None
    laws = operational_laws(series, card, sessions, card.speed, clock_start)
    return laws.to_json(card) if laws is not None else None


# ---- the report's section ------------------------------------------------------------------------------------


def platform_section(data: RunData, axis: Any, card: CapacityCard | None) -> dict[str, Any] | None:
    """What the report's "Platform side" section shows (None without the target's scrapes)."""
    from schoolsurge.report import charts_platform  # charts need matplotlib: only when there is something to draw

    series = read_series(data.run_dir, data.test_start_unix)
    if series is None or len(series.frame) < 2:
        return None
    laws = operational_laws(series, card, data.sessions, data.speed, data.clock_start_s)
    if data.sessions is None:  # the axis knows no run seconds of its own: the scrapes' span
        axis = dataclasses.replace(axis, seconds=max(axis.seconds, math.ceil(float(series.frame["run_s"].max()))))
    charts = [chart for draw in charts_platform.CHARTS if (chart := draw(series, axis, laws)) is not None]
    lines = [
        ("scrapes of the target's metrics", f"{len(series.frame):,}, every {series.interval_s:.1f} s (run time)"),
        ("CPU measured by", series.cpu_metric or "nothing: the target exports no CPU counter"),
    ]
    if series.cores is not None:
        lines.append(("cores the platform may use (m)", f"{series.cores}"))
    step_columns: list[str] = []
    step_rows: list[list[str]] = []
    if laws is not None and laws.busiest is not None:
        busiest = laws.busiest
        lines += [
            ("service demand D = m U / X", f"{1000 * (busiest.cpu.demand_s or 0):,.2f} ms CPU per successful request"),
            ("CPU bound X <= m / D", f"{laws.bound:,.0f} successful requests/s (run terms)"),
        ]
        if card is not None and (national := card.national_rate(laws.bound)) is not None:
            lines.append(("CPU bound, national terms", f"{national:,.0f} successful requests/s"))
        if laws.usl_ceiling is not None:
            lines.append(("USL ceiling (run terms)", f"{laws.usl_ceiling:,.0f} successful requests/s"))
        marginal = laws.marginal
        if marginal is not None and (bound := marginal.bound(laws.servers)) is not None:
            lines.append(
                (
                    "marginal demand (fit over the windows)",
                    f"{1000 * marginal.demand_s:,.2f} ms per request, {marginal.idle:.2f} cores busy at no load: "
                    f"X <= (m - idle) / D = {bound:,.0f} requests/s",
                )
            )
        if laws.kind == "sweep":
            step_columns = ["step", "X (successful req/s)", "CPU busy (cores)", "U", "D (ms CPU/req)", "m / D (req/s)"]
            step_columns.append("database busy (s/s)")
            for window in laws.windows:
                cpu = window.cpu
                step_rows.append(
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
    return {
        "lines": lines,
        "explanation": laws.explanation() if laws is not None else None,
        "charts": charts,
        "step_columns": step_columns,
        "step_rows": step_rows,
    }
