"""The comparison's charts: the same curve of every run overlaid, one line per run, on the scenario clock; PNG,
base64, embedded in compare.html.

Rates and people are drawn in run terms with a national-terms axis beside them when every run offered the same
load fraction (scale x speed; people: the same scale), and in national terms when they differ.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # no display on load generators and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import FuncFormatter, MultipleLocator, PercentFormatter  # noqa: E402

from schoolsurge.report.compare.runs import ComparedRun, Comparison  # noqa: E402
from schoolsurge.scenario import seconds_to_clock  # noqa: E402

COLOURS = plt.get_cmap("tab10").colors


def comparison_charts(comparison: Comparison) -> list[tuple[str, str, str]]:
    """(title, caption, base64 PNG) of each chart some run has data for."""
    charts = []
    for title, draw in (
        ("Time to log in, p95, per scenario minute", _login_p95),
        ("People's requests per second", _rate_chart("requests_per_s", "people's requests/s")),
        ("People's failed requests per second", _rate_chart("failures_per_s", "failed requests/s")),
        ("People in a session", _in_session),
        ("Served: share of the people due in each 5 minutes who got in", _served),
    ):
        drawn = draw(comparison)
        if drawn is not None:
            caption, png = drawn
            charts.append((title, caption, base64.b64encode(png).decode("ascii")))
    return charts


Drawn = tuple[str, bytes] | None


def _figure(comparison: Comparison) -> tuple[plt.Figure, Axes]:
    figure, axes = plt.subplots(figsize=(9.5, 3.2 + 0.17 * len(comparison.runs)), dpi=100)
    axes.grid(True, alpha=0.3)
    return figure, axes


def _plot(axes: Axes, comparison: Comparison, series_of: Callable[[ComparedRun], pd.Series | None]) -> list[str]:
    """One line per run (the baseline thicker); returns the names of the runs without this curve."""
    missing = []
    for index, run in enumerate(comparison.runs):
        series = series_of(run)
        if series is None or not len(series):
            missing.append(run.name)
            continue
        axes.plot(
            series.index,
            series.to_numpy(dtype=float),
            color=COLOURS[index % len(COLOURS)],
            linewidth=2.2 if index == 0 else 1.4,
            label=run.label + (" — baseline" if index == 0 else ""),
        )
    return missing


def _finish(figure: plt.Figure, axes: Axes, comparison: Comparison, ylabel: str) -> bytes:
    if all(run.on_clock for run in comparison.runs):
        low, high = axes.get_xlim()
        axes.xaxis.set_major_locator(MultipleLocator(1800 if high - low > 3 * 3600 / 2 else 600))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: seconds_to_clock(x)))
        axes.set_xlabel("scenario clock (HH:MM)")
    else:
        axes.set_xlabel("scenario clock (s since midnight), run seconds for runs whose clock is unknown")
    axes.set_ylabel(ylabel)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), fontsize=7, frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _caption(what: str, missing: list[str]) -> str:
    return what + (f" Not drawn (no data): {', '.join(missing)}." if missing else "")


def _sources(comparison: Comparison, curve: str) -> str:
    sources = {run.curves.sources.get(curve) for run in comparison.runs} - {None}
    return "; ".join(sorted(str(s) for s in sources))


def _terms(comparison: Comparison, people: bool) -> tuple[str, float | None]:
    """(terms, shared divisor): run terms with a national axis when every run shares its load fraction (people:
    its scale); national terms when they differ; run terms alone when some run's are unknown."""
    divisors = [run.scale if people else run.load_fraction for run in comparison.runs]
    if any(d is None for d in divisors):
        return "run", None
    if max(divisors) - min(divisors) <= 1e-9 * max(divisors):  # type: ignore[type-var,operator]
        return "run", divisors[0]
    return "national", None


def _login_p95(comparison: Comparison) -> Drawn:
    if all(run.curves.login_p95_ms is None for run in comparison.runs):
        return None
    figure, axes = _figure(comparison)
    missing = _plot(axes, comparison, lambda run: run.curves.login_p95_ms)
    objectives = {run.login_p95_objective_ms for run in comparison.runs} - {None}
    if len(objectives) == 1:
        axes.axhline(objectives.pop(), color="tab:red", linestyle="--", linewidth=1, label="p95 objective")
    axes.set_yscale("log")
    caption = _caption(
        f"Real milliseconds (the same in run and national terms), of the people due in each bin of about one "
        f"scenario minute; from {_sources(comparison, 'login p95')}.",
        missing,
    )
    return caption, _finish(figure, axes, comparison, "ms (log)")


def _rate_chart(attribute: str, what: str) -> Callable[[Comparison], Drawn]:
    def draw(comparison: Comparison) -> Drawn:
        curves = [getattr(run.curves, attribute) for run in comparison.runs]
        if all(c is None for c in curves):
            return None
        terms, fraction = _terms(comparison, people=False)
        figure, axes = _figure(comparison)

        def series(run: ComparedRun) -> pd.Series | None:
            curve = getattr(run.curves, attribute)
            if curve is None or terms == "run":
                return curve
            return curve / run.load_fraction

        missing = _plot(axes, comparison, series)
        if fraction:
            _national_axis(axes, fraction, "national terms")
        caption = _caption(
            f"{what.capitalize()} per run second, mean over bins of about one scenario minute, "
            + (
                f"in run terms (right axis: national terms, divided by the load fraction {fraction:.4g})"
                if fraction
                else "in national terms (each run divided by its load fraction, scale x speed)"
                if terms == "national"
                else "in run terms (some run's load fraction is unknown)"
            )
            + f"; from {_sources(comparison, 'requests')}.",
            missing,
        )
        return caption, _finish(figure, axes, comparison, f"{what} ({terms} terms)")

    return draw


def _in_session(comparison: Comparison) -> Drawn:
    if all(run.curves.in_session is None for run in comparison.runs):
        return None
    terms, scale = _terms(comparison, people=True)
    figure, axes = _figure(comparison)

    def series(run: ComparedRun) -> pd.Series | None:
        curve = run.curves.in_session
        return curve if curve is None or terms == "run" else curve / run.scale

    missing = _plot(axes, comparison, series)
    if scale:
        _national_axis(axes, scale, "national terms")
    caption = _caption(
        "Mean per bin of about one scenario minute, "
        + (
            f"in run terms (right axis: national terms, divided by the scale {scale:.4g})"
            if scale
            else "in national terms (each run divided by its scale)"
            if terms == "national"
            else "in run terms (some run's scale is unknown)"
        )
        + f"; from {_sources(comparison, 'in a session')}.",
        missing,
    )
    return caption, _finish(figure, axes, comparison, f"people ({terms} terms)")


def _served(comparison: Comparison) -> Drawn:
    if all(run.curves.served_share is None for run in comparison.runs):
        return None
    figure, axes = _figure(comparison)
    missing = _plot(axes, comparison, lambda run: run.curves.served_share)
    axes.set_ylim(-0.02, 1.02)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    caption = _caption(
        "Of the people whose intended arrival fell in each bin of about five scenario minutes and who tried to log "
        "in, the share who got in, after retries (the same in run and national terms); from sessions.csv "
        "(runs without it are not drawn).",
        missing,
    )
    return caption, _finish(figure, axes, comparison, "got in (%)")


def _national_axis(axes: Axes, divisor: float, label: str) -> None:
    secondary = axes.secondary_yaxis("right", functions=(lambda y: y / divisor, lambda y: y * divisor))
    secondary.set_ylabel(label)
