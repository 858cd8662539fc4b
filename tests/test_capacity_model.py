"""SLO capacity interpolation and the national answer, on cases worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from schoolsurge.errors import FitError
from schoolsurge.models.capacity import (
    Demand,
    NationalAnswer,
    SloCapacity,
    demand_from_curves,
    national_answer,
    slo_capacity,
)
from schoolsurge.models.population import national_curves
from schoolsurge.scenario import load_scenario

P95 = "login p95 (ms)"
ERRORS = "error ratio"
LIMITS = {P95: 2000.0, ERRORS: 0.01}
EIGHT = 8 * 3600  # 08:00

# ---- SLO capacity ------------------------------------------------------------------------------------------


def test_breach_interpolates_to_the_first_objective_that_crosses() -> None:
    # Step 4 breaches both: p95 crosses 2000 a third of the way from 30 to 40 (33.3), errors half way (35).
    capacity = slo_capacity(
        [10, 20, 30, 40],
        {P95: [500, 800, 1500, 3000], ERRORS: [0, 0, 0.005, 0.015]},
        LIMITS,
    )
    assert capacity == SloCapacity(pytest.approx(30 + 10 / 3), P95, False, 3)


def test_the_other_objective_can_be_the_limiting_one() -> None:
    capacity = slo_capacity([10, 20, 30, 40], {P95: [500, 800, 1500, 3000], ERRORS: [0, 0, 0.009, 0.1]}, LIMITS)
    # errors: (0.01 − 0.009)/(0.1 − 0.009) = 1/91 of the way: 30.11; p95 at 33.3
    assert capacity.throughput == pytest.approx(30 + 10 / 91)
    assert capacity.limiting_objective == ERRORS


def test_a_breach_at_a_step_ends_the_search_even_if_a_later_step_holds() -> None:
    capacity = slo_capacity([10, 20, 30, 40], {P95: [500, 2500, 900, 900], ERRORS: [0, 0, 0, 0]}, LIMITS)
    # p95 crosses (2000 − 500)/(2500 − 500) = 3/4 of the way from 10 to 20
    assert capacity == SloCapacity(pytest.approx(17.5), P95, False, 1)


def test_every_step_held_gives_the_highest_measured_throughput() -> None:
    capacity = slo_capacity([10, 20, 15], {P95: [100, 200, 300], ERRORS: [0, 0.001, 0.01]}, LIMITS)
    assert capacity == SloCapacity(20.0, None, True, 3)


def test_no_step_held_gives_none() -> None:
    capacity = slo_capacity([10, 20], {P95: [100, 200], ERRORS: [0.02, 0.03]}, LIMITS)
    assert capacity == SloCapacity(None, ERRORS, False, 0)


def test_throughput_that_fell_past_saturation_keeps_the_best_step_that_held() -> None:
    # The breaching step delivered less (25) than the last one that held (30): nothing to interpolate upwards.
    capacity = slo_capacity([10, 30, 25, 20], {P95: [100, 200, 2500, 500], ERRORS: [0, 0, 0, 0]}, LIMITS)
    assert capacity == SloCapacity(30.0, P95, False, 2)


def test_interpolation_starts_from_the_last_step_that_held_not_the_best() -> None:
    # Throughput dipped to 20 at step 3 (held), then 40 at step 4 (breached): p95 crosses 2/3 of the way from 20.
    capacity = slo_capacity([10, 30, 20, 40], {P95: [100, 200, 1000, 2500], ERRORS: [0, 0, 0, 0]}, LIMITS)
    assert capacity.throughput == pytest.approx(20 + 2 / 3 * 20)
    # ... and never below a step that held: a crossing at 26 still reports 30.
    capacity = slo_capacity([10, 30, 20, 40], {P95: [100, 200, 1000, 5000], ERRORS: [0, 0, 0, 0]}, LIMITS)
    assert capacity.throughput == 30.0


def test_an_unmeasured_value_is_a_breach_at_the_last_step_that_held() -> None:
    capacity = slo_capacity([10, 20, 30], {P95: [100, 200, None], ERRORS: [0, 0, 0]}, LIMITS)
    assert capacity == SloCapacity(20.0, P95, False, 2)
    capacity = slo_capacity([10, 20, 30], {P95: [100, float("nan"), 300], ERRORS: [0, 0, 0]}, LIMITS)
    assert capacity == SloCapacity(10.0, P95, False, 1)


def test_measures_without_a_limit_are_ignored() -> None:
    capacity = slo_capacity([10, 20], {P95: [100, 200], ERRORS: [0, 0], "cpu": [99, 100]}, {P95: 2000})
    assert capacity == SloCapacity(20.0, None, True, 2)


@pytest.mark.parametrize(
    ("throughput", "measures", "limits", "says"),
    [
        ([10, 20], {P95: [1, 2]}, {ERRORS: 0.01}, "has a limit but no measures"),
        ([10, 20], {P95: [1]}, {P95: 2000}, "1 values for 2 steps"),
        ([10, float("nan")], {P95: [1, 2]}, {P95: 2000}, "finite number"),
        ([10, -1], {P95: [1, 2]}, {P95: 2000}, "at or above 0"),
        ([10, 20], {P95: [1, 2]}, {P95: float("inf")}, "finite number as its limit"),
    ],
)
def test_slo_capacity_refuses_bad_input(throughput: list, measures: dict, limits: dict, says: str) -> None:
    with pytest.raises(FitError, match=says):
        slo_capacity(throughput, measures, limits)


# ---- national answer ---------------------------------------------------------------------------------------


def triangle() -> Demand:
    """Twenty minutes from 08:00: arrivals rise by 2/s every second for ten minutes, then fall back the same way.

    Whole numbers, so the minute means are exact: 120m + 60 for m = 0..9 (60, 180, ..., 1140), then the same
    backwards (1140, ..., 60); the peak is reached in minutes 9 and 10 alike, and the first counts. Requests are
    one per arrival plus 1,000/s of background: 120m + 1060 on the way up (peak 2140).
    """
    i = np.arange(1200)
    arrivals = np.minimum(2 * i + 1, 2399 - 2 * i).astype(float)
    return Demand(EIGHT, arrivals, arrivals + 1000)


def test_triangle_against_a_login_capacity() -> None:
    # Run capacity 8 logins/s and 20.5 requests/s at load fraction 0.01: 800 and 2050 per second nationally.
    answer = national_answer(8.0, 20.5, 0.01, triangle())
    assert answer.capacity_logins_per_s_national == pytest.approx(800)
    assert answer.capacity_requests_per_s_national == pytest.approx(2050)
    assert (answer.peak_demand_logins_per_s, answer.peak_demand_logins_at) == (1140, "08:09")
    assert (answer.peak_demand_requests_per_s, answer.peak_demand_requests_at) == (2140, "08:09")
    # Logins above 800 in minutes 7, 8, 9 (900, 1020, 1140) and 10, 11, 12 (1140, 1020, 900); requests above
    # 2050 only in minutes 9 and 10, inside those.
    assert answer.exceeds_from == "08:07"
    assert answer.exceeds_for_s == 360
    assert answer.people_arriving_while_exceeded == pytest.approx(60 * (900 + 1020 + 1140) * 2)
    # Instances: logins 1140 × 1.3 / 800 = 1.85, requests 2140 × 1.3 / 2050 = 1.36: two, set by logins.
    assert (answer.instances_needed, answer.limiting) == (2, "logins")
    assert answer.headroom == 0.30


def test_triangle_against_a_request_capacity() -> None:
    # 12 requests/s in the run = 1200 nationally: exceeded in minutes 2..9 (1300..2140) and 10..17 (2140..1300).
    answer = national_answer(8.0, 12.0, 0.01, triangle())
    assert answer.exceeds_from == "08:02"
    assert answer.exceeds_for_s == 16 * 60
    rising = sum(120 * m + 60 for m in range(2, 10))
    assert answer.people_arriving_while_exceeded == pytest.approx(60 * 2 * rising)
    # 2140 × 1.3 / 1200 = 2.32 (logins 1.85): three instances, set by requests.
    assert (answer.instances_needed, answer.limiting) == (3, "requests")


def test_one_capacity_unknown_compares_the_other_only() -> None:
    answer = national_answer(None, 12.0, 0.01, triangle())
    assert answer.capacity_logins_per_s_national is None
    assert (answer.exceeds_from, answer.instances_needed, answer.limiting) == ("08:02", 3, "requests")


def test_no_capacity_known_gives_no_verdict() -> None:
    answer = national_answer(None, None, 0.01, triangle())
    assert (answer.exceeds_from, answer.exceeds_for_s, answer.people_arriving_while_exceeded) == (None, 0.0, 0.0)
    assert (answer.instances_needed, answer.limiting) == (None, None)


def test_a_capacity_above_the_peak_is_never_exceeded() -> None:
    answer = national_answer(20.0, 30.0, 0.01, triangle())  # 2000 logins/s, 3000 requests/s nationally
    assert (answer.exceeds_from, answer.exceeds_for_s, answer.people_arriving_while_exceeded) == (None, 0.0, 0.0)
    assert answer.instances_needed == 1


def test_instances_round_up_but_not_past_an_exact_fit() -> None:
    # No headroom: a capacity of exactly half the peak needs 2 instances, not 3 from a rounding crumb.
    assert national_answer(5.70, None, 0.01, triangle(), headroom=0.0).instances_needed == 2
    assert national_answer(5.69, None, 0.01, triangle(), headroom=0.0).instances_needed == 3


def test_smoothing_follows_clock_minutes_with_partial_edges() -> None:
    # 120 s at 10/s from 08:00:30: minutes 08:00 (30 s), 08:01 (60 s), 08:02 (30 s), all at 10/s.
    demand = Demand(EIGHT + 30, np.full(120, 10.0), np.full(120, 50.0))
    answer = national_answer(0.05, None, 0.01, demand)  # 5 logins/s nationally
    assert (answer.exceeds_from, answer.exceeds_for_s) == ("08:00", 120)
    assert answer.people_arriving_while_exceeded == pytest.approx(1200)


def test_a_one_second_spike_is_smoothed_away() -> None:
    arrivals = np.full(120, 1.0)
    arrivals[30] = 50.0  # one second at 50/s: the minute's mean is (59 + 50)/60 ≈ 1.8
    answer = national_answer(0.02, None, 0.01, Demand(EIGHT, arrivals, arrivals))  # 2 logins/s nationally
    assert answer.exceeds_from is None
    assert answer.peak_demand_logins_per_s == pytest.approx(109 / 60)


def test_national_answer_to_dict_is_json_ready() -> None:
    answer = national_answer(8.0, None, 0.01, triangle())
    data = json.loads(json.dumps(answer.to_dict(), allow_nan=False))
    assert data["instances_needed"] == 2 and data["limiting"] == "logins"
    assert data["capacity_requests_per_s_national"] is None
    assert isinstance(answer, NationalAnswer)


@pytest.mark.parametrize(
    ("logins", "requests", "fraction", "headroom", "says"),
    [
        (0.4, None, 0.0, 0.3, "load fraction"),
        (0.4, None, math.nan, 0.3, "load fraction"),
        (0.4, None, 0.01, -0.1, "headroom"),
        (0.0, None, 0.01, 0.3, "logins capacity"),
        (None, -2.0, 0.01, 0.3, "requests capacity"),
    ],
)
def test_national_answer_refuses_bad_input(
    logins: float | None, requests: float | None, fraction: float, headroom: float, says: str
) -> None:
    with pytest.raises(FitError, match=says):
        national_answer(logins, requests, fraction, triangle(), headroom)


def test_demand_of_different_lengths_is_refused() -> None:
    with pytest.raises(FitError, match="every second"):
        national_answer(0.4, None, 0.01, Demand(EIGHT, np.ones(10), np.ones(9)))


def test_demand_from_a_scenario_peaks_where_the_plan_says() -> None:
    scenario = load_scenario(Path(__file__).parents[1] / "scenarios" / "first-day-2021.yaml")
    curves = national_curves(scenario)
    answer = national_answer(None, None, 1.0, demand_from_curves(curves))
    per_minute = curves.per_minute(curves.total_arrivals())
    assert answer.peak_demand_logins_per_s == pytest.approx(float(per_minute.max()))
