"""Knee detection on Kneedle's published examples (the kneed package's documented data) and a built latency curve."""

from __future__ import annotations

import numpy as np
import pytest
from kneed import DataGenerator

from schoolsurge.models.knee import find_knee


def test_kneedle_paper_figure_2() -> None:
    """y = −1/(x + 0.1) + 5 on ten points of [0, 1]: the kneed README gives the knee at 0.222."""
    x, y = DataGenerator.figure2()
    assert find_knee(x, y, curve="concave") == pytest.approx(0.222, abs=0.001)


@pytest.mark.parametrize(
    ("data", "curve", "direction", "knee"),
    [
        (DataGenerator.convex_increasing, "convex", "increasing", 7),
        (DataGenerator.convex_decreasing, "convex", "decreasing", 2),
        (DataGenerator.concave_increasing, "concave", "increasing", 2),
        (DataGenerator.concave_decreasing, "concave", "decreasing", 7),
    ],
)
def test_kneed_documented_shapes(data, curve: str, direction: str, knee: int) -> None:
    x, y = data()
    assert find_knee(x, y, curve=curve, direction=direction) == knee


def test_kneed_offline_gamma_example() -> None:
    """kneed's own test: 1,000 sorted gamma(0.5) draws (seed 23) have their first (offline) knee at 22."""
    y = sorted(np.random.RandomState(23).gamma(0.5, 1.0, 1000), reverse=True)
    assert find_knee(range(1, 1001), y, direction="decreasing") == 22


def hockey_stick(knee_at: float) -> tuple[np.ndarray, np.ndarray]:
    """Latency p95 (ms) against throughput: nearly flat up to `knee_at`, then 25 ms more per request/s."""
    throughput = np.arange(10.0, 201.0, 10.0)
    latency = np.where(throughput <= knee_at, 100 + 0.1 * throughput, 100 + 0.1 * knee_at + 25 * (throughput - knee_at))
    return throughput, latency


@pytest.mark.parametrize("knee_at", [60.0, 120.0, 150.0])
def test_latency_hockey_stick_bends_where_it_was_built(knee_at: float) -> None:
    assert find_knee(*hockey_stick(knee_at)) == knee_at


def test_noisy_hockey_stick_bends_within_a_step() -> None:
    throughput, latency = hockey_stick(120.0)
    noisy = latency * (1 + np.random.default_rng(7).normal(0, 0.02, len(latency)))
    assert find_knee(throughput, noisy) == pytest.approx(120.0, abs=10.0)


def test_order_missing_values_and_repeats_do_not_matter() -> None:
    throughput, latency = hockey_stick(120.0)
    order = np.random.default_rng(3).permutation(len(throughput))
    x = np.concatenate((throughput[order], [np.nan, 50.0, 130.0]))
    y = np.concatenate((latency[order], [400.0, np.nan, latency[throughput == 130.0][0]]))
    assert find_knee(x, y) == 120.0


@pytest.mark.parametrize(
    ("x", "y"),
    [
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),  # a straight line
        ([1, 2, 3, 4], [5, 5, 5, 5]),  # flat
        ([1, 2], [1, 5]),  # too few points
        ([1, 1, 2, 2], [1, 2, 3, 4]),  # two distinct x values
        ([1, 2, np.nan, np.nan], [1, 2, 3, 4]),  # two points left once NaN is dropped
        ([], []),
    ],
)
def test_no_knee_is_none(x: list, y: list) -> None:
    assert find_knee(x, y) is None


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="curve must be"):
        find_knee([1, 2, 3], [1, 2, 3], curve="wavy")
    with pytest.raises(ValueError, match="direction must be"):
        find_knee([1, 2, 3], [1, 2, 3], direction="up")
    with pytest.raises(ValueError, match="same length"):
        find_knee([1, 2, 3], [1, 2])
