"""The closed model: the scenario's personas as Locust user classes (persona_users.py), each taking on its next
person once the previous session is over; the morning's clock, but no schedule (closed.py)."""

from __future__ import annotations

from typing import Any

from schoolsurge.engine.closed import ClosedShare
from schoolsurge.engine.kinds.morning import MorningRun
from schoolsurge.engine.share import Share
from schoolsurge.rundir import RunKind


class ClosedRun(MorningRun):
    name = RunKind.CLOSED

    def new_share(self) -> Share:
        context = self.engine.context
        return ClosedShare(context.replay, context.parameters)

    def test_stopped(self) -> None:
        self.engine.complete()  # however long it ran: a closed-model test runs until it is stopped

    def manifest_fields(self) -> dict[str, Any]:
        return {**super().manifest_fields(), "arrival_model": "closed"}
