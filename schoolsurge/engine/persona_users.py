"""Students, teachers and parents as Locust user classes: the CLOSED model.

    locust -f locustfiles/personas.py -u 30 -r 5 -H URL [--scenario S] [--speed V] [Student Teacher Parent]

Each user lives one person's session per iteration (log in, act, log out), then takes on the next person of
its persona: it sends its next login only once the previous session is over. That is Locust's usual closed
loop, with its coordinated omission: a platform that slows down receives fewer logins, so its latency looks
better than people would feel it. Rehearse the surge itself with the open-arrival engine (`schoolsurge run`,
`locustfiles/surge.py`); use these for ordinary Locust work: -u/-r, the web UI's --class-picker, tags, a
LoadTestShape of your own, master and workers.

What a pupil, teacher or parent does is the engine's personas (`behaviour_for` and the Behaviour classes),
through the run's `--client`, with the seeded accounts (or `--accounts`), the scenario's behaviour mix, think
times, retries and virtual classes, and its session lengths at `--speed` (default: the scenario's speed), so a
teacher's 90-minute lesson lasts 75 s at speed 72. Weights are each persona's share of the scenario's logins;
a persona with several groups (parents) takes each person from a group by the groups' shares. The run
directory is the engine's, as for any run: Locust's CSV files, sessions.csv (where a person is scheduled and
started when a user takes them on), the report. Person numbering and accounts: `schoolsurge/engine/closed.py`.

The engine runs the closed model (kinds/closed.py `ClosedRun`: its shares, its end, its manifest) when it finds
these classes among the run's user classes. Importing this module adds one init listener, which sets the classes'
weights and keeps those the run can spawn; it reads the engine, so import `schoolsurge.locustfile` first (its
options, run context, engine and run directory; its init installs the engine): locustfiles/personas.py does.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, ClassVar

from locust import events, tag, task
from locust.env import Environment
from locust.exception import StopUser

from schoolsurge.engine.agent import PersonHost, SurgeAgent
from schoolsurge.engine.closed import persona_shares
from schoolsurge.engine.core import EngineNotInstalledError, engine_of

__all__ = ["PERSONA_USERS", "Parent", "PersonaUser", "Student", "Teacher"]

IDLE_POLL_S = 1.0
log = logging.getLogger(__name__)


class PersonaUser(PersonHost):
    """A Locust user that lives one person's session per iteration, then the next person of its persona
    (CLOSED model: the next login waits for the previous session to end; see the module's docstring)."""

    abstract = True
    closed_model = True
    persona: ClassVar[str]

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._person: dict[str, Any] = {}

    def request_context(self) -> dict[str, Any]:
        """Every request event of a session carries who it was for: {"persona", "group", "person"}."""
        return self._person

    def live_next_person(self) -> None:
        share = self.engine.share
        if not share.queue.wait_loaded(timeout=IDLE_POLL_S):  # a worker waiting for the master's start
            return
        try:
            claim = share.take_on(self.persona)
        except LookupError as missing:
            log.error("%s: %s users stop", missing, type(self).__name__)
            raise StopUser() from None
        arrival = claim.arrival
        self._person = {"persona": self.persona, "group": arrival.group, "person": arrival.person}
        self.live_person(claim, share)


class Student(PersonaUser):
    """A secondary pupil (CLOSED model): dashboard, their class's virtual class if they came for it and a
    teacher opens it within their patience, else homework, timetable and messages by the scenario's mix."""

    persona = "student"

    @tag("student")
    @task
    def live_a_session(self) -> None:
        self.live_next_person()


class Teacher(PersonaUser):
    """A teacher (CLOSED model): the scenario's share of them opens a virtual class for their first class and
    holds it; the others read and browse."""

    persona = "teacher"

    @tag("teacher")
    @task
    def live_a_session(self) -> None:
        self.live_next_person()


class Parent(PersonaUser):
    """A parent (CLOSED model): one account for all their children; each child's timetable and homework."""

    persona = "parent"

    @tag("parent")
    @task
    def live_a_session(self) -> None:
        self.live_next_person()


PERSONA_USERS: tuple[type[PersonaUser], ...] = (Student, Teacher, Parent)


def _fail(message: str) -> None:
    print(f"schoolsurge: {message}", file=sys.stderr)
    sys.exit(2)


@events.init.add_listener  # after schoolsurge.locustfile's own, which installed the engine
def on_init(environment: Environment, **_: Any) -> None:
    """A run of persona users: weights from the scenario; the engine runs them as the closed model."""
    options = environment.parsed_options
    available = list((environment.available_user_classes or {}).values()) or list(environment.user_classes)
    if options is None or not any(issubclass(cls, PersonaUser) for cls in available):
        return  # a library user sets the weights and classes itself; a locustfile without persona users
    if any(issubclass(cls, SurgeAgent) for cls in available):
        _fail(
            "the open-arrival agents (SurgeAgent) and the closed-model persona users cannot share a run: "
            "use locustfiles/surge.py or locustfiles/personas.py"
        )
    try:
        engine = engine_of(environment)
    except EngineNotInstalledError:
        _fail("the persona users need the engine: import schoolsurge.locustfile before them (locustfiles/personas.py)")
    refused = engine.kind.persona_users_refused
    if refused is not None:
        _fail(refused)
    context = engine.context
    shares = persona_shares(context.scenario)
    for user_class in PERSONA_USERS:
        user_class.weight = round(shares.get(user_class.persona, 0.0), 4)
    kept = [cls for cls in environment.user_classes if _runs(cls, shares, options)]
    if environment.user_classes and not kept:
        _fail(f"no persona user class left to run with scenario {context.scenario.name!r} and these tags")
    environment.user_classes[:] = kept


def _runs(user_class: type, shares: dict[str, float], options: Any) -> bool:
    """Whether a user class takes part: a persona user whose persona the scenario has (with logins) and whose
    task --tags/--exclude-tags keep (Locust would otherwise spawn it with no task)."""
    if not issubclass(user_class, PersonaUser):
        return True
    persona = user_class.persona
    if not shares.get(persona):
        log.warning("the scenario has no %s logins: %s users are not spawned", persona, user_class.__name__)
        return False
    tags, excluded = getattr(options, "tags", None), getattr(options, "exclude_tags", None)
    return (not tags or persona in tags) and not (excluded and persona in excluded)
