"""Reporting: a run directory's raw results -> charts -> one self-contained HTML file."""

from schoolsurge.report.build import build_report, write_report
from schoolsurge.report.data import ReportError, load_run

__all__ = ["ReportError", "build_report", "load_run", "write_report"]
