"""The regression gate: a run's headline figures worse than the baseline's by more than a threshold, one line
each (`schoolsurge compare --fail-on-regression PCT` exits 3 when there is any)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from schoolsurge.errors import ReportError
from schoolsurge.report.compare.figures import DEFAULT_REGRESSION_FIGURES, FIGURES_BY_KEY, format_value
from schoolsurge.report.compare.runs import Comparison


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
