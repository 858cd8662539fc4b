"""The closed-model shape follows the scenario's concurrency curve on a real Locust runner."""

from __future__ import annotations

import time
from argparse import Namespace
from pathlib import Path

import pytest
from locust.env import Environment

from schoolsurge.context import build_context
from schoolsurge.models.population import concurrent_sessions
from schoolsurge.models.replay import Replay
from schoolsurge.personas import ParentUser, StudentUser, TeacherUser
from schoolsurge.scenario import load_scenario
from schoolsurge.shape import ScenarioShape

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@pytest.fixture
def first_day_env() -> Environment:
    options = Namespace(
        scenario=str(SCENARIOS / "first-day-2021.yaml"), scale=None, speed=None, seed=None, run_dir=None
    )
    environment = Environment(
        user_classes=[StudentUser, TeacherUser, ParentUser],
        shape_class=ScenarioShape(),
        host="http://127.0.0.1:9",
    )
    environment.surge = build_context(options)
    environment.create_local_runner()
    yield environment
    environment.runner.quit()


def _tick_at(environment: Environment, run_s: float):
    shape = environment.shape_class
    shape.start_time = time.perf_counter() - run_s
    return shape.tick()


def test_ticks_follow_the_curve_and_end_with_the_window(first_day_env: Environment) -> None:
    replay = first_day_env.surge.replay
    assert replay.duration_s == 300  # 3 hours at 36x
    counts = {}
    for run_s in (0, 60, 120, 150, 200, 280):
        users, spawn_rate = _tick_at(first_day_env, run_s)
        assert users == replay.users_at(run_s)
        assert spawn_rate >= max(1, users), "reaches the target within one tick from an empty runner"
        counts[run_s] = users
    assert counts[0] < counts[60] < counts[120], "the morning ramps up"
    assert max(counts, key=counts.get) in (120, 150), "peaks around 08:00-08:15"
    assert counts[280] < counts[150], "and drains by 10:00"
    assert _tick_at(first_day_env, replay.duration_s + 0.5) is None


def test_compression_keeps_concurrency_and_scale_divides_it() -> None:
    scenario = load_scenario(SCENARIOS / "first-day-2021.yaml")
    slow, fast = Replay(scenario, 1e-4, 1), Replay(scenario, 1e-4, 36)
    # The same scenario clock reached at different run times: the same number of people logged in.
    assert slow.users_at(3600) == fast.users_at(100)
    national = sum(concurrent_sessions(g, scenario.window.start_s + 3600) for g in scenario.groups)
    assert slow.users_at(3600) == round(national * 1e-4)
    assert fast.load_fraction == pytest.approx(36e-4)


def test_littles_law_on_a_flat_stretch() -> None:
    scenario = load_scenario(SCENARIOS / "smoke.yaml")
    group = scenario.groups[1]
    # Near the curve's mean the rate is almost flat: L ~ lambda * W.
    from schoolsurge.models.population import arrival_rate

    mean = group.login_time.mean_s
    expected = arrival_rate(group, mean) * group.session_minutes * 60
    assert concurrent_sessions(group, mean + group.session_minutes * 30) == pytest.approx(expected, rel=0.02)
