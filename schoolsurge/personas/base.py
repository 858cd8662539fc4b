"""A person's session as they live it: log in, act, log out, asking again when the platform fails.

A session is a generator (`Behaviour.live`): it runs a person's steps up to their next pause (a think time, a
wait before retrying, a heartbeat's interval) and yields the pause in seconds; whoever runs it (the engine)
resumes it once the pause is over. A person who pauses holds no greenlet, only this generator's few frames.
Throwing GreenletExit into it at a pause ends the session as the end of the test does (see below).

Behaviour only: every platform interaction goes through a PlatformClient. Durations come from the scenario
in scenario seconds and are divided by the run's speed here. A failed login or page is tried again by the
group's retry policy (the impatient reload of pupils, the backoff of adults) until it works or the person's
patience runs out: failures add load, as the 2021 reconnection bubble did, instead of shrinking it. A step
the client does not offer is skipped and counted (`steps_not_supported`, and per step in client_steps.json),
never an error. A step that raises anything else in the client (a KeyError on a page it could not read) is a
bug of the client, not an answer of the platform: a failed step (a CRASH entry in Locust's statistics, counted
in the error ratio; `client_errors`, and `client_errors_login` while logging in: never got in, not served) that
ends the person's journey there, without retrying it (they still log out). A
person the end of the test finds in a step (waiting for its answer, or to ask again) is counted: `unfinished`
while logging in (never got in: not served), `unfinished_page` on a page.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable, Generator
from typing import ClassVar, TypeVar

from gevent import GreenletExit

from schoolsurge.clients.base import Dashboard, PlatformClient
from schoolsurge.clients.login_failures import login_failure_of
from schoolsurge.errors import StepFailed, StepNotSupported, UnsafeTargetError
from schoolsurge.models.behaviour import draw_action, draw_think_time, next_retry_delay, session_length
from schoolsurge.models.person_random import person_random
from schoolsurge.personas.interface import PersonClaim, RunContext, SessionShare, StepRecorder
from schoolsurge.rundir import (
    CLIENT_CRASH_TYPE,
    LOGIN_FLOW_NAME,
    LOGIN_FLOW_TYPE,
    LOGIN_STEP,
    LOGOUT_STEP,
    UNCLASSIFIED,
    Counter,
)
from schoolsurge.scenario import Group

Result = TypeVar("Result")
# A person's steps up to a value: yields each pause (seconds) they take on the way, returns the value.
Steps = Generator[float, None, Result]
log = logging.getLogger(__name__)
_unsupported_logged: set[str] = set()
_crashes_logged: set[tuple[str, str, str]] = set()


class GaveUp(Exception):
    """A person left because a step kept failing until their patience ran out."""

    def __init__(self, step: str, error: Exception) -> None:
        super().__init__(f"{step} kept failing ({error})")
        self.step = step


class ClientCrashed(Exception):
    """A client step raised something other than StepFailed or StepNotSupported: a bug of the client (a page it
    could not read...), not an answer of the platform. Recorded as the step's failure (Behaviour.live); the
    engine keeps its traceback (Locust's exceptions)."""

    def __init__(self, step: str, error: Exception) -> None:
        super().__init__(f"{described(error)} in {step}")
        self.step = step
        self.error = error


def described(error: BaseException) -> str:
    """An exception as the report names it: its type and message, `KeyError 'role'`."""
    message = str(error)
    return f"{type(error).__name__} {message}" if message else type(error).__name__


def innermost_frame(error: BaseException) -> str:
    """Where an exception was raised: `reference.py:43 in dashboard`."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"


class Behaviour:
    persona: ClassVar[str]

    def __init__(
        self,
        context: RunContext,
        share: SessionShare,
        platform: PlatformClient,
        claim: PersonClaim,
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
        self.rng = person_random(context.seed, self.group.name, self.person)
        self.speed = context.replay.speed
        self.deadline = 0.0

    @property
    def cohort_second(self) -> float:
        """Run second of this person's intended arrival: the ledger row their outcome is counted in."""
        return self.claim.arrival.at_s

    @property
    def window_end(self) -> float:
        """Unix time at which the replayed window ends."""
        started = self.share.start_unix if self.share.start_unix is not None else time.time()
        return started + self.context.replay.duration_s

    def session_ends_at(self, start: float) -> float:
        """A session of this person's length from `start`, cut at the end of the replayed window: a session
        still going then is left open, as it would be, rather than every such person logging out at once."""
        length = session_length(self.group, self.person, self.context.seed) / self.speed
        return min(start + length, self.window_end)

    def comes_for_virtual_class(self) -> bool:
        """Whether this person comes to hold or join a virtual class (none by default)."""
        return False

    def live(self) -> Steps[None]:
        """The person's session, yielding its pauses. ClientCrashed, once recorded, when a step raised in the
        client: their journey ends there (the engine keeps its traceback)."""
        if self.comes_for_virtual_class():  # counted as they start: whether they get in or not, they came for one
            self.share.ledger.count(self.cohort_second, Counter.CAME_FOR_VIRTUAL_CLASS, group=self.group.name)
        try:
            logged_in = yield from self.log_in()
        except ClientCrashed as crash:
            self._crashed(crash, logging_in=True)
            self._record_flow(crash.error)  # Locust's login entry: this person did not get in
            raise
        if not logged_in:
            return
        self.deadline = self.session_ends_at(time.time())
        try:
            yield from self.session()
        except GaveUp as gave_up:
            self.share.ledger.count(self.cohort_second, Counter.GAVE_UP_PAGE)
            self.record_step(LOGIN_FLOW_TYPE, f"gave up: {gave_up.step}", 0.0, gave_up)
        except ClientCrashed as crash:
            self._crashed(crash, logging_in=False)
            # The journey ends where it broke; the person still logs out (as one closes the ENT's tab), so the
            # platform is not left holding sessions nobody uses: its refusals would then be the client's doing.
            with contextlib.suppress(StepFailed, ClientCrashed):
                self._log_out(crashed=True)
            raise
        # Anything else raised (GreenletExit: the test is ending) leaves without a logout, which would hold the
        # stop up on a target that does not answer.
        if self.deadline < self.window_end:
            self._log_out(crashed=False)

    def _log_out(self, crashed: bool) -> None:
        """Log out; a logout that raises in the client is a crash of the client, recorded unless the journey
        already ended in one (then ClientCrashed is raised unrecorded)."""
        try:
            self.platform.logout()
        except StepFailed:
            pass
        except UnsafeTargetError:
            raise
        except Exception as error:  # noqa: BLE001 (whatever the client raises: its bug, recorded)
            crash = ClientCrashed(LOGOUT_STEP, error)
            if not crashed:
                self._crashed(crash, logging_in=False)
            raise crash from error

    def log_in(self) -> Steps[bool]:
        """Log in, retrying by the group's policy; time to log in counts from the intended arrival time."""
        username, password = self.context.credentials(self.group, self.person)
        ledger, second = self.share.ledger, self.cohort_second
        first_attempt = time.time()
        retries = 0
        try:
            while True:
                ledger.count(second, Counter.LOGIN_ATTEMPTS)
                if retries:
                    ledger.count(self.share.queue.run_seconds(), Counter.LOGIN_RETRIES)
                try:
                    self.platform.login(username, password)
                except StepFailed as error:
                    ledger.count(second, Counter.LOGINS_FAILED)
                    failure = login_failure_of(str(error)) or UNCLASSIFIED
                    self.share.client_steps.login_failed(failure, username, self.share.queue.run_seconds())
                    waited = (time.time() - first_attempt) * self.speed  # in scenario seconds, as patience is
                    delay = next_retry_delay(self.group.retry, retries, waited, self.rng)
                    if delay is None:
                        ledger.count(second, Counter.ABANDONED, group=self.group.name)
                        self._record_flow(error)
                        return False
                    retries += 1
                    yield delay / self.speed
                    continue
                except UnsafeTargetError:
                    raise
                except Exception as error:  # noqa: BLE001 (whatever the client raises: its bug, recorded)
                    raise ClientCrashed(LOGIN_STEP, error) from error
                ledger.count(second, Counter.LOGINS_SUCCEEDED, group=self.group.name)
                ledger.time_to_login(second, (time.time() - self.claim.intended_unix) * 1000)
                self._record_flow(None)
                return True
        except GreenletExit:
            self._count_unfinished(Counter.UNFINISHED)
            raise

    def _count_unfinished(self, counter: Counter) -> None:
        """A step (logging in, a page) with its retries: Locust ends a test by killing its agents, and a person
        it kills there never got what they asked for: counted (`counter`) in their cohort row. (Caught where it
        happens rather than by a context manager: a page is on every request's path.)"""
        self.share.ledger.count(self.cohort_second, counter, group=self.group.name)

    def _record_flow(self, error: Exception | None) -> None:
        self.record_step(LOGIN_FLOW_TYPE, LOGIN_FLOW_NAME, (time.time() - self.claim.intended_unix) * 1000, error)

    def step(self, call: Callable[..., Result], *args: object) -> Steps[Result | None]:
        """Take a step (a page, a virtual-class action) as a person does: while it fails, ask again by the
        group's retry policy; when patience runs out, leave (GaveUp). None when the client does not offer the
        step (skipped, counted, logged once). ClientCrashed when it raises anything else in the client."""
        first_attempt, retries = time.time(), 0
        step = getattr(call, "__name__", "step")  # PlatformClient's method: the step's name in client_steps.json
        try:
            while True:
                try:
                    return call(*args)
                except StepNotSupported as missing:
                    self._skipped(step, str(missing))
                    return None
                except StepFailed as error:
                    waited = (time.time() - first_attempt) * self.speed
                    delay = next_retry_delay(self.group.retry, retries, waited, self.rng)
                    if delay is None:
                        raise GaveUp(step, error) from None
                    self.share.ledger.count(self.share.queue.run_seconds(), Counter.PAGE_RETRIES)
                    retries += 1
                    yield delay / self.speed
                except UnsafeTargetError:
                    raise
                except Exception as error:  # noqa: BLE001 (whatever the client raises: its bug, recorded)
                    raise ClientCrashed(step, error) from error
        except GreenletExit:
            self._count_unfinished(Counter.UNFINISHED_PAGE)
            raise

    def _skipped(self, step: str, message: str) -> None:
        self.share.ledger.count(self.cohort_second, Counter.STEPS_NOT_SUPPORTED)
        self.share.client_steps.skipped(step)
        name = f"{type(self.platform).__name__}: {message}"
        if name not in _unsupported_logged:
            _unsupported_logged.add(name)
            log.warning("%s is not supported by this client; personas skip it", name)

    def _crashed(self, crash: ClientCrashed, logging_in: bool) -> None:
        """A step that raised in the client: a failed step in Locust's statistics (the error ratio counts it),
        in the person's cohort row, and in client_steps.json with its first example (the account, never the
        password); the first of each kind is logged with its traceback."""
        error, where = crash.error, innermost_frame(crash.error)
        ledger = self.share.ledger
        ledger.count(self.cohort_second, Counter.CLIENT_ERRORS)
        if logging_in:
            ledger.count(self.cohort_second, Counter.CLIENT_ERRORS_LOGIN)
        username, _ = self.context.credentials(self.group, self.person)
        self.share.client_steps.crashed(crash.step, described(error), where, username, self.share.queue.run_seconds())
        self.record_step(CLIENT_CRASH_TYPE, crash.step, 0.0, error)
        crash_key = (type(self.platform).__name__, crash.step, type(error).__name__)
        if crash_key not in _crashes_logged:
            _crashes_logged.add(crash_key)
            log.error(
                "%s.%s raised %s (at %s): a bug of the client; this person's journey ends there",
                crash_key[0],
                crash.step,
                described(error),
                where,
                exc_info=error,
            )

    def session_left(self) -> float:
        return self.deadline - time.time()

    def think(self) -> Steps[bool]:
        """Pause like a person between two pages; False once the session is over."""
        pause = min(draw_think_time(self.group, self.rng) / self.speed, max(0.0, self.session_left()))
        if pause > 0:
            yield pause
        return self.session_left() > 0

    def browse(self, child_id: int | None = None) -> Steps[None]:
        """One step chosen by the group's behaviour mix (actions listed per persona in scenario ACTIONS)."""
        action = draw_action(self.group, self.rng)
        if action == "homework":
            yield from self.step(self.platform.homework, child_id)
        elif action == "timetable":
            yield from self.step(self.platform.timetable, child_id)
        elif action == "messages":
            yield from self.step(self.platform.messages)
        elif action == "homework-submit":
            yield from self.submit_some_homework()
        elif action == "homework-post":
            yield from self.post_some_homework()
        else:
            yield from self.dashboard()

    def dashboard(self) -> Steps[Dashboard]:
        """The landing page, asked again while it fails (every persona starts there)."""
        return (yield from self.step(self.platform.dashboard)) or Dashboard()

    def submit_some_homework(self) -> Steps[None]:
        homework_list = (yield from self.step(self.platform.homework)) or []
        pending = [h for h in homework_list if not h.submitted]
        if pending:
            homework = pending[self.rng.randrange(len(pending))]
            yield from self.step(self.platform.submit_homework, homework.id, "Travail rendu.")

    def post_some_homework(self) -> Steps[None]:
        classes = yield from self.step(self.platform.classes)
        if classes:
            subject = self.rng.choice(("Mathématiques", "Français", "Histoire-géographie", "Anglais"))
            yield from self.step(
                self.platform.post_homework, self.rng.choice(classes), subject, "2021-04-08", "Exercices p. 42"
            )

    def browse_until_deadline(self) -> Steps[None]:
        while (yield from self.think()):
            yield from self.browse()

    def session(self) -> Steps[None]:
        raise NotImplementedError
        yield  # a generator, as the personas' sessions are
