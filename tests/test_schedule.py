"""The scaled and compressed schedule: conserved, on the curve, deterministic, compressible and splittable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from schoolsurge.models.population import logins_expected, national_curves
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import build_schedule, people_at_scale, split_schedule
from schoolsurge.scenario import Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SCALE = 1e-3  # about 7,100 people on the first day: every group large enough for a 0.5% check


@pytest.fixture(scope="module")
def first_day() -> Scenario:
    return load_scenario(SCENARIOS / "first-day-2021.yaml")


@pytest.fixture(scope="module")
def schedule(first_day: Scenario):
    return build_schedule(first_day, SCALE, 36, seed=2021)


def test_arrivals_sum_to_population_times_participation(first_day: Scenario, schedule) -> None:
    counts = Counter(a.group for a in schedule)
    for group in first_day.groups:
        assert counts[group.name] == people_at_scale(group, SCALE)
        assert counts[group.name] / SCALE == pytest.approx(group.population * group.participation, rel=0.005)
    assert len(schedule) == Replay(first_day, SCALE, 36).people


def test_schedule_is_sorted_inside_the_run_with_unique_people(first_day: Scenario, schedule) -> None:
    times = [a.at_s for a in schedule]
    assert times == sorted(times)
    assert times[0] >= 0 and times[-1] <= first_day.window.duration_s / 36
    for group in first_day.groups:
        persons = sorted(a.person for a in schedule if a.group == group.name)
        assert persons == list(range(people_at_scale(group, SCALE)))
    early = [a.person for a in schedule if a.group == "secondary-pupils"][:50]
    assert early != sorted(early), "person numbers (hence accounts and classes) are spread over the morning"


def test_counts_per_minute_follow_the_curve(first_day: Scenario, schedule) -> None:
    curves = national_curves(first_day)
    for group in first_day.groups:
        clock_minutes = [int(a.at_s * 36 // 60) for a in schedule if a.group == group.name]
        counts = np.bincount(clock_minutes, minlength=first_day.window.duration_s // 60)
        expected = curves.arrivals[group.name].reshape(-1, 60).sum(axis=1) * SCALE
        # Stratified quantiles: every stretch of the morning is within 2 of its expectation, per group.
        assert np.abs(counts - expected).max() < 2, group.name


def test_same_seed_same_schedule_other_seed_other_schedule(first_day: Scenario, schedule) -> None:
    assert build_schedule(first_day, SCALE, 36, seed=2021) == schedule
    other = build_schedule(first_day, SCALE, 36, seed=7)
    assert len(other) == len(schedule) and other != schedule


def test_compression_keeps_totals_and_shape(first_day: Scenario, schedule) -> None:
    real_time = build_schedule(first_day, SCALE, 1, seed=2021)
    assert [(a.group, a.person) for a in real_time] == [(a.group, a.person) for a in schedule]
    assert np.array([a.at_s for a in schedule]) * 36 == pytest.approx([a.at_s for a in real_time])
    assert real_time[-1].at_s <= first_day.window.duration_s


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_split_schedules_union_to_the_whole(schedule, parts: int) -> None:
    split = [split_schedule(schedule, parts, index) for index in range(parts)]
    assert sum(len(part) for part in split) == len(schedule)
    keys = [(a.group, a.person) for part in split for a in part]
    assert len(set(keys)) == len(schedule), "the parts are disjoint"
    assert Counter(a for part in split for a in part) == Counter(schedule)
    assert all(part == sorted(part, key=lambda a: a.at_s) for part in split), "each part keeps the order"
    # Balanced over time: every minute of the run is shared out within one arrival between the parts.
    for minute in range(5):
        counts = [sum(1 for a in part if minute * 60 <= a.at_s < (minute + 1) * 60) for part in split]
        assert max(counts) - min(counts) <= 1, counts


def test_split_rejects_impossible_parts(schedule) -> None:
    with pytest.raises(ValueError, match="parts must be at least 1"):
        split_schedule(schedule, 0, 0)
    with pytest.raises(ValueError, match=r"index must be in \[0, 2\)"):
        split_schedule(schedule, 2, 2)


def test_schedule_refuses_bad_scale_speed_or_seed(first_day: Scenario) -> None:
    with pytest.raises(ValueError, match="scale"):
        build_schedule(first_day, 1.5, 36, 1)
    with pytest.raises(ValueError, match="speed"):
        build_schedule(first_day, 1e-4, 0, 1)
    with pytest.raises(ValueError, match="seed"):
        build_schedule(first_day, 1e-4, 36, -1)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_library_scenario_schedules_its_default_run(path: Path) -> None:
    scenario = load_scenario(path)
    run = scenario.run
    arrivals = build_schedule(scenario, run.scale, run.speed, run.seed)
    total = sum(logins_expected(g) for g in scenario.groups) * run.scale
    assert len(arrivals) == pytest.approx(total, abs=len(scenario.groups))
    assert arrivals[-1].at_s <= Replay(scenario, run.scale, run.speed).duration_s
