"""Locust users as agents of a pool: take the next scheduled person, wait for their time, live their session."""

from __future__ import annotations

import time
from typing import ClassVar

import gevent
from locust import FastHttpUser, constant, task

from schoolsurge.clients.base import PlatformClient
from schoolsurge.clients.reference import ReferencePlatformClient
from schoolsurge.personas import behaviour_for

IDLE_POLL_S = 1.0


class SurgeAgent(FastHttpUser):
    """One agent lives many people's sessions, one after another; the pool of agents is sized by PoolShape.
    To aim the personas at another platform, set `client_class` to your PlatformClient subclass."""

    wait_time = constant(0)
    client_class: ClassVar[type[PlatformClient]] = ReferencePlatformClient

    @task
    def live_next_arrival(self) -> None:
        engine = self.environment.surge_hooks.engine
        if not engine.queue.wait_loaded(timeout=IDLE_POLL_S):
            return
        claim = engine.queue.claim()
        if claim is None:
            gevent.sleep(IDLE_POLL_S)  # this process's part is exhausted; idle until the test ends
            return
        early = claim.intended_unix - time.time()
        if early > 0:
            gevent.sleep(early)
        engine.queue.started(claim)
        self.client.cookiejar.clear()  # a new person: no cookie of the previous one
        behaviour = behaviour_for(
            self.environment.surge, engine, self.client_class(self.client), claim, self._record_step
        )
        engine.active_sessions += 1
        try:
            behaviour.live()
        finally:
            engine.active_sessions -= 1

    def _record_step(self, kind: str, name: str, milliseconds: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=kind, name=name, response_time=milliseconds, response_length=0, exception=error, context={}
        )
