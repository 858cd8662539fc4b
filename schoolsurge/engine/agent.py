"""Locust users as agents of a pool: take the next scheduled person, wait for their time, live their session.

Locust ends a test by killing its users: a person's request still waiting for its answer then is recorded as
failed (`UnansweredRequest`, a timeout), so a target that never answers shows its unanswered requests, not
0 requests and 0 failures.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import gevent
from gevent import GreenletExit
from locust import FastHttpUser, constant, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser
from locust.runners import STATE_RUNNING, STATE_SPAWNING

from schoolsurge.clients.base import ClientContext, Person
from schoolsurge.engine.core import Engine, engine_of
from schoolsurge.engine.queue import Claim
from schoolsurge.engine.share import Share
from schoolsurge.errors import UnsafeTargetError
from schoolsurge.personas import behaviour_for
from schoolsurge.personas.base import ClientCrashed
from schoolsurge.rundir import Counter

IDLE_POLL_S = 1.0
log = logging.getLogger(__name__)


class PersonHost(FastHttpUser):
    """A Locust user that lives people's sessions through the run's platform client (`--client`, default: the
    embedded platform's): the engine's pooled agent and the closed-model user classes (persona_users.py)."""

    abstract = True
    wait_time = constant(0)
    closed_model: ClassVar[bool] = False  # True: a user takes its next person on once free (kinds/ picks ClosedRun)

    def __init__(self, environment: object) -> None:
        super().__init__(environment)
        self.engine: Engine = engine_of(self.environment)
        record_unanswered(self.engine.http.guard_session(self.client))

    def live_person(self, claim: Claim, share: Share) -> None:
        """Live the claimed person's session through the run's client: `share` counts them in a session, and
        their behaviour sees `share.sessions` (the share itself, or the closed model's view of it)."""
        self.client.cookiejar.clear()  # a new person: no cookie of the previous one
        context = self.engine.context
        arrival = claim.arrival
        client = context.client_class(
            ClientContext(
                http=self.client,
                settings=context.client_settings,
                person=Person(context.group(arrival.group).persona, arrival.group, arrival.person),
                open_connection=self._back_channel,
            )
        )
        behaviour = behaviour_for(context, share.sessions, client, claim, self._record_step)
        share.active_sessions += 1
        try:
            behaviour.live()
        except ClientCrashed as crash:
            # Recorded by the behaviour (a failed step); its traceback goes to Locust's exceptions, and the agent
            # takes its next person.
            self.environment.events.user_error.fire(
                user_instance=self, exception=crash.error, tb=crash.error.__traceback__
            )
        except UnsafeTargetError as refused:
            # The client asked for a URL the guard refuses: nothing was sent; the whole test stops, loudly.
            self.engine.refuse(str(refused))
            raise StopUser() from None
        finally:
            share.active_sessions -= 1

    def request_context(self) -> dict[str, Any]:
        """The context of the request events of a person's steps (Locust passes it to listeners)."""
        return {}

    def _back_channel(self) -> object:
        return record_unanswered(self.engine.http.new_connection(self.environment))

    def _record_step(self, kind: str, name: str, milliseconds: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=milliseconds,
            response_length=0,
            exception=error,
            context=self.request_context(),
        )


class UnansweredRequest(TimeoutError):
    """A request still waiting for its answer when its agent was stopped (the test ended): no answer came.
    A TimeoutError, so the ledger counts it as a timeout (failures_timeout)."""


def record_unanswered(session: FastHttpSession) -> FastHttpSession:
    """Record every request of the session that its agent's stop cuts short as failed (UnansweredRequest),
    in Locust's statistics and the ledger, at the moment of the stop."""
    send = session.request

    def request(method: str, url: str, name: str | None = None, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return send(method, url, name=name, **kwargs)
        except GreenletExit:
            waited_ms = (time.perf_counter() - started) * 1000
            session.request_event.fire(
                request_type=method,
                name=name or session.request_name or url,
                response_time=waited_ms,
                response_length=0,
                response=None,
                exception=UnansweredRequest("no answer yet when the test ended"),
                context={**(session.user.context() if session.user else {}), **kwargs.get("context", {})},
            )
            raise

    session.request = request  # type: ignore[method-assign]
    return session


class SurgeAgent(PersonHost):
    """One agent lives many people's sessions, one after another, each at its scheduled time; the pool of
    agents is sized by PoolShape."""

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
            try:
                gevent.sleep(early)
            except GreenletExit:
                # Stopped while waiting for this person's time: Locust moves agents to a worker that joined
                # late. The person is lost, counted, not silently missing (a test that stops loses no one).
                runner = self.environment.runner
                if runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
                    share.ledger.count(claim.arrival.at_s, Counter.LOST)
                raise
        share.queue.started(claim)
        self.live_person(claim, share)
