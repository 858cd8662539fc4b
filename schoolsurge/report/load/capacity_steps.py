"""Reading a capacity sweep's steps from its capacity.csv, checked line by line.

The engine writes one row per step (engine/kinds/sweep.py); this turns the file back into a table of numbers the
capacity card reads, and names the file, the line and what is wrong when it is malformed, so a broken sweep
is reported in one line rather than as a stack trace.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from schoolsurge.errors import ReportError
from schoolsurge.files import open_regular
from schoolsurge.rundir import CAPACITY_COLUMNS, CAPACITY_CSV, MEASURED_STATUSES, StepStatus

TEXT_STEP_COLUMNS = ("status", "phase", "slo_met", "breaches")
REQUIRED_STEP_COLUMNS = (
    "step",
    "status",
    "concurrency",
    "logins_per_s",
    "requests_per_s",
    "successful_requests_per_s",
    "error_ratio",
    "time_to_login_p95_ms",
)
# Columns a measured (or stopping) step cannot be without: the fit and the SLO capacity read them.
MEASURED_STEP_COLUMNS = ("concurrency", "logins_per_s", "successful_requests_per_s")
TRUE_TEXT, FALSE_TEXT = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def load_capacity_steps(run_dir: Path) -> pd.DataFrame | None:
    """A sweep's steps from capacity.csv, sorted by step; None when the run has no capacity.csv (not a sweep).
    Numbers are floats (NaN where not measured, inf for a login percentile nobody reached), `slo_met` is
    True/False/None. A malformed file raises ReportError naming the file, the line and what is wrong."""
    path = Path(run_dir) / CAPACITY_CSV
    if not path.exists():
        return None
    try:
        with open_regular(path) as handle:
            raw = pd.read_csv(handle, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ReportError(f"{path}: corrupt capacity steps ({reason}); rerun the sweep to get it again") from None
    missing = [column for column in REQUIRED_STEP_COLUMNS if column not in raw.columns]
    if missing:
        raise ReportError(
            f"{path}: not a capacity sweep's table (missing columns {', '.join(missing)}); rerun the sweep"
        )
    for column in CAPACITY_COLUMNS:
        if column not in raw.columns:  # an optional figure an earlier sweep did not write
            raw[column] = ""
    rows = [_parsed_step(path, index + 2, record) for index, record in enumerate(raw.to_dict("records"))]
    if not rows:
        raise ReportError(f"{path}: no steps (only a header); rerun the sweep")
    steps = pd.DataFrame(rows, columns=[*CAPACITY_COLUMNS, *(c for c in raw.columns if c not in CAPACITY_COLUMNS)])
    repeated = sorted(set(steps["step"][steps["step"].duplicated()].astype(int)))
    if repeated:
        raise ReportError(f"{path}: step {repeated[0]} appears more than once; rerun the sweep")
    return steps.sort_values("step", kind="stable").reset_index(drop=True)


def _parsed_step(path: Path, line: int, record: dict[str, Any]) -> dict[str, Any]:
    """One row of capacity.csv checked and converted; `line` is its line in the file (the header is line 1)."""
    text = {key: "" if not isinstance(value, str) else value.strip() for key, value in record.items()}
    status = text["status"]
    if status not in {s.value for s in StepStatus}:
        raise ReportError(
            f"{path}: line {line}: step status {status!r} is not one of "
            f"{', '.join(s.value for s in StepStatus)}; rerun the sweep"
        )
    row: dict[str, Any] = {"status": status, "breaches": text.get("breaches", "")}
    for column, cell in text.items():
        if column in TEXT_STEP_COLUMNS or column not in CAPACITY_COLUMNS:
            row.setdefault(column, cell)
            continue
        if cell == "":
            row[column] = math.nan
            continue
        try:
            row[column] = float(cell)
        except ValueError:
            raise ReportError(
                f"{path}: line {line}: {column} is not a number ({cell[:40]!r}); rerun the sweep"
            ) from None
    step = row["step"]
    if not (math.isfinite(step) and step >= 1 and step == int(step)):
        raise ReportError(f"{path}: line {line}: step must be a whole number from 1, not {text['step']!r}")
    if status in MEASURED_STATUSES:
        for column in MEASURED_STEP_COLUMNS:
            value = row[column]
            if not (math.isfinite(value) and value >= 0):
                raise ReportError(
                    f"{path}: line {line}: a {status} step needs {column} as a number at or above 0 "
                    f"(got {text[column]!r}); rerun the sweep"
                )
    met = text.get("slo_met", "").lower()
    if met and met not in TRUE_TEXT | FALSE_TEXT:
        raise ReportError(f"{path}: line {line}: slo_met must be true or false, not {text['slo_met']!r}")
    row["slo_met"] = None if not met else met in TRUE_TEXT
    return row
