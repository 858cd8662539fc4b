"""A Locust user that lives one person's session after another (closed model: a seat per user)."""

from __future__ import annotations

import contextlib
import time
from typing import ClassVar

import gevent
from locust import FastHttpUser, constant, task

from schoolsurge.clients.base import PlatformClient, PlatformError
from schoolsurge.clients.reference import ReferencePlatformClient
from schoolsurge.context import SurgeContext
from schoolsurge.scenario import Persona
from schoolsurge.steps import LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE

LOGIN_ATTEMPTS = 3
BACKOFF_BASE_S = 2.0  # scenario seconds; full jitter, doubled per attempt
BACKOFF_CAP_S = 60.0


class Person(FastHttpUser):
    abstract = True
    persona: ClassVar[Persona]
    client_class: ClassVar[type[PlatformClient]] = ReferencePlatformClient
    wait_time = constant(0)

    def on_start(self) -> None:
        self.surge: SurgeContext = self.environment.surge
        self.platform = self.client_class(self.client)

    @task
    def live_one_session(self) -> None:
        index = self.surge.next_account(self.persona)
        username, password = self.surge.roster.credentials(self.persona, index)
        self.client.cookiejar.clear()
        deadline = time.monotonic() + self.surge.session_length(self.persona)
        if not self.log_in(username, password):
            return
        try:
            self.session(deadline)
        except PlatformError:
            pass  # the failed request is in the statistics; this person stops here
        finally:
            with contextlib.suppress(PlatformError):
                self.platform.logout()

    def log_in(self, username: str, password: str) -> bool:
        """The whole SSO flow as the person feels it, retries included, recorded as one FLOW entry."""
        started = time.perf_counter()
        error: Exception | None = None
        for attempt in range(LOGIN_ATTEMPTS):
            try:
                self.platform.login(username, password)
                error = None
                break
            except PlatformError as failed:
                error = failed
                ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
                gevent.sleep(self.surge.replay.scenario_seconds(self.surge.rng.uniform(0, ceiling)))
        self.environment.events.request.fire(
            request_type=LOGIN_FLOW_TYPE,
            name=LOGIN_FLOW_NAME,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )
        return error is None

    def think(self, deadline: float) -> bool:
        """Pause like a person between two pages; False once the session is over."""
        pause = min(self.surge.think_time(self.persona), max(0.0, deadline - time.monotonic()))
        gevent.sleep(pause)
        return time.monotonic() < deadline

    def session(self, deadline: float) -> None:
        raise NotImplementedError
