"""The pure models: national curves, Little's law, the first day's calibration, people's draws, incidents, fleet."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import numpy as np
import pytest
import yaml

from schoolsurge.models.behaviour import (
    behaviour_shares,
    draw_action,
    draw_think_time,
    expected_attempts,
    next_retry_delay,
    session_length,
)
from schoolsurge.models.curves import session_survival
from schoolsurge.models.fleet import FleetFigures, fleet_need
from schoolsurge.models.incidents import (
    bot_attempts_per_second,
    bot_rate_at,
    capacity_available,
    capacity_timeline,
    scaled_bot_rate,
)
from schoolsurge.models.population import (
    REQUESTS_PER_LOGIN,
    logins_expected,
    national_curves,
    virtual_classes,
)
from schoolsurge.models.replay import Replay
from schoolsurge.scenario import Scenario, clock_to_seconds, load_scenario, parse_scenario, seconds_to_clock
from schoolsurge.scenario.curves import login_cdf, share_in_window

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SESSION = {"distribution": "exponential", "mean_minutes": 12}


def flat_scenario(session: dict, window=("08:00", "09:00"), population=1_000_000, incidents=()) -> Scenario:
    """One group logging in at a constant rate over the window (an empirical curve going straight from 0 to 1)."""
    start, end = window
    smoke = yaml.safe_load((SCENARIOS / "smoke.yaml").read_text())
    group = dict(smoke["groups"][1])
    group.update(
        population=population,
        participation=1,
        login_time={"distribution": "empirical", "cumulative": [[start, 0], [end, 1]]},
        session=session,
        think={"distribution": "exponential", "mean_seconds": 30},
    )
    return parse_scenario(
        {**smoke, "window": {"start": start, "end": end}, "groups": [group], "incidents": list(incidents)}, "flat"
    )


@pytest.fixture(scope="module")
def first_day() -> Scenario:
    return load_scenario(SCENARIOS / "first-day-2021.yaml")


# --- national curves ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_national_arrivals_conserve_every_group(path: Path) -> None:
    scenario = load_scenario(path)
    curves = national_curves(scenario)
    for group in scenario.groups:
        arrivals = curves.arrivals[group.name]
        assert len(arrivals) == scenario.window.duration_s
        assert (arrivals >= 0).all()
        assert arrivals.sum() == pytest.approx(group.population * group.participation, rel=1e-9)


@pytest.mark.parametrize(
    "session",
    [
        {"distribution": "exponential", "mean_minutes": 12},
        {"distribution": "lognormal", "mean_minutes": 12, "sigma": 0.8},
    ],
    ids=["exponential", "lognormal"],
)
def test_littles_law_on_a_constant_curve(session: dict) -> None:
    # docs/facts.md's example: 1M logins in an hour (278/s) x 12 min is about 200,000 concurrent sessions.
    scenario = flat_scenario(session, window=("08:00", "11:00"), population=3_000_000)
    curves = national_curves(scenario)
    rate = 3_000_000 / (3 * 3600)
    assert curves.total_arrivals()[5000] == pytest.approx(rate)
    # Once every open session began within the flat stretch (well after a few mean session lengths): L = lambda W.
    steady = curves.total_concurrent()[2 * 3600 : 3 * 3600]
    assert steady.min() == pytest.approx(rate * 12 * 60, rel=0.01)
    assert steady.max() == pytest.approx(rate * 12 * 60, rel=0.01)
    assert rate * 12 * 60 == pytest.approx(200_000, rel=0.001)
    # Requests: every login's SSO flow, one page per think time per open session, a logout per session that ends
    # (as many as start, on a flat stretch).
    requests = curves.total_requests()[2 * 3600]
    assert requests == pytest.approx(rate * (REQUESTS_PER_LOGIN + 1) + rate * 12 * 60 / 30, rel=0.01)


def test_concurrency_builds_up_and_drains_with_the_session_length() -> None:
    curves = national_curves(flat_scenario({"distribution": "exponential", "mean_minutes": 12}))
    concurrent = curves.total_concurrent()
    rate = 1_000_000 / 3600
    # Starting from nobody: L(t) = lambda W (1 - exp(-t/W)).
    for t in (60, 600, 1800, 3599):
        assert concurrent[t] == pytest.approx(rate * 720 * (1 - np.exp(-(t + 1) / 720)), rel=0.01)


def test_session_kernel_has_the_mean_session_length() -> None:
    seconds = np.arange(100_000) + 0.5
    for session in (
        {"distribution": "exponential", "mean_minutes": 12},
        {"distribution": "lognormal", "mean_minutes": 90, "sigma": 0.5},
    ):
        scenario = flat_scenario(session)
        survival = session_survival(scenario.groups[0].session, seconds)
        assert survival.sum() == pytest.approx(session["mean_minutes"] * 60, rel=0.005)


def test_login_curves_put_their_mass_where_they_say(first_day: Scenario) -> None:
    holders, teachers, _, primary, secondary_parents = first_day.groups
    assert login_cdf(teachers.login_time, np.array([clock_to_seconds("07:40")]))[0] == pytest.approx(0.5)
    # The teachers who hold a virtual class set it up before the crush: half of them by 07:20.
    assert login_cdf(holders.login_time, np.array([clock_to_seconds("07:20")]))[0] == pytest.approx(0.5)
    # Log-normal: half the group within median_minutes after `after`, nobody before it.
    half_way = clock_to_seconds("08:00") + 30 * 60
    assert login_cdf(primary.login_time, np.array([half_way, clock_to_seconds("07:59")])) == pytest.approx([0.5, 0])
    # Empirical: the table's own points.
    points = np.array([clock_to_seconds(c) for c, _ in secondary_parents.login_time.cumulative])
    shares = [s for _, s in secondary_parents.login_time.cumulative]
    assert login_cdf(secondary_parents.login_time, points) == pytest.approx(shares)
    assert share_in_window(primary.login_time, first_day.window) == pytest.approx(0.98, abs=0.01)


def test_mass_outside_the_window_is_spread_inside_it(first_day: Scenario) -> None:
    # 2% of the primary families would log in after 10:00; the window keeps everyone, in the curve's shape.
    curves = national_curves(first_day)
    primary = first_day.group("primary-families")
    inside = share_in_window(primary.login_time, first_day.window)
    at_0830 = clock_to_seconds("08:30") - first_day.window.start_s
    untruncated = (
        logins_expected(primary)
        * np.diff(login_cdf(primary.login_time, np.array([at_0830, at_0830 + 1]) + first_day.window.start_s))[0]
    )
    assert curves.arrivals["primary-families"][at_0830] == pytest.approx(untruncated / inside, rel=1e-6)


# --- the first day's documented calibration --------------------------------------------------------------------


def test_first_day_documented_figures(first_day: Scenario) -> None:
    """The figures the comments of scenarios/first-day-2021.yaml give."""
    curves = national_curves(first_day)
    assert sum(logins_expected(g) for g in first_day.groups) == pytest.approx(7_100_000, rel=0.005)
    per_minute = curves.per_minute(curves.total_arrivals())
    peak_minute = first_day.window.start_s + 60 * int(per_minute.argmax())
    assert "08:00" <= seconds_to_clock(peak_minute) < "10:00", "the national peak falls in the 8:00-10:00 crush"
    assert seconds_to_clock(peak_minute) == "08:16"
    assert per_minute.max() == pytest.approx(1_850, rel=0.01)
    concurrent = curves.total_concurrent()
    assert concurrent.max() == pytest.approx(1_570_000, rel=0.01)
    assert seconds_to_clock(first_day.window.start_s + int(concurrent.argmax())) == "08:23"
    # Calibration: docs/facts.md's 150,000 virtual classes and 1,202,000 pupils in them, 8 to 10 per class.
    opened, joined = virtual_classes(first_day)
    assert opened == pytest.approx(150_000, rel=0.001)
    assert joined == pytest.approx(1_202_000, rel=0.005)
    assert 8 <= joined / opened <= 10
    # Teachers first (those who hold a virtual class before the others): their curves peak before the pupils'
    # and the primary families come last.
    peaks = {name: int(np.argmax(curve)) for name, curve in curves.arrivals.items()}
    assert peaks["virtual-class-teachers"] < peaks["teachers"] < peaks["secondary-pupils"] < peaks["primary-families"]
    # A tail to 10:00: about 120,000 latecomers still log in during the last half hour.
    assert curves.total_arrivals()[-1800:].sum() == pytest.approx(120_000, rel=0.05)


def test_first_day_default_run_matches_make_surge(first_day: Scenario) -> None:
    replay = Replay(first_day, first_day.run.scale, first_day.run.speed)
    assert replay.duration_s == 150  # 3 hours at speed 72
    assert replay.platform_pupils == 1_270
    assert replay.people == pytest.approx(710, abs=2)
    assert max(replay.concurrent_at(t) for t in range(300)) == pytest.approx(157, abs=3)


# --- a person's draws ---------------------------------------------------------------------------------------


def test_draws_follow_the_group_distributions(first_day: Scenario) -> None:
    rng = random.Random(7)
    pupils = first_day.group("secondary-pupils")
    sessions = [session_length(pupils, person, seed=7) for person in range(40_000)]
    assert statistics.fmean(sessions) == pytest.approx(12 * 60, rel=0.01)  # lognormal with its mean of 12 minutes
    assert statistics.median(sessions) < 12 * 60, "log-normal: median below the mean"
    assert session_length(pupils, 5, seed=7) == sessions[5], "the same person stays as long in any process"
    thinks = [draw_think_time(pupils, rng) for _ in range(40_000)]
    assert statistics.fmean(thinks) == pytest.approx(30, rel=0.03)
    actions = [draw_action(pupils, rng) for _ in range(40_000)]
    for action, share in behaviour_shares(pupils).items():
        assert actions.count(action) / len(actions) == pytest.approx(share, abs=0.01)


def test_constant_think_time_is_constant() -> None:
    scenario = flat_scenario({"distribution": "exponential", "mean_minutes": 12})
    data = scenario.model_dump()
    data["groups"][0]["think"] = {"distribution": "constant", "mean_seconds": 12.5}
    group = parse_scenario(data).groups[0]
    assert {draw_think_time(group, random.Random(s)) for s in range(5)} == {12.5}


def test_full_jitter_backoff_grows_to_its_cap_then_gives_up(first_day: Scenario) -> None:
    policy = first_day.group("teachers").retry  # base 5 s, cap 120 s, 8 retries, patience 1800 s
    rng = random.Random(1)
    for retry in range(policy.max_retries):
        ceiling = min(policy.cap_seconds, policy.base_seconds * 2**retry)
        delays = [next_retry_delay(policy, retry, 0.0, rng) for _ in range(2000)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert statistics.fmean(delays) == pytest.approx(ceiling / 2, rel=0.1)
    assert next_retry_delay(policy, policy.max_retries, 0.0, rng) is None, "no retry beyond max_retries"
    assert next_retry_delay(policy, 0, policy.patience_seconds, rng) is None, "no retry once patience is spent"


def test_impatient_reload_does_not_back_off(first_day: Scenario) -> None:
    policy = first_day.group("secondary-pupils").retry  # reloads every 2 to 10 s
    rng = random.Random(2)
    late = [next_retry_delay(policy, 20, 0.0, rng) for _ in range(1000)]
    assert policy.base_seconds <= min(late) and max(late) <= policy.cap_seconds
    assert next_retry_delay(policy, 0, policy.patience_seconds - 1, rng) is None


def test_retry_amplification_formula() -> None:
    assert expected_attempts(0.0, 5) == 1
    assert expected_attempts(0.5, 2) == pytest.approx(1.75)
    assert expected_attempts(1.0, 5) == 6
    assert expected_attempts(0.999999, 5) == pytest.approx(6, rel=1e-4)
    with pytest.raises(ValueError):
        expected_attempts(1.5, 3)


# --- incidents ------------------------------------------------------------------------------------------------


def test_bot_flood_is_national_and_scales_with_the_load_fraction() -> None:
    flood = {"kind": "bot-flood", "start": "08:10", "end": "08:40", "national_rate_per_s": 5000}
    scenario = flat_scenario(SESSION, incidents=[flood])
    assert bot_rate_at(scenario, clock_to_seconds("08:09")) == 0
    assert bot_rate_at(scenario, clock_to_seconds("08:10")) == 5000
    assert bot_rate_at(scenario, clock_to_seconds("08:40")) == 0
    assert bot_attempts_per_second(scenario).sum() == 5000 * 30 * 60
    assert scaled_bot_rate(scenario.bot_floods[0], 1e-4, 36) == pytest.approx(18)
    # Each attempt is two requests (login form, refused credentials), on top of the people's own.
    extra = national_curves(scenario).total_requests() - national_curves(flat_scenario(SESSION)).total_requests()
    assert extra[10 * 60 : 40 * 60] == pytest.approx(np.full(30 * 60, 10_000))
    assert extra[: 10 * 60] == pytest.approx(np.zeros(10 * 60)) and extra[40 * 60 :] == pytest.approx(0)


def test_capacity_loss_timeline() -> None:
    losses = [
        {"kind": "capacity-loss", "at": "08:15", "restored_at": "08:45", "fraction": 0.4},
        {"kind": "capacity-loss", "at": "08:30", "fraction": 0.3},
    ]
    scenario = flat_scenario({"distribution": "exponential", "mean_minutes": 12}, incidents=losses)
    assert capacity_available(scenario, clock_to_seconds("08:14")) == 1
    assert capacity_available(scenario, clock_to_seconds("08:20")) == pytest.approx(0.6)
    assert capacity_available(scenario, clock_to_seconds("08:35")) == pytest.approx(0.3)
    assert capacity_available(scenario, clock_to_seconds("08:50")) == pytest.approx(0.7)
    timeline = capacity_timeline(scenario, speed=60)
    assert [run_s for run_s, _ in timeline] == [0, 15, 30, 45]
    assert [available for _, available in timeline] == pytest.approx([1, 0.6, 0.3, 0.7])


# --- fleet ------------------------------------------------------------------------------------------------------


def test_fleet_sizing_from_per_process_and_per_session_figures() -> None:
    # Bare Locust's figures (docs/facts.md: 5,300 req/s per process, 27 KB per idle user), planned at 75% CPU;
    # FleetFigures() itself takes the measured ones (benchmarks/fleet_constants.json, tests/test_plan.py).
    figures = FleetFigures(requests_per_s_per_process=5_300, kb_per_session=27, cpu_target=0.75)
    assert fleet_need(100, 200, figures).workers == 1
    assert fleet_need(5_300 * 0.75 * 3 + 1, 0, figures).workers == 4
    assert fleet_need(0, 20_000, figures).memory_mb == pytest.approx(540)
    assert fleet_need(10_000, 0, FleetFigures(requests_per_s_per_process=1_000, cpu_target=1)).workers == 10
    with pytest.raises(ValueError, match="CPU target"):
        FleetFigures(cpu_target=0)


def test_a_few_people_already_stay_as_long_as_the_distribution_says(first_day: Scenario) -> None:
    """Session lengths are spread over the group's people, not drawn: 15 teachers' mean is the planned one."""
    teachers = first_day.group("teachers")
    for seed in (1, 2021, 99):
        few = [session_length(teachers, person, seed) for person in range(15)]
        assert statistics.fmean(few) == pytest.approx(90 * 60, rel=0.1)
