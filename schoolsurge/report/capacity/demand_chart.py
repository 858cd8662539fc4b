"""The national morning's demand against the answer's capacity, over the scenario clock: when in the morning the
demand passes what one instance holds, and what the answer's instance count buys. A run's report draws it, and a
sweep's (its range's ends are measured steps; it has no morning of its own to draw).

It draws the answer's own figures (answer.json, report/capacity/run_answer.py), never figures of its own:

- the demand: the scenario's planned arrivals at national scale (one-minute means, as the instance count compares
  them, models/capacity.py) and the load this run offered, bin by bin (login attempts, first tries and retries,
  the same bins the answer judged held and broke on), divided by the load fraction;
- one instance's capacity: the answer's range as a band, from the highest offered load that held to the lowest that
  broke (national terms); a line at the lowest that broke when nothing held below it;
- the answer's instance count, with its headroom: that band times the count, divided by (1 + headroom), the demand
  those instances carry with the headroom kept free.

Without a capacity (nothing broke, the run is invalid, no national terms) it is one line of text saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display on load generators and CI
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import FuncFormatter, MultipleLocator  # noqa: E402

from schoolsurge.models.capacity import per_minute  # noqa: E402
from schoolsurge.report.capacity.card import CapacityCard  # noqa: E402
from schoolsurge.report.capacity.wording import rate_text  # noqa: E402
from schoolsurge.report.charts.base import Chart, figure, legend  # noqa: E402
from schoolsurge.report.outcome.answer import Answer  # noqa: E402
from schoolsurge.scenario import seconds_to_clock  # noqa: E402

KEY = "demand-vs-capacity"
TITLE = "The national morning: demand against capacity, with the range (national terms)"
WIDE_RANGE = 5  # the run offered more than this many times the demand and the capacity: a log scale shows both
PLANNED_COLOUR, OFFERED_COLOUR, ONE_COLOUR, COUNT_COLOUR = "tab:blue", "tab:orange", "tab:red", "tab:green"


@dataclass(frozen=True)
class DemandAgainstCapacity:
    """What the chart draws, national terms, per second: the demand and the answer's capacity."""

    planned_clock_s: np.ndarray  # clock second each minute of the scenario starts
    planned_per_s: np.ndarray  # people arriving to log in, one-minute means
    offered_clock_s: np.ndarray  # clock second each of the run's bins starts
    offered_per_s: np.ndarray  # login attempts offered (first tries and retries), per bin
    held_per_s: float | None  # one instance: the highest offered load that held (answer.json)
    broke_per_s: float  # one instance: the lowest offered load that broke (answer.json)
    instances: int | None  # the answer's count: the safe one when it has it, else the fewest
    headroom: float
    peak_per_s: float | None  # the planned peak the answer sizes the count for, and when
    peak_at: str | None

    def carried(self, capacity: float) -> float:
        """The demand `instances` copies of a platform of `capacity` carry with the headroom kept free."""
        assert self.instances is not None
        return self.instances * capacity / (1 + self.headroom)


def demand_against_capacity(card: CapacityCard, answer: Answer) -> DemandAgainstCapacity | str:
    """The chart's figures, or the one line that says why there is nothing to draw."""
    fraction, capacity = card.load_fraction, answer.capacity
    if capacity is None or capacity.broke_per_s_national is None:
        said = answer.capacity_text or "not determined"
        return f"{TITLE}: no capacity to draw against the morning's demand; capacity {said}."
    if fraction is None or card.demand is None:
        return f"{TITLE}: no national terms (the run's scale and speed, or the scenario's curves, are not known)."
    clock, _, planned, _ = per_minute(card.demand)
    loads = [load for load in (card.run.loads if card.run is not None else ()) if load.clock_s is not None]
    instances = answer.instances
    count = None if instances is None else (instances.needed if instances.needed is not None else instances.fewest)
    return DemandAgainstCapacity(
        planned_clock_s=clock,
        planned_per_s=planned,
        offered_clock_s=np.array([load.clock_s for load in loads], dtype=float),
        offered_per_s=np.array([load.offered_per_s / fraction for load in loads], dtype=float),
        held_per_s=capacity.held_per_s_national,
        broke_per_s=capacity.broke_per_s_national,
        instances=count,
        headroom=instances.headroom if instances is not None else card.headroom,
        peak_per_s=instances.peak_per_s_national if instances is not None else None,
        peak_at=instances.peak_at if instances is not None else None,
    )


def demand_vs_capacity(card: CapacityCard, answer: Answer) -> Chart:
    """The chart of demand_against_capacity, or its one line of text."""
    figures = demand_against_capacity(card, answer)
    if isinstance(figures, str):
        return Chart(KEY, TITLE, "", "", figures)
    fig, (ax,) = figure(height=4.2, sharex=False)
    peak = f", peak {rate_text(figures.peak_per_s)}/s at {figures.peak_at}" if figures.peak_per_s is not None else ""
    ax.step(figures.planned_clock_s, figures.planned_per_s, where="post", color=PLANNED_COLOUR,
            label=f"planned: people arriving to log in/s (minute mean{peak})")  # fmt: skip
    if len(figures.offered_per_s):
        ax.step(figures.offered_clock_s, figures.offered_per_s, where="post", color=OFFERED_COLOUR,
                label="this run offered: login attempts/s, first tries and retries (per bin)")  # fmt: skip
    _capacity(ax, figures.held_per_s, figures.broke_per_s, ONE_COLOUR, "one instance")
    if figures.instances is not None:
        held = figures.carried(figures.held_per_s) if figures.held_per_s is not None else None
        count = f"{figures.instances} instances" if figures.instances != 1 else "1 instance"
        _capacity(ax, held, figures.carried(figures.broke_per_s), COUNT_COLOUR,
                  f"{count} (the answer's count), {figures.headroom:.0%} headroom kept")  # fmt: skip
    ax.set_ylabel("per second (national terms)")
    _y_scale(ax, figures)
    low, high = float(figures.planned_clock_s[0]), float(figures.planned_clock_s[-1]) + 60
    ax.set_xlim(low, high)
    ax.xaxis.set_major_locator(MultipleLocator(1800 if high - low > 3 * 3600 / 2 else 600))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: seconds_to_clock(v)))
    ax.set_xlabel("scenario clock (HH:MM)")
    legend(ax, columns=1)
    capacity = answer.capacity
    assert capacity is not None
    offered = (
        " The planned demand counts people arriving; the run's offered load adds their retries."
        if len(figures.offered_per_s)
        else ""
    )
    caption = (
        "National terms: this run's rates divided by its load fraction (scale x speed, "
        f"{card.load_fraction:.4g}), as the answer states them. The band is the answer's capacity range, on the "
        f"load offered ({capacity.unit}, measured on {capacity.measured_on}): from the highest that held to the "
        f"lowest that broke (run terms: {_range_text(answer)}); the instance count's band is that range times the "
        "count, divided by (1 + headroom). Where the demand rises above a band, that many instances stop meeting "
        f"the objectives.{offered}"
    )
    return Chart.drawn(fig, KEY, TITLE, caption)


def _capacity(ax: Axes, held: float | None, broke: float, colour: str, who: str) -> None:
    """A capacity range as a band (held to broke), or a line at broke when nothing held below it."""
    if held is not None:
        ax.axhspan(held, broke, color=colour, alpha=0.2, lw=0,
                   label=f"{who}: {rate_text(held)}-{rate_text(broke)}/s (held to broke)")  # fmt: skip
        return
    ax.axhline(broke, color=colour, linestyle="--", label=f"{who}: below {rate_text(broke)}/s (nothing held below)")


def _y_scale(ax: Axes, figures: DemandAgainstCapacity) -> None:
    """Linear from 0; logarithmic when a retry storm offers far more than the rest of the chart shows."""
    drawn = [figures.planned_per_s, figures.offered_per_s, [figures.broke_per_s]]
    values = np.concatenate([np.asarray(v, dtype=float) for v in drawn])
    positive = values[np.isfinite(values) & (values > 0)]
    if len(positive) and positive.max() > WIDE_RANGE * min(figures.broke_per_s, float(figures.planned_per_s.max())):
        ax.set_yscale("log")
        ax.set_ylim(bottom=positive.min() / 2)
        ax.set_ylabel("per second, national terms (log)")
    else:
        ax.set_ylim(bottom=0)


def _range_text(answer: Answer) -> str:
    capacity = answer.capacity
    assert capacity is not None
    if capacity.held_per_s is None:
        return f"below {rate_text(capacity.broke_per_s)}/s, nothing held below it"
    return f"{rate_text(capacity.held_per_s)}-{rate_text(capacity.broke_per_s)}/s"
