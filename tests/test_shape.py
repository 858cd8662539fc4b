"""The skeleton's closed-model shape follows the scenario's concurrency curve on a real Locust runner.

(The open-arrival engine replaces this shape; these tests go with schoolsurge/shape.py when it is removed.)"""

from __future__ import annotations

import time
from argparse import Namespace
from pathlib import Path

import pytest
from locust import User, constant, task
from locust.env import Environment

from schoolsurge.context import build_context
from schoolsurge.models.replay import Replay
from schoolsurge.scenario import clock_to_seconds, load_scenario
from schoolsurge.shape import ScenarioShape

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


class IdleUser(User):
    """The shape only sets user counts; the users never send a request here."""

    wait_time = constant(1)

    @task
    def idle(self) -> None:
        pass


@pytest.fixture
def first_day_env() -> Environment:
    options = Namespace(
        scenario=str(SCENARIOS / "first-day-2021.yaml"), scale=None, speed=None, seed=None, run_dir=None
    )
    environment = Environment(
        user_classes=[IdleUser],
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
    peak_clock = replay.clock_at(max(counts, key=counts.get))
    assert clock_to_seconds("08:00") <= peak_clock <= clock_to_seconds("08:30"), "peaks in the 8:00-8:30 crush"
    assert counts[280] < counts[150], "and drains by 10:00"
    assert _tick_at(first_day_env, replay.duration_s + 0.5) is None


def test_compression_keeps_concurrency_and_scale_divides_it() -> None:
    scenario = load_scenario(SCENARIOS / "first-day-2021.yaml")
    slow, fast = Replay(scenario, 1e-4, 1), Replay(scenario, 1e-4, 36)
    # The same scenario clock reached at different run times: the same number of people logged in.
    assert slow.users_at(3600) == fast.users_at(100)
    national = slow.national.total_concurrent()[3600 - 1]  # open at the end of the second before 08:00
    assert slow.concurrent_at(3600) == pytest.approx(national * 1e-4, rel=1e-3)
    assert fast.load_fraction == pytest.approx(36e-4)


def test_before_and_after_the_window_the_shape_holds_its_ends() -> None:
    replay = Replay(load_scenario(SCENARIOS / "first-day-2021.yaml"), 1e-4, 36)
    assert replay.users_at(0) == 0, "nobody is logged in when the morning starts"
    assert replay.users_at(replay.duration_s + 10) == replay.users_at(replay.duration_s - 0.01)
