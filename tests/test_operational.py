"""The operational laws, on cases computed by hand."""

from __future__ import annotations

import math

import pytest

from schoolsurge.models.operational import (
    Demand,
    asymptotic_bound,
    bottleneck,
    bottleneck_bound,
    littles_law_population,
    marginal_demand,
    service_demand,
    utilisation,
)


def test_one_window_of_a_two_core_machine() -> None:
    # 60 s, 30 CPU seconds over 2 cores, 6,000 requests: X = 100/s, U = 30 / (2 x 60) = 25%,
    # D = 30 / 6000 = 5 ms, and 2 cores saturate at 2 / 0.005 = 400 requests/s (= X / U).
    window = Demand(busy_s=30.0, elapsed_s=60.0, completions=6000.0, servers=2)
    assert window.throughput == pytest.approx(100.0)
    assert window.busy_servers == pytest.approx(0.5)
    assert window.utilisation == pytest.approx(0.25)
    assert window.demand_s == pytest.approx(0.005)
    assert window.bound == pytest.approx(400.0)
    assert window.bound == pytest.approx(window.throughput / window.utilisation)


def test_the_utilisation_law_both_ways() -> None:
    assert utilisation(busy_s=45.0, elapsed_s=100.0) == pytest.approx(0.45)
    assert utilisation(busy_s=45.0, elapsed_s=100.0, servers=3) == pytest.approx(0.15)
    # U = X D / m: 0.15 = 30 x D / 3  ->  D = 15 ms; with one server, D = U / X.
    assert service_demand(0.15, 30.0, servers=3) == pytest.approx(0.015)
    assert service_demand(0.6, 40.0) == pytest.approx(0.015)
    assert bottleneck_bound(0.015) == pytest.approx(66.6667, rel=1e-4)
    assert bottleneck_bound(0.015, servers=3) == pytest.approx(200.0)


def test_the_bottleneck_is_the_largest_demand_per_server() -> None:
    # CPU: 8 ms over 4 cores -> 500/s; disk: 3 ms on one -> 333.3/s; network: 1 ms -> 1000/s.
    name, bound = bottleneck({"cpu": (0.008, 4), "disk": (0.003, 1), "network": (0.001, 1)})
    assert name == "disk" and bound == pytest.approx(1000 / 3)


def test_asymptotic_bound_and_littles_law() -> None:
    demands = {"cpu": (0.008, 4), "disk": (0.003, 1)}
    # light load: N / (D_total + Z) = 2 / (0.011 + 0.989) = 2/s; heavy: the disk's 333.3/s
    assert asymptotic_bound(2, demands, think_s=0.989) == pytest.approx(2.0)
    assert asymptotic_bound(10_000, demands, think_s=0.989) == pytest.approx(1000 / 3)
    assert littles_law_population(200.0, 0.05) == pytest.approx(10.0)


def test_nothing_completed_or_nothing_busy_gives_no_bound() -> None:
    assert Demand(1.0, 10.0, 0.0).demand_s is None and Demand(1.0, 10.0, 0.0).bound is None
    assert Demand(0.0, 10.0, 50.0).bound is None
    with pytest.raises(ValueError):
        Demand(1.0, 0.0, 5.0)
    with pytest.raises(ValueError):
        Demand(1.0, 1.0, 5.0, servers=0)
    with pytest.raises(ValueError):
        service_demand(0.5, 0.0)


def test_marginal_demand_separates_idle_work_from_each_request() -> None:
    # busy cores = 0.2 + 0.004 X: at 50/s D = U/X reads 8 ms, at 200/s 5 ms; the slope is 4 ms.
    throughput = [50.0, 100.0, 200.0]
    busy = [0.2 + 0.004 * x for x in throughput]
    demands = [Demand(b * 10, 10.0, x * 10, servers=2).demand_s for b, x in zip(busy, throughput, strict=True)]
    assert demands == pytest.approx([0.008, 0.006, 0.005])
    fit = marginal_demand(busy, throughput)
    assert fit is not None and fit.windows == 3
    assert fit.demand_s == pytest.approx(0.004) and fit.idle == pytest.approx(0.2)
    assert fit.bound(2) == pytest.approx((2 - 0.2) / 0.004)
    assert marginal_demand([0.1, 0.2], [1.0, 2.0]) is None  # too few windows
    assert marginal_demand([0.1, 0.2, 0.3], [5.0, 5.0, 5.0]) is None  # one throughput: no slope
    through_origin = marginal_demand([0.1, 0.15, 0.5], [50.0, 100.0, 200.0])
    assert through_origin is not None and through_origin.idle == 0.0 and math.isfinite(through_origin.demand_s)
