"""Run directories read into the comparison: each run's headline figures (figures.py) and curves (curves.py),
the baseline first.

Every figure says its terms. Run terms are the run's own people and clock; national terms divide rates by the
run's load fraction (scale x speed, from its manifest) and people by its scale, so runs at different load
fractions compare in national terms. Shares, ratios and latencies (real milliseconds) are the same in both.

The morning's figures are those of the scenario's SLO window, as the run's report judges them: people served
(`served_share`), time to log in (the run's histograms, `RunData.totals()`), error ratio, people's requests/s.
A capacity sweep's are over its whole run (its clock is its steps, not the morning): compare its SLO capacity,
with other sweeps only (a run and a sweep are refused: set side by side they read as a regression that is not).
The SLO capacity comes from capacity.json (written beside each report): a sweep's SLO capacity, or the load a
normal run held a few minutes in a row with every SLO met (0 when it held none).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schoolsurge.errors import ReportError
from schoolsurge.files import read_regular_text
from schoolsurge.models.replay import load_fraction
from schoolsurge.report.compare.curves import (
    CURVE_BIN_SCENARIO_S,
    RunCurves,
    bin_width,
    on_scenario_clock,
    people_rates,
    run_curves,
)
from schoolsurge.report.compare.figures import (
    DEFAULT_REGRESSION_FIGURES,
    FIGURES_BY_KEY,
    HEADLINE_FIGURES,
    NATIONAL_TERMS,
    deviation_pct,
    fraction_text,
    worse_pct,
)
from schoolsurge.report.load.json_fields import number_or_none
from schoolsurge.report.load.loader import is_run_dir, load_run
from schoolsurge.report.load.run_data import LOGIN_PERCENTILES, RunData, run_profile
from schoolsurge.report.outcome.served import served_share
from schoolsurge.rundir import (
    CAPACITY_JSON,
    LOGIN_MEASURE,
    MANIFEST,
    SESSIONS_CSV,
    STATS_SUFFIX,
    Counter,
    login_percentile,
    merged,
)

COMPARE_HTML = "compare.html"
COMPARE_JSON = "compare.json"


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
        return load_fraction(self.scale, self.speed) if self.scale and self.speed else None


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
    loaded = [load_run(path) for path in paths]
    _refuse_mixed_kinds(loaded)
    runs = [_compared_run(data) for data in loaded]
    return Comparison(runs, _comparison_notes(runs))


def _refuse_mixed_kinds(loaded: Sequence[RunData]) -> None:
    """A sweep's figures are over its steps (its clock is the steps', not the morning's) and a run's over the
    scenario's SLO window: set side by side they read as a regression that is not one. One line naming both."""
    sweeps = [data for data in loaded if not data.kind.judged_on_the_morning]
    mornings = [data for data in loaded if data.kind.judged_on_the_morning]
    if sweeps and mornings:
        sweep, morning = sweeps[0], mornings[0]
        raise ReportError(
            f"{sweep.run_dir} is a capacity sweep and {morning.run_dir} a {morning.kind.label(morning.manifest)}: "
            "a sweep is judged step by step, a run on the morning's SLO window; compare sweeps with sweeps "
            "(their SLO capacity) and runs with runs"
        )


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


def _compared_run(data: RunData) -> ComparedRun:
    manifest = data.manifest
    kind = data.kind.label(manifest)
    scenario = manifest.scenario or (data.scenario.name if data.scenario else "?")
    profile = run_profile(manifest)
    scale = manifest.scale if manifest.scale and manifest.scale > 0 else None
    speed = manifest.speed if manifest.speed and manifest.speed > 0 else None
    notes = list(data.notes)
    figures, sources, window = _morning_figures(data, notes)
    figures.update(_capacity_figures(data.run_dir, notes))
    fraction = load_fraction(scale, speed) if scale and speed else None
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
        on_clock=on_scenario_clock(data),
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


def _morning_figures(data: RunData, notes: list[str]) -> tuple[dict[str, float | None], dict[str, str], str]:
    """Served share, time to log in, error ratio and people's requests/s within the SLO window (a sweep: its
    whole run), in run terms."""
    figures: dict[str, float | None] = {}
    sources: dict[str, str] = {}
    ran = _ran_seconds(data)
    sweep = not data.kind.judged_on_the_morning  # a sweep's clock is its steps: its whole run
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
        never = 0
        if data.sessions is not None:  # those who gave up or never finished: never logged in (rundir/figures.py)
            never = int(data.sessions[Counter.ABANDONED].sum() + data.sessions[Counter.UNFINISHED].sum())
        login_ms = {}
        if histograms is not None and histograms.get_total_count():
            for p in LOGIN_PERCENTILES:
                figure = login_percentile(histograms, never, p)
                if figure.judged and figure.value_ms is not None:
                    login_ms[p] = figure.value_ms
        measure = LOGIN_MEASURE if data.histograms else "none"
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
        width = bin_width(data, CURVE_BIN_SCENARIO_S)
        inside = rates["requests"][(rates.index >= start) & (rates.index < end)]
        if len(inside):
            binned = inside.groupby((inside.index // width) * width).mean()
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
    slo = capacity.get("slo_capacity")  # a sweep's answer
    if isinstance(slo, dict):
        # No step held every SLO, already the lowest broke one: it held no load, 0.
        none_held = slo.get("throughput") is None and slo.get("held_steps") == 0 and slo.get("limiting_objective")
        for key, field_name in (("requests", "successful_requests_per_s"), ("logins", "logins_per_s")):
            value = number_or_none(slo.get(field_name))
            figures[f"slo_capacity_{key}_per_s"] = 0.0 if value is None and none_held else value
    run = capacity.get("run")  # a normal run's
    if isinstance(run, dict):
        held = run.get("held")
        # Held nowhere (no few minutes in a row with every SLO met): it held no load, 0.
        figures["held_requests_per_s"] = number_or_none(held.get("requests_per_s")) if isinstance(held, dict) else 0.0
    return figures


def _comparison_notes(runs: list[ComparedRun]) -> list[str]:
    notes = []
    fractions = {run.load_fraction for run in runs}
    if len(fractions) > 1:
        shown = ", ".join(f"{run.name} {fraction_text(run.load_fraction)}" for run in runs)
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
