"""What every chart of the report shares: a figure, its time axis (scenario clock, incidents shaded, the SLO window
marked), and its SVG markup to inline in the HTML (sharp at any zoom and in print, text kept as text)."""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass, field

import matplotlib
import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, MultipleLocator

from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.series import latency
from schoolsurge.report.series.axis import TimeAxis, sampled_gauges
from schoolsurge.rundir import Counter
from schoolsurge.scenario import seconds_to_clock

WIDTH_IN, HEIGHT_IN = 9.0, 3.3
# Percentiles over time: bins widened until they hold about this many values on average (a p95 needs 20), down
# to this few bins for a short run.
PERCENTILE_BIN_VALUES = 30
PERCENTILE_MIN_BINS = 6
INCIDENT_COLOUR, SLO_COLOUR = "#9467bd", "#555555"
CLOCK_STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200)
MAX_TICKS = 12
_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_GROUP_IDS = re.compile(r' id="[A-Za-z][A-Za-z0-9.]*_\d+"')  # figure_1, axes_1, ...: unreferenced, repeated per chart
_SIZE = re.compile(r'<svg([^>]*?) width="[^"]+" height="[^"]+"')
_MATH_LABEL = re.compile(r"^\$\\mathdefault\{(.*)\}\$$")
_MATH_POWER = re.compile(r"\^\{(-?\d+)\}")
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


@dataclass(frozen=True)
class Chart:
    """One drawn chart: its heading, a caption saying what it counts and how, and its inline SVG; or, when every
    value it would draw is 0, no SVG and one line of text saying so (`collapsed`)."""

    key: str
    title: str
    caption: str
    svg: str
    collapsed: str = ""

    @classmethod
    def drawn(cls, fig: Figure, key: str, title: str, caption: str) -> Chart:
        """The chart of a finished figure, its SVG ids unique by `key`; collapsed to a line of text when every
        series it draws is 0 (a flat line at 0 says nothing a sentence cannot)."""
        if all_zero(fig):
            return cls(key, title, caption, "", f"{title}: 0 throughout, nothing to draw.")
        return cls(key, title, caption, svg(fig, key, title))


def all_zero(fig: Figure) -> bool:
    """Every data series of the figure (lines of more than two points, steps, stairs, bars) is 0 or has no
    value; reference lines (an objective, a limit: two points) and legend placeholders (none) are not data."""
    values = []
    for ax in fig.axes:
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), dtype=float)
            if len(y) > 2:
                values.append(y)
        for patch in ax.patches:
            if isinstance(patch, StepPatch):
                values.append(np.asarray(patch.get_data().values, dtype=float))
        for container in ax.containers:
            if isinstance(container, BarContainer):
                values.append(np.array([bar.get_height() for bar in container], dtype=float))
    if not values:
        return False
    joined = np.concatenate(values)
    finite = joined[np.isfinite(joined)]
    return bool(len(finite)) and not finite.any()


@dataclass
class Context:
    """A run and its time axis, and what several charts derive from them (computed once)."""

    data: RunData
    axis: TimeAxis
    request_histograms: dict[int, HdrHistogram] = field(default_factory=dict)

    @property
    def morning(self) -> bool:
        """The run replays the morning (report/kinds.py): drawn on its clock, against its plan and objectives."""
        return self.data.kind.judged_on_the_morning

    @functools.cached_property
    def per_second(self) -> pd.DataFrame:
        """sessions.csv indexed by run second (empty without it)."""
        sessions = self.data.sessions
        return sessions.set_index("second") if sessions is not None else pd.DataFrame()

    @functools.cached_property
    def gauges(self) -> pd.DataFrame:
        return sampled_gauges(self.data.sessions) if self.data.sessions is not None else pd.DataFrame()

    @functools.cached_property
    def login_axis(self) -> TimeAxis:
        """Bins wide enough for percentiles of time to log in (people are far fewer than requests)."""
        return self.axis.coarser(
            latency.binned(self.data.histograms, self.axis).totals, PERCENTILE_BIN_VALUES, PERCENTILE_MIN_BINS
        )

    @functools.cached_property
    def login_bins(self) -> latency.Binned:
        """Time to log in per bin of login_axis, by arrival (cohort) second."""
        return latency.binned(self.data.histograms, self.login_axis)

    @functools.cached_property
    def login_never(self) -> np.ndarray:
        """People due in each bin of login_axis who never logged in: gave up, or still logging in at the end."""
        if self.data.sessions is None:
            return np.zeros(self.login_axis.count)
        never = self.per_second[Counter.ABANDONED] + self.per_second.get(Counter.UNFINISHED, 0)
        return self.login_axis.sum(never)

    @functools.cached_property
    def login_percentiles(self) -> dict[int, np.ndarray]:
        """Time to log in per bin of login_axis over everyone who tried (those who never logged in count as
        never, as the SLOs count them): inf where they fill a percentile's tail, NaN where too few people."""
        return latency.login_over_everyone(self.data.histograms, self.login_never, self.login_axis)

    @functools.cached_property
    def cohort_axis(self) -> TimeAxis:
        """Bins wide enough for shares of the people due (gave up, attempts per person)."""
        if self.data.sessions is None:
            return self.axis
        return self.axis.coarser(self.axis.sum(self.per_second["started"]))

    @functools.cached_property
    def request_bins(self) -> latency.Binned:
        """People's request latency per bin, by completion (event) second."""
        return latency.binned(self.request_histograms, self.axis)

    @functools.cached_property
    def request_axis(self) -> TimeAxis:
        """Bins wide enough for request latency percentiles (a p95 of a handful of requests says little)."""
        return self.axis.coarser(self.request_bins.totals, PERCENTILE_BIN_VALUES, PERCENTILE_MIN_BINS)

    @functools.cached_property
    def request_bins_wide(self) -> latency.Binned:
        """People's request latency per bin of request_axis."""
        return latency.binned(self.request_histograms, self.request_axis)


def figure(rows: int = 1, height: float = HEIGHT_IN, sharex: bool = True) -> tuple[Figure, list[Axes]]:
    """A chart's figure and its axes, one under the other. Not pyplot's: nothing global to register or close."""
    fig = Figure(figsize=(WIDTH_IN, height))
    FigureCanvasAgg(fig)  # measures text for the layout, as pyplot's headless ("Agg") backend did
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False)
    for ax in axes[:, 0]:
        ax.grid(True, alpha=0.3)
    return fig, list(axes[:, 0])


def time_axes(ax: Axes, axis: TimeAxis, label: bool = True) -> None:
    """Mark the incidents and the SLO window on a chart over time, and label its x axis."""
    for span in axis.incidents:
        ax.axvspan(span.start, span.end, color=INCIDENT_COLOUR, alpha=0.12, lw=0, label=span.label)
    if axis.slo is not None:
        for x in (axis.slo.start, axis.slo.end):
            ax.axvline(x, color=SLO_COLOUR, linestyle=":", linewidth=1.2)
        ax.plot([], [], color=SLO_COLOUR, linestyle=":", linewidth=1.2, label=axis.slo.label)
    for x, text in axis.marks:
        ax.axvline(x, color=SLO_COLOUR, linestyle=":", linewidth=0.8)
        ax.annotate(text, (x, 1), xycoords=("data", "axes fraction"), fontsize=7, va="top", ha="left")
    low, high = axis.edges[0], axis.edges[-1]
    if high > low:
        ax.set_xlim(low, high)
    if axis.clock:
        span = max(high - low, 1)
        step = next((s for s in CLOCK_STEPS_S if span / s <= MAX_TICKS), CLOCK_STEPS_S[-1])
        ax.xaxis.set_major_locator(MultipleLocator(step))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: seconds_to_clock(x)))
        if label:
            ax.set_xlabel("scenario clock (HH:MM)")
    elif label:
        ax.set_xlabel("run time (s)")


def legend(ax: Axes, loc: str = "above", columns: int = 3) -> None:
    """The axes' legend, above it by default (out of the data's way), or at `loc` inside it."""
    if not ax.get_legend_handles_labels()[0]:
        return
    if loc == "above":
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, ncols=columns, frameon=False)
    else:
        ax.legend(loc=loc, fontsize=8, ncols=1, framealpha=0.85)


def steps(ax: Axes, edges: np.ndarray, values: np.ndarray, **style: object) -> None:
    """A binned series as steps (one level per bin), with gaps where a bin has no value (NaN)."""
    ax.step(edges, np.append(values, values[-1] if len(values) else np.nan), where="post", **style)


class PlainLogFormatter(LogFormatterSciNotation):
    """A log axis's tick labels as matplotlib's own (10³, 2×10⁻¹, on the same ticks), written in plain text:
    matplotlib writes them as mathtext, whose parser costs a report a few tenths of a CPU second."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        written = super().__call__(x, pos)
        label = _MATH_LABEL.match(written)
        if label is None:  # no label ("") or already plain
            return written
        text = _MATH_POWER.sub(lambda power: power.group(1).translate(_SUPERSCRIPT), label.group(1))
        return text.replace(r"\times", "×").replace("-", "−")  # mathtext's minus sign


def plain_log_ticks(fig: Figure) -> None:
    """Every log axis of the figure labelled by PlainLogFormatter, its major and minor ticks as they were."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for formatter, set_formatter in (
                (axis.get_major_formatter(), axis.set_major_formatter),
                (axis.get_minor_formatter(), axis.set_minor_formatter),
            ):
                if type(formatter) is LogFormatterSciNotation:
                    set_formatter(
                        PlainLogFormatter(
                            axis.get_transform().base,
                            labelOnlyBase=formatter.labelOnlyBase,
                            minor_thresholds=formatter.minor_thresholds,
                        )
                    )


def svg(fig: Figure, key: str, title: str) -> str:
    """The figure as SVG markup to inline: no XML prologue nor metadata, ids unique to this chart, sized by CSS."""
    buffer = io.StringIO()
    plain_log_ticks(fig)
    fig.tight_layout()
    # tight_layout leaves a placeholder layout engine behind, and savefig draws a figure that has one twice (a
    # layout pass, then the real one): the layout is done, so drop the engine and draw once.
    fig.set_layout_engine(None)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": key}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    markup = _GROUP_IDS.sub("", _METADATA.sub("", _XML_PROLOGUE.sub("", buffer.getvalue(), count=1)))
    title_tag = f"<title>{_escape(title)}</title>"
    return _SIZE.sub(
        lambda m: f'<svg class="chart" role="img" aria-label="{_escape(title)}"{m.group(1)}', markup, count=1
    ).replace(">", ">" + title_tag, 1)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
