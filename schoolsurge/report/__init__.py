"""Reporting: a run directory's raw results -> verdicts and charts -> one self-contained HTML file.

The report reads run directories (schoolsurge/rundir/: the files and their formats) and imports nothing of the
engine: building a report offline loads neither Locust nor gevent. Its parts, each a subpackage that imports only
those above it in this list:

    kinds.py       what the report makes of each kind of run (a morning, a sweep, plain Locust), picked once
    load/          a run directory read into RunData (Locust's CSV files, sessions, histograms, the manifest)
    outcome/       what the run came to: SLO verdicts, who got in, against plan, health, JUnit
    series/        figures over time: the charts' time axis, latency per bin, the retry bubble
    charts/        the run report's charts, section by section
    platform/      the platform's side: the target's scraped metrics, the operational laws, their charts
    capacity/      the capacity answer (a sweep's card, a run's card) and capacity.json
    run/           the run report: its sections assembled into report.html
    compare/       comparing runs: figures against a baseline, curves overlaid, the regression gate
    index/         reports/index.html (refresh.py refreshes it after every run, report and comparison)
    plan.py        `schoolsurge plan`'s lines and chart
"""

from schoolsurge.errors import ReportError
from schoolsurge.report.load.loader import load_run
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.outcome.verdicts import Verdict, judge, judge_run
from schoolsurge.report.run.build import build_report, write_report

__all__ = ["ReportError", "RunData", "Verdict", "build_report", "judge", "judge_run", "load_run", "write_report"]
