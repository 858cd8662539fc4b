"""Locust users as agents of a pool: each takes the work due next (a scheduled arrival whose time has come, a
person whose pause is over) and runs that person's session up to their next pause (stepper.py); the
closed-model persona users (persona_users.py) live one person's session at a time, pausing themselves.

Locust ends a test by killing its users: a person's request still waiting for its answer then is recorded as
failed (`UnansweredRequest`, a timeout), so a target that never answers shows its unanswered requests, not
0 requests and 0 failures.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import gevent
from gevent import GreenletExit
from locust import FastHttpUser, constant, task
from locust.contrib.fasthttp import FastHttpSession
from locust.exception import StopUser

from schoolsurge.clients.base import ClientContext, Person
from schoolsurge.engine.cookies import with_cached_cookies
from schoolsurge.engine.core import Engine, engine_of
from schoolsurge.engine.queue import Claim
from schoolsurge.engine.share import Share
from schoolsurge.engine.stepper import PersonInSession
from schoolsurge.errors import UnsafeTargetError
from schoolsurge.personas import behaviour_for
from schoolsurge.personas.base import ClientCrashed

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
        record_unanswered(self.engine.http.guard_session(with_cached_cookies(self.client)))

    def live_person(self, claim: Claim, share: Share) -> None:
        """Live the claimed person's whole session in this user, pausing it here (the closed model's users), with
        the user's HTTP session, cleared of the previous person's cookies."""
        self.client.cookiejar.clear()
        steps = self.begin_person(claim, share, self.client)
        try:
            while (pause := self.run_until_pause(steps)) is not None:
                try:
                    gevent.sleep(pause)
                except GreenletExit as stop:  # the test ends: the person is stopped where they are
                    with contextlib.suppress(StopIteration):
                        steps.throw(stop)  # type: ignore[attr-defined]
                    raise
        finally:
            share.active_sessions -= 1

    def begin_person(self, claim: Claim, share: Share, http: FastHttpSession) -> Iterator[float]:
        """The claimed person's session, to run through the run's client with their own HTTP session (no cookie
        of anyone before them): `share` counts them in a session, and their behaviour sees `share.sessions` (the
        share itself, or the closed model's view of it). Yields each pause they take."""
        context = self.engine.context
        arrival = claim.arrival
        client = context.client_class(
            ClientContext(
                http=http,
                settings=context.client_settings,
                person=Person(context.group(arrival.group).persona, arrival.group, arrival.person),
                open_connection=self._back_channel,
            )
        )
        behaviour = behaviour_for(context, share.sessions, client, claim, self._record_step)
        share.active_sessions += 1
        return behaviour.live()

    def run_until_pause(self, steps: Iterator[float]) -> float | None:
        """Run a person's session up to their next pause: its length in seconds, or None when the session is over
        (ended by a crash of the client too, recorded by the behaviour). Anything else raised (GreenletExit: the
        test is ending) ends it too, raised on."""
        try:
            return next(steps)
        except StopIteration:
            return None
        except ClientCrashed as crash:
            # Recorded by the behaviour (a failed step); its traceback goes to Locust's exceptions, and the agent
            # takes its next work.
            self.environment.events.user_error.fire(
                user_instance=self, exception=crash.error, tb=crash.error.__traceback__
            )
            return None
        except UnsafeTargetError as refused:
            # The client asked for a URL the guard refuses: nothing was sent; the whole test stops, loudly.
            self.engine.refuse(str(refused))
            raise StopUser() from None

    def new_http_session(self) -> FastHttpSession:
        """A person's HTTP session as a FastHttpUser's own (this class's settings), guarded, its requests cut short
        by a stop recorded."""
        session = FastHttpSession(
            base_url=self.host,
            request_event=self.environment.events.request,
            network_timeout=self.network_timeout,
            connection_timeout=self.connection_timeout,
            max_redirects=self.max_redirects,
            max_retries=self.max_retries,
            insecure=self.insecure,
            concurrency=self.concurrency,
            user=None,
            client_pool=self.client_pool,
            ssl_context_factory=self.ssl_context_factory,
            headers=self.default_headers,
            proxy_host=self.proxy_host,
            proxy_port=self.proxy_port,
        )
        return record_unanswered(self.engine.http.guard_session(with_cached_cookies(session)))

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
    """An agent of the pool sized by PoolShape: it takes the work due next on its process (stepper.py), a
    scheduled arrival whose time has come or a person whose pause is over, and runs that person's session up to
    their next pause."""

    @task
    def run_steps(self) -> None:
        """Take the work due next, run it up to the person's next pause, and again, for the whole test (a new
        test has new agents)."""
        share = self.engine.share
        if not share.queue.wait_loaded(timeout=IDLE_POLL_S):
            return
        stepper = share.stepper
        stepper.start()
        while True:
            work = stepper.take()
            if isinstance(work, Claim):
                share.queue.started(work)
                http = stepper.http_session(self.new_http_session)
                person = PersonInSession(self.begin_person(work, share, http), http)
            else:
                person = work
            try:
                pause = self.run_until_pause(person.steps)
            except BaseException:  # stopped mid-step: its HTTP session is not given to anyone else
                stepper.ended(person, reuse_http=False)
                raise
            if pause is None:
                stepper.ended(person)
            else:
                stepper.park(person, pause)
