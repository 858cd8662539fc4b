"""The comparison written: compare.html (self-contained, its charts embedded) and compare.json beside it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from schoolsurge.errors import ReportError
from schoolsurge.files import atomic_file
from schoolsurge.report.compare.charts import comparison_charts
from schoolsurge.report.compare.figures import (
    DEFAULT_REGRESSION_FIGURES,
    FIGURES_BY_KEY,
    HEADLINE_FIGURES,
    SECTIONS,
    format_deviation,
    format_value,
    fraction_text,
)
from schoolsurge.report.compare.runs import COMPARE_HTML, COMPARE_JSON, Comparison
from schoolsurge.report.outcome.answer import read_answer
from schoolsurge.rundir import REPORT, write_json


def write_comparison(comparison: Comparison, out_dir: Path) -> Path:
    """out_dir/compare.html (self-contained: charts embedded, no network) and out_dir/compare.json; returns the
    HTML's path."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(
            f"{out_dir}: cannot create it ({error.strerror}); pass --out with a writable folder"
        ) from None
    charts = comparison_charts(comparison)
    page = render_comparison(comparison, charts, out_dir)
    path = out_dir / COMPARE_HTML
    with atomic_file(path) as handle:
        handle.write(page)
    write_json(out_dir / COMPARE_JSON, comparison.to_dict())
    return path


def render_comparison(comparison: Comparison, charts: list[tuple[str, str, str]], out_dir: Path) -> str:
    """The page; charts are (title, what it shows, base64 PNG)."""
    environment = Environment(
        loader=PackageLoader("schoolsurge", "report/compare"), autoescape=select_autoescape(["html", "j2"])
    )
    sections = []
    for title, prefixes in SECTIONS:
        figures = [f for f in HEADLINE_FIGURES if f.key.startswith(prefixes)]
        if not any(run.figures.get(f.key) is not None for run in comparison.runs for f in figures):
            continue
        rows = []
        for index, run in enumerate(comparison.runs):
            cells = []
            for figure in figures:
                value = run.figures.get(figure.key)
                deviation = comparison.deviation_pct(run, figure.key)
                worse = comparison.worse_pct(run, figure.key)
                cells.append(
                    {
                        "key": figure.key,
                        "value": format_value(figure, value),
                        "raw": "" if value is None else repr(float(value)),
                        "deviation": "baseline"
                        if index == 0
                        else "baseline's is 0"
                        if deviation is None and value is not None and comparison.baseline.figures.get(figure.key) == 0
                        else format_deviation(deviation),
                        "raw_deviation": "" if deviation is None or index == 0 else repr(deviation),
                        "judged": ""
                        if index == 0 or worse is None
                        else "worse"
                        if worse > 0
                        else "better"
                        if worse < 0
                        else "same",
                    }
                )
            rows.append({"run": run, "baseline": index == 0, "cells": cells})
        sections.append({"title": title, "figures": figures, "rows": rows})
    return environment.get_template("compare.html.j2").render(
        comparison=comparison,
        baseline=comparison.baseline,
        runs=[
            {
                "run": run,
                "fraction": fraction_text(run.load_fraction),
                "report": _relative_link(run.run_dir / REPORT, out_dir) if (run.run_dir / REPORT).exists() else None,
                "answer": answer.lines() if (answer := read_answer(run.run_dir)) is not None else [],
                "held": answer.held if answer is not None else None,
            }
            for run in comparison.runs
        ],
        sections=sections,
        charts=[{"title": title, "caption": caption, "png": png} for title, caption, png in charts],
        default_figures=[FIGURES_BY_KEY[key] for key in DEFAULT_REGRESSION_FIGURES],
    )


def _relative_link(target: Path, start: Path) -> str:
    try:
        return quote(Path(os.path.relpath(target.resolve(), start.resolve())).as_posix())
    except ValueError:  # another drive (Windows)
        return target.resolve().as_uri()
