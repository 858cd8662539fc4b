"""Reporting: a run directory's raw results -> verdicts and charts -> one self-contained HTML file."""

from schoolsurge.errors import ReportError
from schoolsurge.report.build import build_report, write_report
from schoolsurge.report.data import RunData, load_run
from schoolsurge.report.verdicts import Verdict, judge, judge_run

__all__ = ["ReportError", "RunData", "Verdict", "build_report", "judge", "judge_run", "load_run", "write_report"]
