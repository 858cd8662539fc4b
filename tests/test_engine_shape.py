"""The load shape sizes the agent pool from the plan and from arrivals found waiting; it ends the test once
the window is replayed and the last sessions are over, and says the run completed."""

from __future__ import annotations

import math
import time
from argparse import Namespace
from pathlib import Path

import pytest
from locust.env import Environment

from schoolsurge.engine import Engine, PoolShape, SurgeAgent, build_context, install
from schoolsurge.engine.shape import AGENTS_PER_PERSON, LOOKAHEAD_S, POOL_HEADROOM, POOL_SPARE

SMOKE = Path(__file__).resolve().parent.parent / "scenarios" / "smoke.yaml"
DRAIN_LIMIT_S = 2.5  # the run's --drain-limit, not the default


class DrivenShape(PoolShape):
    """The real shape, with the run time set by the test instead of the wall clock."""

    run_s = 0.0

    def get_run_time(self) -> float:
        return self.run_s


@pytest.fixture
def engine_and_shape() -> tuple[Engine, DrivenShape]:
    shape = DrivenShape()
    environment = Environment(user_classes=[SurgeAgent], shape_class=shape, host="http://127.0.0.1:9")
    environment.create_local_runner()
    context = build_context(Namespace(scenario=str(SMOKE), speed=240, drain_limit=DRAIN_LIMIT_S))
    engine = install(environment, context)
    shape.runner = environment.runner
    yield engine, shape
    engine.close()
    environment.runner.quit()


def _expected_pool(engine: Engine, run_s: float) -> int:
    context = engine.context
    expected = max(context.expected_concurrency(run_s), context.expected_concurrency(run_s + LOOKAHEAD_S))
    return math.ceil(expected * POOL_HEADROOM * AGENTS_PER_PERSON) + POOL_SPARE


def test_the_pool_follows_the_expected_concurrency_and_never_shrinks(engine_and_shape) -> None:
    engine, shape = engine_and_shape
    engine.share.assign(1, 0, start_unix=time.time() + 3600)  # no arrival is due yet: the plan alone sizes it
    sizes = []
    for run_s in (0.0, 5.0, 10.0, 14.0):
        shape.run_s = run_s
        pool, spawn_rate = shape.tick()
        sizes.append(pool)
        assert pool >= _expected_pool(engine, run_s) and spawn_rate >= 1
    assert sizes == sorted(sizes), "the pool only grows while the schedule runs"
    assert sizes[0] == _expected_pool(engine, 0.0)


def test_arrivals_waiting_for_an_agent_grow_the_pool(engine_and_shape) -> None:
    engine, shape = engine_and_shape
    engine.share.assign(1, 0, start_unix=0.0)  # run second 0 was long ago: every arrival is due and waiting
    waiting = engine.fleet_status().waiting
    assert waiting > 50
    pool, _ = shape.tick()
    assert pool >= waiting  # an agent for each arrival found waiting, on top of the current pool (0)


class SpawnedShape(DrivenShape):
    """Every agent the shape asks for is running at once, as Locust spawns them."""

    def get_current_user_count(self) -> int:
        return self.pool


def test_work_that_keeps_waiting_never_grows_the_pool_past_one_agent_per_person(engine_and_shape) -> None:
    # A generator short of CPU: whatever the pool, the same work is found waiting at every tick. Agents past one
    # per person in a session and per arrival waiting could never be busy; a pool that kept growing (tens of
    # thousands of agents) would only take more of the CPU that is short.
    engine, _ = engine_and_shape
    shape = SpawnedShape()
    shape.runner = engine.environment.runner
    engine.share.assign(1, 0, start_unix=0.0)
    engine.share.active_sessions = 40
    status = engine.fleet_status()
    assert status.waiting > 50
    ceiling = status.active + status.waiting + POOL_SPARE
    pools = [shape.tick()[0] for _ in range(10)]
    assert pools[0] >= status.waiting, "the work waiting still grows the pool at once"
    assert max(pools) <= ceiling and pools[-1] == pools[-2]


def test_the_test_ends_once_replayed_and_drained_and_is_marked_completed(engine_and_shape) -> None:
    engine, shape = engine_and_shape
    engine.share.assign(1, 0, start_unix=0.0)
    shape.run_s = engine.context.replay.duration_s + 1
    assert shape.tick() is not None, "arrivals are still to be lived"
    assert not engine.completed
    while engine.share.queue.claim() is not None:  # every arrival claimed and lived
        pass
    assert shape.tick() is None and engine.completed
    engine.completed = False
    engine.share.active_sessions = 3  # sessions still going past the window...
    assert shape.tick() is not None
    shape.run_s = engine.context.replay.duration_s + DRAIN_LIMIT_S - 0.1
    assert shape.tick() is not None and not engine.completed
    shape.run_s = engine.context.replay.duration_s + DRAIN_LIMIT_S  # ...are not waited for past the drain limit
    assert shape.tick() is None and engine.completed
