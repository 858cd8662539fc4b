"""The scaled and compressed schedule: conserved, on the curve, deterministic, compressible and splittable."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.engine.share import ProcessShare
from schoolsurge.models import schedule as schedule_module
from schoolsurge.models.population import logins_expected, national_curves
from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import (
    Arrival,
    ArrivalArrays,
    build_schedule,
    people_at_scale,
    schedule_part,
    split_schedule,
)
from schoolsurge.models.sweep import SweepSettings
from schoolsurge.parameters import resolve_parameters
from schoolsurge.scenario import Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SCALE = 1e-3  # about 7,100 people on the first day: every group large enough for a 0.5% check


def reference_schedule(scenario: Scenario, scale: float, speed: float, seed: int) -> list[Arrival]:
    """The schedule as it was first written, one object per arrival and one global sort: what the parts of
    schedule_part must add up to, arrival for arrival."""
    window = scenario.window
    keyed: list[tuple[float, int, int, Arrival]] = []
    for index, group in enumerate(scenario.groups):
        rng = np.random.default_rng([seed, index])
        count = people_at_scale(group, scale)
        clocks = schedule_module.intended_clock_times(group, window, count, rng)
        persons = rng.permutation(count)
        for clock, person in zip(((clocks - window.start_s) / speed).tolist(), persons.tolist(), strict=True):
            keyed.append((clock, index, person, Arrival(clock, group.name, person)))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


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


@pytest.mark.parametrize("parts", [1, 2, 3, 5, 7, 16])
def test_each_process_builds_its_own_part_and_the_parts_are_the_old_round_robin(
    first_day: Scenario, parts: int
) -> None:
    reference = reference_schedule(first_day, SCALE, 36, 2021)
    built = [schedule_part(first_day, SCALE, 36, 2021, parts, index) for index in range(parts)]
    assert sum(len(part) for part in built) == len(reference)
    for index, part in enumerate(built):
        assert isinstance(part, ArrivalArrays)
        assert part.to_list() == reference[index::parts], f"part {index} of {parts}"
        assert part.at_s.dtype == np.float64 and part.group.dtype == np.uint8 and part.person.dtype == np.uint32


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_parts_union_to_the_reference_schedule_of_every_scenario(path: Path) -> None:
    scenario = load_scenario(path)
    run = scenario.run
    reference = reference_schedule(scenario, run.scale, run.speed, run.seed)
    assert build_schedule(scenario, run.scale, run.speed, run.seed) == reference
    for parts in (2, 3):
        union = [
            a for index in range(parts) for a in schedule_part(scenario, run.scale, run.speed, run.seed, parts, index)
        ]
        assert Counter(union) == Counter(reference)


def test_ties_are_ordered_by_group_then_person(first_day: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """Times rounded to whole seconds: many arrivals share a second, within and across groups."""
    exact = schedule_module.intended_clock_times

    def rounded(group, window, count, rng):  # noqa: ANN001, ANN202
        return np.floor(exact(group, window, count, rng) / 36) * 36

    monkeypatch.setattr(schedule_module, "intended_clock_times", rounded)
    reference = reference_schedule(first_day, SCALE, 36, 2021)
    assert len({a.at_s for a in reference}) < len(reference) / 10, "the test needs ties"
    for parts in (1, 4):
        for index in range(parts):
            assert schedule_part(first_day, SCALE, 36, 2021, parts, index).to_list() == reference[index::parts]


@pytest.mark.parametrize("parts", [2, 3, 8])
def test_each_part_is_stratified_and_sorted(first_day: Scenario, parts: int) -> None:
    """Every part keeps the morning's shape: per minute of the run, the parts' counts are within one."""
    built = [schedule_part(first_day, SCALE, 36, 2021, parts, index) for index in range(parts)]
    minutes = first_day.window.duration_s // 36 // 60 + 1
    counts = np.array([np.bincount((part.at_s // 60).astype(int), minlength=minutes) for part in built])
    assert (counts.max(axis=0) - counts.min(axis=0)).max() <= 1
    # ... and so does any stretch: arrivals before any time t differ by at most one between the parts.
    for t in np.linspace(0, first_day.window.duration_s / 36, 97):
        before = [int(np.searchsorted(part.at_s, t, side="right")) for part in built]
        assert max(before) - min(before) <= 1
    # Each part follows the curve: per minute, within one of the whole's count shared out (itself within 2 of
    # the curve's expectation per group, test_counts_per_minute_follow_the_curve).
    whole = counts.sum(axis=0)
    assert np.abs(counts - whole / parts).max() < 1
    total = sum(map(len, built))
    for part in built:
        assert np.all(np.diff(part.at_s) >= 0)
        for number, group in enumerate(first_day.groups):  # the mix: each group's share, up to sampling noise
            expected = people_at_scale(group, SCALE) / total
            drawn = np.count_nonzero(part.group == number) / len(part)
            assert drawn == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / len(part)))


def test_parts_are_deterministic_and_depend_on_the_seed(first_day: Scenario) -> None:
    one = schedule_part(first_day, SCALE, 36, 2021, 3, 1)
    again = schedule_part(first_day, SCALE, 36, 2021, 3, 1)
    other = schedule_part(first_day, SCALE, 36, 7, 3, 1)
    assert np.array_equal(one.at_s, again.at_s) and np.array_equal(one.person, again.person)
    assert np.array_equal(one.group, again.group)
    assert not np.array_equal(one.at_s, other.at_s)


def test_part_arrays_index_and_slice_like_a_list(first_day: Scenario) -> None:
    part = schedule_part(first_day, SCALE, 36, 2021, 2, 0)
    listed = part.to_list()
    assert part[0] == listed[0] and part[-1] == listed[-1] and part[5] == listed[5]
    assert isinstance(part[5].at_s, float) and isinstance(part[5].person, int) and isinstance(part[5].group, str)
    assert part[10:20].to_list() == listed[10:20]
    assert part.round_robin(3, 2).to_list() == listed[2::3]
    assert part.nbytes == 13 * len(part)
    with pytest.raises(ValueError, match="parts must be at least 1"):
        schedule_part(first_day, SCALE, 36, 2021, 0, 0)
    with pytest.raises(ValueError, match=r"index must be in \[0, 2\)"):
        schedule_part(first_day, SCALE, 36, 2021, 2, 2)


def test_more_parts_than_arrivals_leaves_some_empty(first_day: Scenario) -> None:
    reference = reference_schedule(first_day, 1e-6, 36, 1)
    parts = len(reference) + 3
    built = [schedule_part(first_day, 1e-6, 36, 1, parts, index).to_list() for index in range(parts)]
    assert [a for part in built for a in part] == reference
    assert built[-1] == []


def test_a_sweeps_parts_are_its_schedule_round_robin(first_day: Scenario) -> None:
    replay = sweep_replay(first_day, SweepSettings(steps=4, low=0.1, high=1.0), scale=1e-4, speed=60)
    whole = replay.schedule(seed=3)
    for parts in (1, 2, 3):
        for index in range(parts):
            assert replay.schedule_part(3, parts, index).to_list() == whole[index::parts]


def test_a_process_share_computes_only_what_it_is_asked_for(first_day: Scenario) -> None:
    """The share's whole-run schedule: its length from the replay, a round-robin part on its own (what
    split_schedule and assign take), the whole run only when it is iterated."""
    replay = Replay(first_day, SCALE, 36)
    reference = reference_schedule(first_day, SCALE, 36, 2021)
    share = ProcessShare(replay, resolve_parameters(first_day, SCALE, 36, 2021))
    assert len(share.schedule) == len(reference)
    assert split_schedule(share.schedule, 3, 2) == reference[2::3]
    assert share.schedule._whole is None, "neither the length nor a part built the whole run"
    assert share.assign(3, 1, start_unix=time.time()) == len(reference[1::3])
    assert share.queue.remaining == len(reference[1::3]) and share.ledger.total("scheduled") == len(reference[1::3])
    assert share.queue.claim().arrival == reference[1]
    assert list(share.schedule) == reference and share.schedule[7] == reference[7]
