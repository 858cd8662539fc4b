"""The comparison's headline figures: what each means, which way is better, its terms and unit, and how it is
written; the deviation of a run's figure from the baseline's."""

from __future__ import annotations

import math
from typing import NamedTuple

from schoolsurge.report.load.run_data import LOGIN_PERCENTILES

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


def fraction_text(fraction: float | None) -> str:
    return f"{fraction:.4g}" if fraction else "unknown"
