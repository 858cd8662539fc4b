"""Locust users as agents of a pool: take the next scheduled person, wait for their time, live their session."""

from __future__ import annotations

import logging
import time

import gevent
from locust import FastHttpUser, constant, task
from locust.exception import StopUser

from schoolsurge.clients.base import ClientContext, Person
from schoolsurge.engine.core import Engine, engine_of
from schoolsurge.engine.http import guard_session, new_connection
from schoolsurge.errors import UnsafeTargetError
from schoolsurge.personas import behaviour_for

IDLE_POLL_S = 1.0
log = logging.getLogger(__name__)


class SurgeAgent(FastHttpUser):
    """One agent lives many people's sessions, one after another; the pool of agents is sized by PoolShape.
    The platform client is the run's `--client` (default: the embedded platform's)."""

    wait_time = constant(0)

    def __init__(self, environment: object) -> None:
        super().__init__(environment)
        self.engine: Engine = engine_of(self.environment)
        guard_session(self.client, self.engine.guard)

    @task
    def live_next_arrival(self) -> None:
        engine = self.engine
        share = engine.share
        if not share.queue.wait_loaded(timeout=IDLE_POLL_S):
            return
        claim = share.queue.claim()
        if claim is None:
            gevent.sleep(IDLE_POLL_S)  # this process's part is exhausted; idle until the test ends
            return
        early = claim.intended_unix - time.time()
        if early > 0:
            gevent.sleep(early)
        share.queue.started(claim)
        self.client.cookiejar.clear()  # a new person: no cookie of the previous one
        context = engine.context
        arrival = claim.arrival
        client = context.client_class(
            ClientContext(
                http=self.client,
                settings=context.client_settings,
                person=Person(context.group(arrival.group).persona, arrival.group, arrival.person),
                open_connection=self._back_channel,
            )
        )
        behaviour = behaviour_for(context, share, client, claim, self._record_step)
        share.active_sessions += 1
        try:
            behaviour.live()
        except UnsafeTargetError as refused:
            # The client asked for a URL the guard refuses: nothing was sent; the whole test stops, loudly.
            log.error("%s; stopping the test", refused)
            gevent.spawn(self.environment.runner.quit)
            raise StopUser() from None
        finally:
            share.active_sessions -= 1

    def _back_channel(self) -> object:
        return new_connection(self.environment, self.engine.guard)

    def _record_step(self, kind: str, name: str, milliseconds: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=kind, name=name, response_time=milliseconds, response_length=0, exception=error, context={}
        )
