"""The load shape sizes the agent pool; it never sets the arrival rate (the schedule does), and ends the test by
the run kind's stop rule (kinds/)."""

from __future__ import annotations

import math

from locust import LoadTestShape

from schoolsurge.engine.core import engine_of

# A person in a session spends most of it paused, holding no agent (stepper.py): an agent per ten people in a
# session leaves room for steps that take long, and the pool grows with what is found waiting for an agent.
AGENTS_PER_PERSON = 0.1
POOL_HEADROOM = 1.3  # on the expected concurrent people
POOL_SPARE = 5
LOOKAHEAD_S = 10.0  # size for the concurrency expected shortly, not just now
GROWTH_PER_WAITING = 2  # agents added per arrival found waiting for a free agent
# A pool that must grow grows by at least this factor: every change is a spawn message to each worker, and a
# few larger steps cost the workers less than one small step a second.
POOL_GROWTH = 1.1


class PoolShape(LoadTestShape):
    """Each tick: the pool is the larger of (expected concurrency soon x headroom x agents per person) and what
    work waiting for an agent (arrivals, people whose pause is over) asks for, up to one agent per person in a
    session and per arrival waiting. The pool only grows while the schedule runs, since stopping an agent in a
    step would cut a session short."""

    pool = 0

    def reset_time(self) -> None:
        super().reset_time()
        self.pool = 0

    def tick(self) -> tuple[int, float] | None:
        engine = engine_of(self.runner.environment)
        context = engine.context
        run_s = self.get_run_time()
        status = engine.fleet_status()
        if engine.kind.ended(run_s, status):
            engine.complete()  # the whole window (or sweep) was replayed: the run ends as planned
            return None
        expected = max(context.expected_concurrency(run_s), context.expected_concurrency(run_s + LOOKAHEAD_S))
        planned = math.ceil(expected * POOL_HEADROOM * AGENTS_PER_PERSON) + POOL_SPARE
        wanted = planned
        if status.waiting:
            wanted = max(wanted, self.get_current_user_count() + GROWTH_PER_WAITING * status.waiting)
        # Never more agents than could be busy at once: one per person in a session and per arrival waiting. Work
        # still waiting past that means the generator's CPU is short, not its agents: more would only add to it.
        useful = max(planned, status.active + status.waiting + POOL_SPARE)
        if wanted > self.pool and self.pool < useful:
            self.pool = min(max(wanted, math.ceil(self.pool * POOL_GROWTH)), useful)
        spawn_rate = float(max(1, self.pool - self.get_current_user_count()))
        return self.pool, spawn_rate
