"""A person's session as they live it: log in (retrying as their group does), act, log out.

Behaviour only: every platform interaction goes through a PlatformClient. Durations come from the scenario
in scenario seconds and are divided by the run's speed here. A step the client does not offer is skipped and
counted (`steps_not_supported`), never an error.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import ClassVar, TypeVar

import gevent

from schoolsurge.clients.base import PlatformClient
from schoolsurge.engine.context import SurgeContext
from schoolsurge.engine.queue import Claim
from schoolsurge.engine.share import ProcessShare
from schoolsurge.errors import StepFailed, StepNotSupported
from schoolsurge.models.behaviour import draw_action, draw_session_length, draw_think_time, next_retry_delay
from schoolsurge.rundir import LOGIN_FLOW_NAME, LOGIN_FLOW_TYPE, Counter
from schoolsurge.scenario import Group

# (type, name, milliseconds, error or None): how a behaviour reports a step that spans several requests.
StepRecorder = Callable[[str, str, float, Exception | None], None]
Result = TypeVar("Result")
log = logging.getLogger(__name__)
_unsupported_logged: set[str] = set()


class Behaviour:
    persona: ClassVar[str]

    def __init__(
        self,
        context: SurgeContext,
        share: ProcessShare,
        platform: PlatformClient,
        claim: Claim,
        record_step: StepRecorder,
    ) -> None:
        self.context = context
        self.share = share
        self.platform = platform
        self.claim = claim
        self.record_step = record_step
        self.group: Group = context.group(claim.arrival.group)
        self.person = claim.arrival.person
        # Seeded per person: the same person makes the same choices in any process split.
        self.rng = random.Random(f"{context.seed}:{self.group.name}:{self.person}")
        self.speed = context.replay.speed
        self.deadline = 0.0

    @property
    def cohort_second(self) -> float:
        """Run second of this person's intended arrival: the ledger row their outcome is counted in."""
        return self.claim.arrival.at_s

    def live(self) -> None:
        if not self.log_in():
            return
        session_end = time.time() + draw_session_length(self.group, self.rng) / self.speed
        started = self.share.start_unix if self.share.start_unix is not None else time.time()
        window_end = started + self.context.replay.duration_s
        # The run stops at the end of the replayed window: a session still going then is left open, as it
        # would be, rather than every such person logging out in the same second.
        self.deadline = min(session_end, window_end)
        try:
            self.session()
        except StepFailed:
            pass  # the failed request is in Locust's statistics; this person stops here
        finally:
            if session_end <= window_end:
                with contextlib.suppress(StepFailed):
                    self.platform.logout()

    def log_in(self) -> bool:
        """Log in, retrying by the group's policy; time to log in counts from the intended arrival time."""
        username, password = self.context.credentials(self.group, self.person)
        ledger, second = self.share.ledger, self.cohort_second
        first_attempt = time.time()
        retries = 0
        while True:
            ledger.count(second, Counter.LOGIN_ATTEMPTS)
            try:
                self.platform.login(username, password)
            except StepFailed as error:
                ledger.count(second, Counter.LOGINS_FAILED)
                waited = (time.time() - first_attempt) * self.speed  # in scenario seconds, as patience is
                delay = next_retry_delay(self.group.retry, retries, waited, self.rng)
                if delay is None:
                    ledger.count(second, Counter.ABANDONED)
                    self._record_flow(error)
                    return False
                retries += 1
                gevent.sleep(delay / self.speed)
                continue
            ledger.count(second, Counter.LOGINS_SUCCEEDED)
            ledger.time_to_login(second, (time.time() - self.claim.intended_unix) * 1000)
            self._record_flow(None)
            return True

    def _record_flow(self, error: Exception | None) -> None:
        self.record_step(LOGIN_FLOW_TYPE, LOGIN_FLOW_NAME, (time.time() - self.claim.intended_unix) * 1000, error)

    def optional(self, step: Callable[..., Result], *args: object) -> Result | None:
        """Take a step the client may not offer; None (counted and logged once) when it does not."""
        try:
            return step(*args)
        except StepNotSupported as missing:
            self.share.ledger.count(self.cohort_second, Counter.STEPS_NOT_SUPPORTED)
            name = f"{type(self.platform).__name__}: {missing}"
            if name not in _unsupported_logged:
                _unsupported_logged.add(name)
                log.warning("%s is not supported by this client; personas skip it", name)
            return None

    def session_left(self) -> float:
        return self.deadline - time.time()

    def think(self) -> bool:
        """Pause like a person between two pages; False once the session is over."""
        pause = min(draw_think_time(self.group, self.rng) / self.speed, max(0.0, self.session_left()))
        gevent.sleep(pause)
        return self.session_left() > 0

    def browse(self, child_id: int | None = None) -> None:
        """One step chosen by the group's behaviour mix (actions listed per persona in scenario ACTIONS)."""
        action = draw_action(self.group, self.rng)
        if action == "homework":
            self.optional(self.platform.homework, child_id)
        elif action == "timetable":
            self.optional(self.platform.timetable, child_id)
        elif action == "messages":
            self.optional(self.platform.messages)
        elif action == "homework-submit":
            self.submit_some_homework()
        elif action == "homework-post":
            self.post_some_homework()
        else:
            self.platform.dashboard()

    def submit_some_homework(self) -> None:
        pending = [h for h in self.optional(self.platform.homework) or [] if not h.submitted]
        if pending:
            homework = pending[self.rng.randrange(len(pending))]
            self.optional(self.platform.submit_homework, homework.id, "Travail rendu.")

    def post_some_homework(self) -> None:
        classes = self.optional(self.platform.classes)
        if classes:
            subject = self.rng.choice(("Mathématiques", "Français", "Histoire-géographie", "Anglais"))
            self.optional(
                self.platform.post_homework, self.rng.choice(classes), subject, "2021-04-08", "Exercices p. 42"
            )

    def browse_until_deadline(self) -> None:
        while self.think():
            self.browse()

    def session(self) -> None:
        raise NotImplementedError
