"""Comparing run directories: their headline figures against a baseline, their curves overlaid, the regression
gate, and compare.html / compare.json (see runs.py for the figures' terms and windows).

    comparison = compare_runs([run_a, run_b, run_c])       # the baseline is the first unless `baseline=` says
    write_comparison(comparison, out_dir)                  # out_dir/compare.html (self-contained) + compare.json
    regressions(comparison, 5.0)                           # "run_b: time to log in p95 ... 31.0% worse ..." lines

    figures.py   the headline figures: meaning, direction, terms, unit, wording
    runs.py      a run directory read into its figures; the comparison
    curves.py    a run's curves binned on the scenario clock
    gate.py      the regression gate
    charts.py    the curves overlaid, one chart per curve
    page.py      compare.html and compare.json
"""

from schoolsurge.report.compare.figures import DEFAULT_REGRESSION_FIGURES, FIGURES_BY_KEY, HEADLINE_FIGURES
from schoolsurge.report.compare.gate import regressions
from schoolsurge.report.compare.page import write_comparison
from schoolsurge.report.compare.runs import COMPARE_HTML, COMPARE_JSON, ComparedRun, Comparison, compare_runs

__all__ = [
    "COMPARE_HTML",
    "COMPARE_JSON",
    "DEFAULT_REGRESSION_FIGURES",
    "FIGURES_BY_KEY",
    "HEADLINE_FIGURES",
    "ComparedRun",
    "Comparison",
    "compare_runs",
    "regressions",
    "write_comparison",
]
