"""`schoolsurge capacity fit FILE.csv`: the USL fit of any table of concurrency and throughput.

The I/O edge of models/usl.py, so a sweep's capacity.csv, or numbers measured some other way (another tool, a
spreadsheet), get the same fit and the same warnings. It reads the CSV, picks the two columns, refuses what
cannot be fitted with a one-line FitError naming the file, column and row, and formats the answer as text or JSON.

Columns: a sweep's capacity.csv gives `concurrency` (N) and `successful_requests_per_s` (X), from its steps that
were measured (status "measured" or "stopped"); any other file with exactly two numeric columns gives them in
order (N, then X); otherwise --n and --x name them. Lines starting with '#' are comments.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from schoolsurge.errors import FitError
from schoolsurge.models.usl import CONFIDENCE, UslFit, fit_usl
from schoolsurge.rundir import MEASURED_STATUSES, StepStatus

SWEEP_N = "concurrency"
SWEEP_X = "successful_requests_per_s"
STATUS = "status"


@dataclass(frozen=True)
class TableFit:
    path: Path
    n_column: str
    x_column: str
    rows: int  # data rows in the file
    rows_used: int  # rows fitted (a sweep's unmeasured steps left out)
    fit: UslFit


def fit_table(path: Path, n_column: str | None = None, x_column: str | None = None) -> TableFit:
    """Read a CSV table, pick concurrency and throughput columns, fit the USL; FitError for what cannot be used."""
    table = _read(path)
    n_name, x_name = _columns(path, table, n_column, x_column)
    rows = len(table)
    if STATUS in table.columns:
        statuses = table[STATUS].dropna().astype(str).str.strip().str.lower()
        if len(statuses) and set(statuses) <= {status.value for status in StepStatus}:  # a sweep's steps
            table = table[table[STATUS].astype(str).str.strip().str.lower().isin(MEASURED_STATUSES)]
    n = _numbers(path, table, n_name)
    x = _numbers(path, table, x_name)
    try:
        fit = fit_usl(n, x)
    except FitError as exc:
        raise FitError(f"{path}: {exc}") from None
    return TableFit(path, n_name, x_name, rows, len(table), fit)


def format_fit(fit: TableFit) -> str:
    """A human-readable summary: coefficients ± standard error with their interval, R², peak, ceiling, warnings."""
    usl = fit.fit
    level = f"{CONFIDENCE:.0%}"
    used = f"{fit.rows_used} of {fit.rows} rows" if fit.rows_used != fit.rows else f"{fit.rows} rows"
    lines = [
        f"USL fit of {fit.path}: {fit.x_column} (X) against {fit.n_column} (N), {used}",
        "  X(N) = γN / (1 + α(N−1) + βN(N−1))",
        _coefficient("α (contention)", usl.alpha, usl.alpha_se, usl.alpha_ci, level),
        _coefficient("β (coherency) ", usl.beta, usl.beta_se, usl.beta_ci, level),
        _coefficient("γ (X at N = 1)", usl.gamma, usl.gamma_se, usl.gamma_ci, level),
        f"  R² = {usl.r_squared:.4f}; residual standard error {usl.residual_se:.4g} "
        f"on {usl.degrees_of_freedom} degrees of freedom",
    ]
    if usl.peak_concurrency is None:
        lines.append("  peak: none (β = 0 or α ≥ 1: throughput does not turn down in the model)")
    else:
        lines.append(f"  peak: X(N*) = {usl.peak_throughput:.4g} at N* = {usl.peak_concurrency:.4g}")
    if usl.amdahl_ceiling is None:
        lines.append("  Amdahl ceiling γ/α: none (α = 0)")
    else:
        lines.append(f"  Amdahl ceiling γ/α = {usl.amdahl_ceiling:.4g}")
    lines += [f"warning: {warning}" for warning in usl.warnings]
    return "\n".join(lines)


def fit_json(fit: TableFit) -> dict[str, Any]:
    """The fit as a JSON-ready dict: where it came from, and every figure of the USL fit."""
    return {
        "path": str(fit.path),
        "n_column": fit.n_column,
        "x_column": fit.x_column,
        "rows": fit.rows,
        "rows_used": fit.rows_used,
        "usl": fit.fit.to_dict(),
    }


# ---- reading -----------------------------------------------------------------------------------------------


def _read(path: Path) -> pd.DataFrame:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FitError(f"{path}: no such file; give the path of a CSV table (a sweep's capacity.csv)") from None
    except IsADirectoryError:
        raise FitError(f"{path} is a directory; give the path of a CSV table (a sweep's capacity.csv)") from None
    except UnicodeDecodeError:
        raise FitError(f"{path} is not a UTF-8 text file; give a CSV table") from None
    except OSError as exc:
        raise FitError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    body = "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("#"))
    if not body.strip():
        raise FitError(f"{path} has no table (only comments or nothing): give a CSV with a header row")
    try:
        table = pd.read_csv(io.StringIO(body), skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FitError(f"{path} is not a readable CSV table ({detail})") from None
    table.columns = [str(column).strip() for column in table.columns]
    return table


def _columns(path: Path, table: pd.DataFrame, n_column: str | None, x_column: str | None) -> tuple[str, str]:
    available = list(table.columns)
    for given in (n_column, x_column):
        if given is not None and given not in available:
            raise FitError(f"{path} has no column {given!r}; its columns are: {', '.join(available)}")
    if n_column is not None and x_column is not None:
        n_name, x_name = n_column, x_column
    elif SWEEP_N in available and SWEEP_X in available:
        n_name, x_name = n_column or SWEEP_N, x_column or SWEEP_X
    else:
        numeric = [c for c in available if pd.api.types.is_numeric_dtype(table[c])]
        n_name, x_name = _two_numeric(numeric, n_column, x_column)
        if not n_name or not x_name:
            raise FitError(
                f"{path}: cannot tell which columns are concurrency and throughput (columns: {', '.join(available)}); "
                "pass --n COLUMN and --x COLUMN"
            )
    if n_name == x_name:
        raise FitError(f"{path}: concurrency and throughput must be two different columns, both are {n_name!r}")
    return n_name, x_name


def _two_numeric(numeric: list[str], n_column: str | None, x_column: str | None) -> tuple[str | None, str | None]:
    """N and X from the numeric columns when they leave no doubt: exactly two, or one besides the one named."""
    if n_column is None and x_column is None:
        return (numeric[0], numeric[1]) if len(numeric) == 2 else (None, None)
    named = n_column if n_column is not None else x_column
    others = [c for c in numeric if c != named]
    if len(others) != 1:
        return None, None
    return (named, others[0]) if n_column is not None else (others[0], named)


def _numbers(path: Path, table: pd.DataFrame, column: str) -> list[float]:
    """The column as floats; FitError naming the first empty, non-numeric, non-finite or non-positive value."""
    values: list[float] = []
    for index, raw in zip(table.index, table[column].tolist(), strict=True):
        where = f"{path}: column {column!r}, data row {int(index) + 1}"  # counted in the file, comments left out
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or (isinstance(raw, str) and not raw.strip()):
            raise FitError(f"{where} is empty: fill it in or remove the row")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise FitError(f"{where} is {raw!r}, not a number: fix it or pick another column with --n/--x") from None
        if not math.isfinite(value) or value <= 0:
            raise FitError(f"{where} is {raw!r}: concurrency and throughput must be above 0; fix or remove the row")
        values.append(value)
    return values


def _coefficient(name: str, value: float, se: float | None, ci: tuple[float, float] | None, level: str) -> str:
    if se is None or ci is None:
        return f"  {name} = {value:.4g} (standard error not computable)"
    return f"  {name} = {value:.4g} ± {se:.3g}   {level} CI [{ci[0]:.4g}, {ci[1]:.4g}]"
