"""`schoolsurge capacity fit FILE.csv`: reading tables, picking columns, refusing what cannot be fitted."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from schoolsurge.capacity_table import fit_json, fit_table, format_fit
from schoolsurge.errors import FitError
from schoolsurge.rundir import CAPACITY_COLUMNS

DATA = Path(__file__).parent / "data" / "usl"
SPEC = [(1, 64.9), (18, 995.9), (36, 1652.4), (72, 1853.2), (108, 1828.9), (144, 1775.0), (216, 1702.2)]


def write_sweep(path: Path, steps: list[tuple[str, float | str, float | str]]) -> Path:
    """A capacity.csv with every column of the contract; (status, concurrency, successful requests/s) per step."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CAPACITY_COLUMNS)
        writer.writeheader()
        for number, (status, n, x) in enumerate(steps, start=1):
            row = dict.fromkeys(CAPACITY_COLUMNS, "")
            row.update(step=number, status=status, concurrency=n, successful_requests_per_s=x, requests_per_s=x)
            row.update(slo_met="true", breaches="", error_ratio=0.0, logins_per_s=x / 10 if x != "" else "")
            writer.writerow(row)
    return path


def test_sweep_uses_concurrency_and_successful_requests_of_measured_steps(tmp_path: Path) -> None:
    steps = [("measured", n, x) for n, x in SPEC[:-1]]
    steps += [("stopped", *SPEC[-1]), ("incomplete", 250, ""), ("skipped", "", "")]
    fit = fit_table(write_sweep(tmp_path / "capacity.csv", steps))
    assert (fit.n_column, fit.x_column) == ("concurrency", "successful_requests_per_s")
    assert (fit.rows, fit.rows_used) == (9, 7)
    assert fit.fit.alpha == pytest.approx(2.773e-2, rel=0.01)
    assert fit.fit.peak_concurrency == pytest.approx(96.52, rel=0.005)


def test_sweep_columns_can_be_overridden(tmp_path: Path) -> None:
    path = write_sweep(tmp_path / "capacity.csv", [("measured", n, x) for n, x in SPEC])
    fit = fit_table(path, x_column="logins_per_s")
    assert (fit.n_column, fit.x_column) == ("concurrency", "logins_per_s")
    assert fit.fit.gamma == pytest.approx(9.0, rel=0.01)  # the same curve at a tenth


def test_two_numeric_columns_are_n_then_x(tmp_path: Path) -> None:
    path = tmp_path / "spec.csv"
    shutil.copy(DATA / "specsdm91.csv", path)  # with its '#' comment lines
    fit = fit_table(path)
    assert (fit.n_column, fit.x_column) == ("load", "throughput")
    assert fit.fit.beta == pytest.approx(1.044e-4, rel=0.01)


def test_named_columns_among_many(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    lines = ["run,users,tps,p95"] + [f"r{i},{n},{x},{100 + i}" for i, (n, x) in enumerate(SPEC)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FitError, match=r"columns: run, users, tps, p95\); pass --n COLUMN and --x COLUMN"):
        fit_table(path)
    assert fit_table(path, "users", "tps").fit.gamma == pytest.approx(90.0, rel=0.01)


def test_one_named_column_and_one_other_numeric_column(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("throughput,load\n" + "".join(f"{x},{n}\n" for n, x in SPEC))
    fit = fit_table(path, n_column="load")
    assert (fit.n_column, fit.x_column) == ("load", "throughput")


def test_format_fit_reads_as_a_summary(tmp_path: Path) -> None:
    text = format_fit(fit_table(DATA / "specsdm91.csv"))
    assert "α (contention) = 0.02773 ± 0.00912   95% CI [0.002402, 0.05305]" in text
    assert "γ (X at N = 1) = 90 ± 14.2" in text
    assert "R² = 0.9896; residual standard error 82.85 on 4 degrees of freedom" in text
    assert "peak: X(N*) = 1884 at N* = 96.52" in text
    assert "Amdahl ceiling γ/α = 3246" in text
    assert "warning:" not in text


def test_format_fit_prints_warnings_and_missing_figures() -> None:
    text = format_fit(fit_table(DATA / "raytracer.csv"))
    assert "peak: none" in text
    assert "\nwarning: β is at its bound 0" in text


def test_fit_json_is_json_ready() -> None:
    data = json.loads(json.dumps(fit_json(fit_table(DATA / "raytracer.csv")), allow_nan=False))
    assert data["n_column"] == "processors" and data["rows_used"] == 11
    assert data["usl"]["alpha"] == pytest.approx(0.0578, rel=0.002)
    assert data["usl"]["peak_concurrency"] is None
    assert data["usl"]["warnings"]


@pytest.mark.parametrize(
    ("content", "columns", "says"),
    [
        (None, (None, None), "no such file"),
        ("", (None, None), "has no table"),
        ("# only a comment\n", (None, None), "has no table"),
        ("load,throughput\n1,10\n2,19\n4,30\n", (None, None), r"at least 4 measured points .*got 3"),
        (
            "load,throughput\n1,10\n2,-19\n4,30\n8,40\n",
            (None, None),
            "column 'throughput', data row 2 is -19.*must be above 0",
        ),
        ("load,throughput\n1,10\n2,19\n4,lots\n8,40\n", ("load", "throughput"), "data row 3 is 'lots', not a number"),
        ("load,throughput\n1,10\n2,19\n4,lots\n8,40\n", (None, None), "pass --n COLUMN and --x COLUMN"),
        ("load,throughput\n1,10\n2,\n4,30\n8,40\n", (None, None), "data row 2 is empty"),
        ("load,throughput\n1,10\n2,19\n4,30\n8,40\n", ("users", None), "no column 'users'; its columns are: load"),
        ("load,throughput\n1,10\n2,19\n4,30\n8,40\n", ("load", "load"), "two different columns"),
        ('load,throughput\n1,10\n"2,19\n4,30\n', (None, None), "not a readable CSV table"),
        ("a,b,c\n1,2,3\n", (None, None), "columns: a, b, c"),
    ],
)
def test_unusable_tables_are_refused_in_one_line(
    tmp_path: Path, content: str | None, columns: tuple[str | None, str | None], says: str
) -> None:
    path = tmp_path / "table.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FitError, match=says) as caught:
        fit_table(path, *columns)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FitError, match="is a directory"):
        fit_table(tmp_path)


def test_a_sweep_with_too_few_measured_steps_is_refused(tmp_path: Path) -> None:
    steps = [("measured", 1, 64.9), ("measured", 18, 995.9), ("stopped", 36, 1652.4), ("skipped", "", "")]
    with pytest.raises(FitError, match=r"at least 4 measured points .*got 3"):
        fit_table(write_sweep(tmp_path / "capacity.csv", steps))
