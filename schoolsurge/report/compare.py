"""Compare run directories: their charts overlaid, and their headline figures against a baseline.

    comparison = compare_runs([run_a, run_b, run_c])       # the baseline is the first unless `baseline=` says
    write_comparison(comparison, out_dir)                  # out_dir/compare.html (self-contained) + compare.json
    regressions(comparison, 5.0)                           # "run_b: time to log in p95 ... 31.0% worse ..." lines

Every figure says its terms. Run terms are the run's own people and clock; national terms divide rates by the
run's load fraction (scale x speed, from its manifest) and people by its scale, so runs at different load
fractions compare in national terms. Shares, ratios and latencies (real milliseconds) are the same in both.

The morning's figures are those of the scenario's SLO window, as the run's report judges them: people served
(`served_share`), time to log in (the run's histograms, `RunData.totals()`), error ratio, people's requests/s.
A capacity sweep's are over its whole run (its clock is its steps, not the morning): compare its SLO capacity.
The SLO capacity comes from capacity.json (written beside each report): a sweep's SLO capacity, or the load a
normal run held a few minutes in a row with every SLO met (0 when it held none).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import pandas as pd

from schoolsurge.errors import ReportError
from schoolsurge.files import atomic_file, read_regular_text
from schoolsurge.report.data import RunData, load_run, number_or_none
from schoolsurge.report.outcome import served_share
from schoolsurge.report.verdicts import LOGIN_PERCENTILES
from schoolsurge.rundir import (
    AGGREGATED,
    CAPACITY_CSV,
    CAPACITY_JSON,
    FAILURE_COUNTERS,
    MANIFEST,
    REPORT,
    SESSIONS_CSV,
    STATS_CSV,
    STATS_SUFFIX,
    Counter,
    Gauge,
    Manifest,
    RunKind,
    merged,
    write_json,
)

COMPARE_HTML = "compare.html"
COMPARE_JSON = "compare.json"
CURVE_BIN_SCENARIO_S = 60  # charts and the peak minute: bins of about one scenario minute (whole run seconds)
SERVED_BIN_SCENARIO_S = 300  # the served share: bins of about five scenario minutes

RUN_TERMS = "run terms"
NATIONAL_TERMS = "national terms"
BOTH_TERMS = "same in run and national terms"


class HeadlineFigure(NamedTuple):
    """A figure of the comparison table: its key (compare.json, `regressions(figures=...)`), label, which way is
    better ("higher" or "lower"), its terms and its unit (share, ratio, ms, rate, people)."""

    key: str
    label: str
    better: str
    terms: str
    unit: str
    caveat: str = ""


def _twins(key: str, label: str, unit: str, caveat: str = "") -> tuple[HeadlineFigure, HeadlineFigure]:
    """A rate or a count of people, in run terms and in national terms."""
    return (
        HeadlineFigure(key, label, "higher", RUN_TERMS, unit, caveat),
        HeadlineFigure(f"{key}_national", label, "higher", NATIONAL_TERMS, unit, caveat),
    )


RETRIES_CAVEAT = "retries raise it too: read it with the error ratio"


HEADLINE_FIGURES: tuple[HeadlineFigure, ...] = (
    HeadlineFigure(
        "served_share", "people served: share of those who tried to log in who got in", "higher", BOTH_TERMS, "share"
    ),
    *_twins("served_people", "people served (got in, after retries)", "people"),
    *(HeadlineFigure(f"login_p{p}_ms", f"time to log in p{p}", "lower", BOTH_TERMS, "ms") for p in LOGIN_PERCENTILES),
    HeadlineFigure("error_ratio", "error ratio of people's requests", "lower", BOTH_TERMS, "ratio"),
    *_twins("requests_per_s_mean", "people's requests/s, mean (failed or not)", "rate", RETRIES_CAVEAT),
    *_twins("requests_per_s_peak", "people's requests/s, peak scenario minute (failed or not)", "rate", RETRIES_CAVEAT),
    *_twins("successful_requests_per_s_mean", "people's successful requests/s, mean", "rate"),
    *_twins("slo_capacity_requests_per_s", "SLO capacity (sweep), successful requests/s", "rate"),
    *_twins("slo_capacity_logins_per_s", "SLO capacity (sweep), logins/s", "rate"),
    *_twins("held_requests_per_s", "load held with every SLO met (run), people's requests/s", "rate"),
)
FIGURES_BY_KEY = {figure.key: figure for figure in HEADLINE_FIGURES}
# What `regressions` checks by default: what people got and what the platform held, rates in national terms (so
# runs at different load fractions compare), and not the raw request rate (retries raise it when things fail).
DEFAULT_REGRESSION_FIGURES: tuple[str, ...] = (
    "served_share",
    "login_p95_ms",
    "error_ratio",
    "successful_requests_per_s_mean_national",
    "slo_capacity_requests_per_s_national",
    "slo_capacity_logins_per_s_national",
    "held_requests_per_s_national",
)
# The table's sections (one row per run each): a figure key's prefix -> its section.
SECTIONS = (
    ("What people got", ("served_", "login_", "error_ratio")),
    ("Throughput", ("requests_", "successful_")),
    ("Capacity (capacity.json)", ("slo_capacity_", "held_")),
)


@dataclass
class RunCurves:
    """A run's curves for the overlaid charts, each indexed by the scenario clock (s since midnight) of its bin's
    start, or by run seconds when the run's clock is unknown. Rates per run second and people in run terms."""

    login_p95_ms: pd.Series | None = None
    requests_per_s: pd.Series | None = None
    failures_per_s: pd.Series | None = None
    in_session: pd.Series | None = None
    served_share: pd.Series | None = None  # 0..1, of the people due in each bin
    sources: dict[str, str] = field(default_factory=dict)  # curve -> where it came from


@dataclass
class ComparedRun:
    run_dir: Path
    name: str
    label: str  # run directory name, scenario / profile
    scenario: str
    profile: str
    kind: str  # run, sweep, plain locust
    status: str
    started_at: str
    scale: float | None
    speed: float | None
    window: str  # where the morning's figures were taken (the SLO window, or "whole sweep")
    figures: dict[str, float | None]
    sources: dict[str, str]  # figure group -> where it came from
    curves: RunCurves
    on_clock: bool  # curves on the scenario clock (else run seconds)
    login_p95_objective_ms: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def load_fraction(self) -> float | None:
        return self.scale * self.speed if self.scale and self.speed else None


@dataclass
class Comparison:
    runs: list[ComparedRun]  # the baseline first
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> ComparedRun:
        return self.runs[0]

    def deviation_pct(self, run: ComparedRun, key: str) -> float | None:
        """(run - baseline) / baseline in %; None when either is unknown or the baseline is 0 and the run not."""
        return deviation_pct(self.baseline.figures.get(key), run.figures.get(key))

    def worse_pct(self, run: ComparedRun, key: str) -> float | None:
        """How much worse than the baseline the run is, in % (negative: better), by the figure's direction;
        +inf (-inf) when the baseline is 0 and the run worse (better)."""
        return worse_pct(FIGURES_BY_KEY[key], self.baseline.figures.get(key), run.figures.get(key))

    def to_dict(self) -> dict[str, Any]:
        """compare.json: every figure of every run, its deviation from the baseline, what each figure means."""
        return _jsonable(
            {
                "baseline": self.baseline.name,
                "figures": [figure._asdict() for figure in HEADLINE_FIGURES],
                "default_regression_figures": list(DEFAULT_REGRESSION_FIGURES),
                "notes": self.notes,
                "runs": [
                    {
                        "name": run.name,
                        "run_dir": str(run.run_dir),
                        "label": run.label,
                        "baseline": index == 0,
                        "scenario": run.scenario,
                        "profile": run.profile,
                        "kind": run.kind,
                        "status": run.status,
                        "started_at": run.started_at,
                        "scale": run.scale,
                        "speed": run.speed,
                        "load_fraction": run.load_fraction,
                        "window": run.window,
                        "figures": run.figures,
                        "deviation_pct": {f.key: self.deviation_pct(run, f.key) for f in HEADLINE_FIGURES},
                        "sources": run.sources,
                        "notes": run.notes,
                    }
                    for index, run in enumerate(self.runs)
                ],
            }
        )


def deviation_pct(baseline: float | None, value: float | None) -> float | None:
    if baseline is None or value is None:
        return None
    if baseline == 0:
        return 0.0 if value == 0 else None
    return 100.0 * (value - baseline) / abs(baseline)


def worse_pct(figure: HeadlineFigure, baseline: float | None, value: float | None) -> float | None:
    if baseline is None or value is None:
        return None
    sign = 1.0 if figure.better == "lower" else -1.0
    if baseline == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, sign * value)
    return sign * 100.0 * (value - baseline) / abs(baseline)


# ---- comparing -------------------------------------------------------------------------------------------


def compare_runs(run_dirs: Sequence[Path], baseline: Path | None = None) -> Comparison:
    """Load the runs (the baseline first: `baseline`, else the first of `run_dirs`) and their figures.
    ReportError, one line naming the path, for anything that is not a usable run directory."""
    paths = [Path(p) for p in run_dirs]
    if baseline is not None:
        base = Path(baseline)
        paths = [base, *(p for p in paths if not _same(p, base))]
    for path in paths:
        _check_run_dir(path)
    seen: dict[str, Path] = {}
    for path in paths:
        key = str(path.resolve())
        if key in seen:
            raise ReportError(f"{path}: given twice (as {seen[key]}); compare two or more different run directories")
        seen[key] = path
    if len(paths) < 2:
        given = ", ".join(str(p) for p in paths) or "none"
        raise ReportError(f"{given}: a comparison needs at least two run directories; pass two or more of reports/*")
    runs = [_compared_run(load_run(path)) for path in paths]
    return Comparison(runs, _comparison_notes(runs))


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _check_run_dir(path: Path) -> None:
    if not path.exists():
        raise ReportError(f"{path}: no such directory; pass run directories (folders under reports/)")
    if not path.is_dir():
        raise ReportError(f"{path}: not a directory; pass run directories (folders under reports/), not files")
    if not is_run_dir(path):
        raise ReportError(
            f"{path}: not a run directory (no {MANIFEST} nor Locust's *{STATS_SUFFIX}); pass folders under "
            "reports/ written by `schoolsurge run` or `locust --csv`"
        )


def is_run_dir(path: Path) -> bool:
    """A folder with a manifest or Locust's statistics (`locust --csv PREFIX` writes PREFIX_stats.csv)."""
    return (path / MANIFEST).exists() or (path / STATS_CSV).exists() or any(path.glob(f"*{STATS_SUFFIX}"))


def run_kind(run_dir: Path, manifest: Manifest) -> str:
    """run (`schoolsurge run`), sweep (a capacity sweep) or plain locust (`locust -f`, no runner)."""
    if manifest.kind == RunKind.SWEEP or (run_dir / CAPACITY_CSV).exists():
        return "sweep"
    return "run" if manifest.processes is not None else "plain locust"


def run_profile(manifest: Manifest) -> str:
    """The embedded platform's profile, or the target a run was pointed at."""
    if manifest.profile:
        return manifest.profile
    target = manifest.target
    return f"target {target}" if target and target != "embedded" else "?"


def _compared_run(data: RunData) -> ComparedRun:
    manifest = data.manifest
    kind = run_kind(data.run_dir, manifest)
    scenario = manifest.scenario or (data.scenario.name if data.scenario else "?")
    profile = run_profile(manifest)
    scale = manifest.scale if manifest.scale and manifest.scale > 0 else None
    speed = manifest.speed if manifest.speed and manifest.speed > 0 else None
    notes = list(data.notes)
    figures, sources, window = _morning_figures(data, kind, notes)
    figures.update(_capacity_figures(data.run_dir, notes))
    fraction = scale * speed if scale and speed else None
    for figure in HEADLINE_FIGURES:
        if figure.terms != NATIONAL_TERMS:
            continue
        value = figures.get(figure.key.removesuffix("_national"))
        divisor = scale if figure.unit == "people" else fraction
        figures[figure.key] = value / divisor if value is not None and divisor else None
    if fraction is None:
        notes.append(f"{MANIFEST} gives no scale and speed: national terms unknown")
    return ComparedRun(
        run_dir=data.run_dir,
        name=data.run_dir.name,
        label=f"{data.run_dir.name} ({scenario} / {profile})",
        scenario=scenario,
        profile=profile,
        kind=kind,
        status=str(manifest.status or "unknown"),
        started_at=manifest.started_at or "?",
        scale=scale,
        speed=speed,
        window=window,
        figures={figure.key: figures.get(figure.key) for figure in HEADLINE_FIGURES},
        sources=sources,
        curves=run_curves(data),
        on_clock=data.clock_start_s is not None,
        login_p95_objective_ms=data.scenario.slo.login_p95_ms if data.scenario is not None else None,
        notes=notes,
    )


def _ran_seconds(data: RunData) -> float | None:
    """How long the run measured, run seconds."""
    if data.sessions is not None and len(data.sessions):
        return float(data.sessions["second"].max()) + 1
    if data.test_start_unix is not None and len(data.history):
        return float(data.history["Timestamp"].max()) - data.test_start_unix
    return None


def _morning_figures(data: RunData, kind: str, notes: list[str]) -> tuple[dict[str, float | None], dict[str, str], str]:
    """Served share, time to log in, error ratio and people's requests/s within the SLO window (a sweep: its
    whole run), in run terms."""
    figures: dict[str, float | None] = {}
    sources: dict[str, str] = {}
    ran = _ran_seconds(data)
    sweep = kind == "sweep"
    seconds = None if sweep else data.slo_seconds()
    if sweep:
        window_label = "whole sweep"
        notes.append("a capacity sweep: its morning figures are over all its steps; compare its SLO capacity")
    else:
        window_label = data.slo_window_label()
    # served
    if data.sessions is not None:
        if sweep:
            sessions = data.sessions
            tried, served = int(sessions[Counter.STARTED].sum()), int(sessions[Counter.LOGINS_SUCCEEDED].sum())
        else:
            share = served_share(data)
            tried, served = (share.tried, share.served) if share else (0, 0)
        figures["served_share"] = served / tried if tried else None
        figures["served_people"] = float(served)
        sources["served"] = f"{SESSIONS_CSV} (people due in the window who tried to log in, and those who got in)"
    else:
        sources["served"] = f"unknown: no {SESSIONS_CSV}"
    # time to log in, error ratio
    if sweep:
        requests, failures = data.requests_in(None)
        histograms = merged(data.histograms.values()) if data.histograms else None
        login_ms = (
            {p: float(histograms.get_value_at_percentile(p)) for p in LOGIN_PERCENTILES}
            if histograms is not None and histograms.get_total_count()
            else {}
        )
        measure = "time to log in from the intended arrival" if data.histograms else "none"
    else:
        totals = data.totals()
        requests, failures, login_ms, measure = totals.requests, totals.failures, totals.login_ms, totals.login_measure
    for p in LOGIN_PERCENTILES:
        figures[f"login_p{p}_ms"] = login_ms.get(p)
    sources["login"] = measure
    figures["error_ratio"] = failures / requests if requests else None
    # throughput
    start, end = seconds if seconds else (0.0, ran or 0.0)
    if ran is not None:
        end = min(end, ran)
    duration = end - start
    if duration > 0 and requests:
        figures["requests_per_s_mean"] = requests / duration
        figures["successful_requests_per_s_mean"] = (requests - failures) / duration
    rates, source = people_rates(data)
    sources["requests"] = f"mean: Locust's statistics history; peak: {source}"
    if rates is not None and duration > 0:
        width = _bin_width(data, CURVE_BIN_SCENARIO_S)
        inside = rates["requests"][(rates.index >= start) & (rates.index < end)]
        if len(inside):
            binned = inside.groupby((inside.index // width) * width).sum() / width
            figures["requests_per_s_peak"] = float(binned.max())
    return figures, sources, window_label


def _capacity_figures(run_dir: Path, notes: list[str]) -> dict[str, float | None]:
    """From capacity.json: a sweep's SLO capacity, or the load a run held with every SLO met."""
    path = run_dir / CAPACITY_JSON
    if not path.exists():
        return {}
    try:
        capacity = json.loads(read_regular_text(path))
    except (OSError, ValueError) as error:
        notes.append(f"{CAPACITY_JSON} unreadable ({type(error).__name__}): no capacity figures")
        return {}
    if not isinstance(capacity, dict):
        return {}
    figures: dict[str, float | None] = {}
    slo = capacity.get("slo_capacity")
    if capacity.get("kind") == "sweep" and isinstance(slo, dict):
        # No step held every SLO, already the lowest broke one: it held no load, 0.
        none_held = slo.get("throughput") is None and slo.get("held_steps") == 0 and slo.get("limiting_objective")
        for key, field_name in (("requests", "successful_requests_per_s"), ("logins", "logins_per_s")):
            value = number_or_none(slo.get(field_name))
            figures[f"slo_capacity_{key}_per_s"] = 0.0 if value is None and none_held else value
    run = capacity.get("run")
    if capacity.get("kind") == "run" and isinstance(run, dict):
        held = run.get("held")
        # Held nowhere (no few minutes in a row with every SLO met): it held no load, 0.
        figures["held_requests_per_s"] = number_or_none(held.get("requests_per_s")) if isinstance(held, dict) else 0.0
    return figures


# ---- curves ----------------------------------------------------------------------------------------------


def _bin_width(data: RunData, scenario_s: float) -> int:
    """Whole run seconds about `scenario_s` scenario seconds long."""
    return max(1, round(scenario_s / (data.speed or 1.0)))


def _to_clock(data: RunData, index: pd.Index) -> pd.Index:
    """Run seconds -> scenario clock (s since midnight), when the run's clock is known."""
    if data.clock_start_s is None or data.speed is None:
        return index
    return pd.Index(data.clock_start_s + index.to_numpy(dtype=float) * data.speed)


def people_rates(data: RunData) -> tuple[pd.DataFrame | None, str]:
    """People's requests and failures in each run second (columns requests, failures): the engine's event-time
    counts in sessions.csv where it has them, else the running totals of Locust's history."""
    sessions = data.sessions
    if sessions is not None and Counter.REQUESTS in sessions and sessions[Counter.REQUESTS].sum() > 0:
        frame = sessions.set_index("second")
        rates = pd.DataFrame(
            {
                "requests": frame[Counter.REQUESTS].astype(float),
                "failures": frame[list(FAILURE_COUNTERS)].sum(axis=1).astype(float),
            }
        )
        return rates.groupby(level=0).sum(), SESSIONS_CSV
    if data.test_start_unix is None or not len(data.history):
        return None, "none"
    rows = data.history[data.is_request_row(data.history)].sort_values("Timestamp")
    if rows.empty:
        return None, "none"
    second = (rows["Timestamp"] - data.test_start_unix).round().astype(int).clip(lower=0)
    columns = {}
    for name, column in (("requests", "Total Request Count"), ("failures", "Total Failure Count")):
        added = rows.groupby("Name")[column].diff().fillna(rows[column])
        columns[name] = added.groupby(second).sum().astype(float)
    return pd.DataFrame(columns).fillna(0.0), "Locust's statistics history"


def run_curves(data: RunData) -> RunCurves:
    curves = RunCurves()
    width = _bin_width(data, CURVE_BIN_SCENARIO_S)
    # time to log in p95
    if data.histograms:
        by_bin: dict[int, list] = {}
        for second, histogram in data.histograms.items():
            by_bin.setdefault((second // width) * width, []).append(histogram)
        values = {}
        for start, histograms in sorted(by_bin.items()):
            total = merged(histograms)
            if total.get_total_count():
                values[start] = float(total.get_value_at_percentile(95))
        series = pd.Series(values, dtype=float)
        series.index = _to_clock(data, pd.Index(series.index))
        curves.login_p95_ms = series
        curves.sources["login p95"] = "the run's time-to-login histograms, by intended arrival"
    elif len(data.history):
        login = data.history[data.is_login_row(data.history)]
        login = login[pd.notna(login["95%"]) & (login["95%"] > 0)]
        if len(login):
            curves.login_p95_ms = pd.Series(login["95%"].to_numpy(dtype=float), index=login["clock_s"].to_numpy())
            curves.sources["login p95"] = "Locust's login entry (whole SSO flow, 10 s window)"
    # people's requests and failures
    rates, source = people_rates(data)
    if rates is not None and len(rates):
        full = rates.reindex(range(int(rates.index.max()) + 1), fill_value=0.0)
        binned = full.groupby((full.index // width) * width).sum() / width
        binned.index = _to_clock(data, binned.index)
        curves.requests_per_s, curves.failures_per_s = binned["requests"], binned["failures"]
        curves.sources["requests"] = source
    # people in a session
    if data.sessions is not None:
        sessions = data.sessions.set_index("second")[Gauge.ACTIVE_SESSIONS].astype(float)
        binned = sessions.groupby((sessions.index // width) * width).mean()
        binned.index = _to_clock(data, binned.index)
        curves.in_session = binned
        curves.sources["in a session"] = f"{SESSIONS_CSV}: people in a session"
    elif len(data.history) and "User Count" in data.history:
        users = data.history[data.history["Name"] == AGGREGATED]
        curves.in_session = pd.Series(users["User Count"].to_numpy(dtype=float), index=users["clock_s"].to_numpy())
        curves.sources["in a session"] = "Locust's simulated users (no sessions.csv)"
    # served share per 5-minute bin
    if data.sessions is not None:
        served_width = _bin_width(data, SERVED_BIN_SCENARIO_S)
        sessions = data.sessions
        cohorts = sessions.groupby((sessions["second"] // served_width) * served_width)[
            [Counter.STARTED, Counter.LOGINS_SUCCEEDED]
        ].sum()
        tried = cohorts[Counter.STARTED].where(cohorts[Counter.STARTED] > 0)
        share = (cohorts[Counter.LOGINS_SUCCEEDED] / tried).dropna()
        share.index = _to_clock(data, pd.Index(share.index))
        curves.served_share = share
        curves.sources["served"] = f"{SESSIONS_CSV}: of the people due in each bin, those who got in"
    return curves


def _comparison_notes(runs: list[ComparedRun]) -> list[str]:
    notes = []
    fractions = {run.load_fraction for run in runs}
    if len(fractions) > 1:
        shown = ", ".join(f"{run.name} {_fraction_text(run.load_fraction)}" for run in runs)
        notes.append(
            f"These runs offered different load fractions ({shown}): compare rates and people in national terms; "
            "the charts draw them in national terms."
        )
    if len({run.scenario for run in runs}) > 1:
        notes.append("These runs replayed different scenarios: their mornings differ, not only their platforms.")
    if len({run.window for run in runs}) > 1:
        notes.append("Their figures cover different windows (see each run's window): compare them with care.")
    if any(not run.on_clock for run in runs) and any(run.on_clock for run in runs):
        notes.append("Some runs' clock is unknown: their curves are drawn on run seconds, not the scenario clock.")
    return notes


def _fraction_text(fraction: float | None) -> str:
    return f"{fraction:.4g}" if fraction else "unknown"


# ---- regressions -----------------------------------------------------------------------------------------


def regressions(comparison: Comparison, threshold_pct: float, figures: Sequence[str] | None = None) -> list[str]:
    """One line per figure of a run (not the baseline) worse than the baseline by more than threshold_pct, by
    the figure's direction (higher error ratio and latency are worse; lower served share, throughput and SLO
    capacity are worse). A figure unknown in either run is not judged. figures=None: DEFAULT_REGRESSION_FIGURES."""
    if not math.isfinite(threshold_pct) or threshold_pct < 0:
        raise ReportError(f"regression threshold {threshold_pct!r}: give a percentage of 0 or more, e.g. 5")
    keys = list(DEFAULT_REGRESSION_FIGURES if figures is None else figures)
    unknown = [key for key in keys if key not in FIGURES_BY_KEY]
    if unknown:
        raise ReportError(f"unknown figure {', '.join(unknown)}; choose among {', '.join(FIGURES_BY_KEY)}")
    baseline = comparison.baseline
    lines = []
    for run in comparison.runs[1:]:
        for key in keys:
            figure = FIGURES_BY_KEY[key]
            worse = comparison.worse_pct(run, key)
            if worse is None or not worse > threshold_pct:
                continue
            amount = f"{worse:.1f}% worse"
            if math.isinf(worse):  # a time to log in never reached (people still logging in at the end), or 0
                amount = "worse (never reached)" if math.isinf(run.figures[key]) else "worse (the baseline's is 0)"
            lines.append(
                f"{run.name}: {figure.label} ({figure.terms}, {figure.better} is better) "
                f"{format_value(figure, run.figures[key])} against {format_value(figure, baseline.figures[key])} "
                f"in {baseline.name}: {amount} (threshold {threshold_pct:g}%)"
            )
    return lines


# ---- writing ---------------------------------------------------------------------------------------------


def format_value(figure: HeadlineFigure, value: float | None) -> str:
    if value is None:
        return "-"
    if figure.unit in ("share", "ratio"):
        return f"{value:.1%}" if figure.unit == "share" else f"{value:.2%}"
    if figure.unit == "ms":
        return f"{value:,.0f} ms" if math.isfinite(value) else "never"
    if figure.unit == "people":
        return f"{value:,.0f}"
    return f"{value:,.0f}/s" if abs(value) >= 100 else f"{value:,.3g}/s"


def format_deviation(pct: float | None) -> str:
    return "-" if pct is None else f"{pct:+.1f}%"


def write_comparison(comparison: Comparison, out_dir: Path) -> Path:
    """out_dir/compare.html (self-contained: charts embedded, no network) and out_dir/compare.json; returns the
    HTML's path."""
    from schoolsurge.report.compare_charts import comparison_charts

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(
            f"{out_dir}: cannot create it ({error.strerror}); pass --out with a writable folder"
        ) from None
    charts = comparison_charts(comparison)
    page = render_comparison(comparison, charts, out_dir)
    path = out_dir / COMPARE_HTML
    with atomic_file(path) as handle:
        handle.write(page)
    write_json(out_dir / COMPARE_JSON, comparison.to_dict())
    return path


def render_comparison(comparison: Comparison, charts: list[tuple[str, str, str]], out_dir: Path) -> str:
    """The page; charts are (title, what it shows, base64 PNG)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("schoolsurge", "report"), autoescape=select_autoescape(["html", "j2"])
    )
    sections = []
    for title, prefixes in SECTIONS:
        figures = [f for f in HEADLINE_FIGURES if f.key.startswith(prefixes)]
        if not any(run.figures.get(f.key) is not None for run in comparison.runs for f in figures):
            continue
        rows = []
        for index, run in enumerate(comparison.runs):
            cells = []
            for figure in figures:
                value = run.figures.get(figure.key)
                deviation = comparison.deviation_pct(run, figure.key)
                worse = comparison.worse_pct(run, figure.key)
                cells.append(
                    {
                        "key": figure.key,
                        "value": format_value(figure, value),
                        "raw": "" if value is None else repr(float(value)),
                        "deviation": "baseline"
                        if index == 0
                        else "baseline's is 0"
                        if deviation is None and value is not None and comparison.baseline.figures.get(figure.key) == 0
                        else format_deviation(deviation),
                        "raw_deviation": "" if deviation is None or index == 0 else repr(deviation),
                        "judged": ""
                        if index == 0 or worse is None
                        else "worse"
                        if worse > 0
                        else "better"
                        if worse < 0
                        else "same",
                    }
                )
            rows.append({"run": run, "baseline": index == 0, "cells": cells})
        sections.append({"title": title, "figures": figures, "rows": rows})
    return environment.get_template("compare.html.j2").render(
        comparison=comparison,
        baseline=comparison.baseline,
        runs=[
            {
                "run": run,
                "fraction": _fraction_text(run.load_fraction),
                "report": _relative_link(run.run_dir / REPORT, out_dir) if (run.run_dir / REPORT).exists() else None,
            }
            for run in comparison.runs
        ],
        sections=sections,
        charts=[{"title": title, "caption": caption, "png": png} for title, caption, png in charts],
        default_figures=[FIGURES_BY_KEY[key] for key in DEFAULT_REGRESSION_FIGURES],
    )


def _relative_link(target: Path, start: Path) -> str:
    try:
        return quote(Path(os.path.relpath(target.resolve(), start.resolve())).as_posix())
    except ValueError:  # another drive (Windows)
        return target.resolve().as_uri()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _jsonable(value.item())
    return value
