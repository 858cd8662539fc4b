"""Latency percentiles over time from the engine's HdrHistograms, merged per bin (not Locust's 10-second windows).

`time_to_login.jsonl` holds, per run second, the time to log in of the people due that second (cohort) and the
latency of people's requests completed that second (event time). Their counts arrays are summed per bin with
numpy (one addition per second, none per value), and the percentiles are read from the cumulative counts
exactly as HdrHistogram's own `get_value_at_percentile` does, so a bin covering the whole run gives the merged
histogram's value.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from schoolsurge.files import readable
from schoolsurge.report.load.run_data import RunData
from schoolsurge.report.series.axis import TimeAxis
from schoolsurge.rundir import HISTOGRAMS, login_percentile_value, merged, new_histogram, read_histograms

PERCENTILES = (50, 95, 99)
# The fewest values a bin needs for its percentile to be drawn: with fewer, a p99 is the bin's slowest value and a
# p95 one or two people's, and the line jumps from bin to bin with who happened to fall in it.
MIN_VALUES = {50: 10, 95: 20, 99: 100}


def minimum_text() -> str:
    """The minimum, as the charts' captions state it."""
    shown = ", ".join(f"p{p} {n}" for p, n in MIN_VALUES.items())
    return f"a percentile is drawn only on bins holding enough values ({shown})"


@functools.cache
def _values() -> np.ndarray:
    """The value each counts index stands for: its highest equivalent value, as HdrHistogram reports it."""
    template = new_histogram()
    return np.array(
        [template.get_highest_equivalent_value(template.get_value_from_index(i)) for i in range(template.counts_len)],
        dtype=float,
    )


def _counts(histogram: HdrHistogram) -> np.ndarray:
    counts = np.ctypeslib.as_array(histogram.counts)
    return counts[: min(len(counts), histogram.encoder.payload.counts_len, len(_values()))].astype(np.int64)


@dataclass(frozen=True)
class Binned:
    """Counts per bin (rows) and counts index (columns), and the value of each index."""

    counts: np.ndarray  # (bins, counts_len) int64
    values: np.ndarray  # (counts_len,) ms

    @property
    def totals(self) -> np.ndarray:
        return self.counts.sum(axis=1)

    def whole(self) -> np.ndarray:
        """Counts of the whole run, one row."""
        return self.counts.sum(axis=0, keepdims=True)

    def percentiles(self, percentiles: tuple[float, ...] = PERCENTILES) -> dict[float, np.ndarray]:
        return percentiles_of(self.counts, self.values, percentiles)

    def drawn_percentiles(self, percentiles: tuple[int, ...] = PERCENTILES) -> dict[int, np.ndarray]:
        """Each percentile per bin, NaN (not drawn) in a bin with fewer values than MIN_VALUES asks for it."""
        totals = self.totals
        return {
            p: np.where(totals >= MIN_VALUES[p], values, np.nan)
            for p, values in percentiles_of(self.counts, self.values, percentiles).items()
        }


def percentiles_of(counts: np.ndarray, values: np.ndarray, percentiles: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Per row of counts, the value at each percentile (NaN for an empty row), as HdrHistogram computes it: the
    first index whose cumulative count reaches int(p x total / 100 + 0.5) (at least 1)."""
    cumulative = np.cumsum(counts, axis=1)
    totals = cumulative[:, -1] if cumulative.shape[1] else np.zeros(len(counts))
    result = {}
    for p in percentiles:
        target = np.maximum((min(p, 100.0) * totals / 100 + 0.5).astype(np.int64), 1)
        index = (cumulative >= target[:, None]).argmax(axis=1)
        result[p] = np.where(totals > 0, values[index], np.nan)
    return result


def binned(histograms: dict[int, HdrHistogram], axis: TimeAxis) -> Binned:
    """Per-second histograms summed over the axis' bins."""
    values = _values()
    counts = np.zeros((axis.count, len(values)), dtype=np.int64)
    for second, histogram in histograms.items():
        row = _counts(histogram)
        counts[_bin_of(second, axis), : len(row)] += row
    return Binned(counts, values)


def login_over_everyone(
    histograms: dict[int, HdrHistogram], never: np.ndarray, axis: TimeAxis, percentiles: tuple[int, ...] = PERCENTILES
) -> dict[int, np.ndarray]:
    """Per bin, time to log in over everyone due in it who tried, as the SLOs judge it (rundir/figures.py
    `login_percentile_value`): the logged-in people's times (their histograms, by cohort second) and the `never`
    people of the bin who never logged in (gave up, or still logging in at the end). inf where those fill the
    percentile's tail; NaN (not drawn) where the bin holds fewer people than MIN_VALUES asks."""
    by_bin: dict[int, list[HdrHistogram]] = {}
    for second, histogram in histograms.items():
        by_bin.setdefault(_bin_of(second, axis), []).append(histogram)
    result = {p: np.full(axis.count, np.nan) for p in percentiles}
    for index in range(axis.count):
        succeeded = merged(by_bin[index]) if index in by_bin else None
        never_here = int(never[index])
        tried = (succeeded.get_total_count() if succeeded is not None else 0) + never_here
        for p in percentiles:
            value = login_percentile_value(succeeded, never_here, p)
            if value is not None and tried >= MIN_VALUES[p]:
                result[p][index] = value
    return result


def _bin_of(second: int, axis: TimeAxis) -> int:
    return min(max(second, 0) // axis.width, axis.count - 1)


def request_latency_histograms(data: RunData) -> dict[int, HdrHistogram]:
    """People's request latency per event second; {} without the file (or in a run of an earlier version)."""
    path = data.run_dir / HISTOGRAMS
    if not readable(path, data.notes):
        return {}
    try:
        return read_histograms(path, "request_latency")
    except (ValueError, OSError) as error:
        data.notes.append(f"{HISTOGRAMS}: {error}; request latency is not drawn")
        return {}


@dataclass(frozen=True)
class Distribution:
    """A whole-run latency distribution re-binned on a log scale, for a histogram with a log x axis."""

    edges: np.ndarray  # ms, len(shares) + 1
    shares: np.ndarray  # share of the values in each bin (0..1)
    percentiles: dict[float, float]
    total: int


def distribution(counts: np.ndarray, values: np.ndarray, bins_per_decade: int = 12) -> Distribution | None:
    """The distribution of one row of counts; None when it is empty."""
    total = int(counts.sum())
    if not total:
        return None
    recorded = values[counts > 0]
    low = np.floor(np.log10(max(recorded.min(), 1.0)) * bins_per_decade) / bins_per_decade
    high = np.ceil(np.log10(recorded.max() + 1) * bins_per_decade) / bins_per_decade
    grid = 10 ** np.arange(low, high + 1e-9 + 1 / bins_per_decade, 1 / bins_per_decade)
    # values are whole milliseconds: edges half-way between two of them, so that no bin falls between two values
    edges = np.unique(np.ceil(grid)) - 0.5
    weights, edges = np.histogram(values, bins=edges, weights=counts.astype(float))
    at = percentiles_of(counts[None, :], values, (50, 95, 99, 99.9))
    return Distribution(edges, weights / total, {p: float(v[0]) for p, v in at.items()}, total)


def cdf(counts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, cumulative share) at each recorded value of one row of counts."""
    recorded = counts > 0
    cumulative = np.cumsum(counts)[recorded]
    return values[recorded], cumulative / cumulative[-1] if len(cumulative) else cumulative


def count_at_or_below(histograms: Iterable[HdrHistogram], limit_ms: float) -> int:
    """How many recorded values are within `limit_ms`, a value counting when its bucket's highest equivalent value
    is (as percentiles are read), over many histograms: one numpy sum per histogram."""
    within, total = _values() <= limit_ms, 0
    for histogram in histograms:
        counts = _counts(histogram)
        total += int(counts[within[: len(counts)]].sum())
    return total
