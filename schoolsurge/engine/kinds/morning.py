"""A morning: the scenario's window replayed as open arrivals on its schedule (`schoolsurge run`)."""

from __future__ import annotations

from typing import Any

from schoolsurge.engine.kinds.base import Kind
from schoolsurge.engine.share import FleetStatus
from schoolsurge.rundir import RunKind
from schoolsurge.scenario import seconds_to_clock


class MorningRun(Kind):
    name = RunKind.MORNING

    def ended(self, run_s: float, status: FleetStatus) -> bool:
        """The whole window was replayed and the last sessions are over (or the drain limit passed after it)."""
        duration = self.engine.context.replay.duration_s
        drained = status.loaded and status.remaining == 0 and status.active == 0
        return run_s >= duration and (drained or run_s >= duration + self.engine.context.spec.drain_limit_s)

    def manifest_fields(self) -> dict[str, Any]:
        return super().manifest_fields() | {"drain_limit_s": self.engine.context.spec.drain_limit_s}

    def progress_clock(self, run_s: float) -> str:
        return seconds_to_clock(self.engine.context.replay.clock_at(run_s))
