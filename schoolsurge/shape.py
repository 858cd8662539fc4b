"""A Locust load shape that holds as many users as the scenario has people logged in (closed model)."""

from __future__ import annotations

from locust import LoadTestShape

from schoolsurge.models.replay import Replay


class ScenarioShape(LoadTestShape):
    """Each tick sets the user count to the scenario's expected concurrent sessions at the current
    (compressed) clock, and ends the test once the window is replayed."""

    def replay(self) -> Replay:
        return self.runner.environment.surge.replay

    def tick(self) -> tuple[int, float] | None:
        replay = self.replay()
        run_s = self.get_run_time()
        if run_s >= replay.duration_s:
            return None
        target = replay.users_at(run_s)
        # Reach the target within the one-second tick: Locust applies ramps in one-second steps.
        spawn_rate = float(max(1, abs(target - self.get_current_user_count())))
        return target, spawn_rate
