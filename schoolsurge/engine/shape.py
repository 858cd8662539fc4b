"""The load shape sizes the agent pool; it never sets the arrival rate (the schedule does)."""

from __future__ import annotations

import math

from locust import LoadTestShape

from schoolsurge.engine.core import engine_of

POOL_HEADROOM = 1.3  # agents per expected concurrent person
POOL_SPARE = 5
LOOKAHEAD_S = 10.0  # size for the concurrency expected shortly, not just now
GROWTH_PER_WAITING = 2  # agents added per arrival found waiting for a free agent
DRAIN_LIMIT_S = 30.0  # after the window, how long sessions still running may take before the test ends
# A pool that must grow grows by at least this factor: every change is a spawn message to each worker, and a
# few larger steps cost the workers less than one small step a second (idle agents cost about 30 KB each).
POOL_GROWTH = 1.1


class PoolShape(LoadTestShape):
    """Each tick: the pool is the larger of (expected concurrency soon x headroom) and what waiting arrivals
    ask for. The pool only grows while the schedule runs, since stopping an agent would cut a session short."""

    pool = 0

    def reset_time(self) -> None:
        super().reset_time()
        self.pool = 0

    def tick(self) -> tuple[int, float] | None:
        engine = engine_of(self.runner.environment)
        context = engine.context
        run_s = self.get_run_time()
        status = engine.fleet_status()
        duration = context.replay.duration_s
        drained = status.loaded and status.remaining == 0 and status.active == 0
        if context.replay.is_sweep and (run_s >= duration or engine.sweep_stopped_after is not None):
            engine.completed = True  # a sweep ends at its last step or by its stop rule, not by draining
            return None
        if run_s >= duration and (drained or run_s >= duration + DRAIN_LIMIT_S):
            engine.completed = True  # the whole window was replayed: the run ends as planned
            return None
        expected = max(context.expected_concurrency(run_s), context.expected_concurrency(run_s + LOOKAHEAD_S))
        wanted = math.ceil(expected * POOL_HEADROOM) + POOL_SPARE
        if status.waiting:
            wanted = max(wanted, self.get_current_user_count() + GROWTH_PER_WAITING * status.waiting)
        if wanted > self.pool:
            self.pool = max(wanted, math.ceil(self.pool * POOL_GROWTH))
        spawn_rate = float(max(1, self.pool - self.get_current_user_count()))
        return self.pool, spawn_rate
