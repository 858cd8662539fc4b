"""The contract between the personas and a platform: the steps of a person's session, independent of HTTP.

Personas decide what a pupil, teacher or parent does and when; a `PlatformClient` carries each step out with
one platform's HTTP calls. To aim the same people at another platform, write one subclass.

What you must write (abstract): `login`, `logout` and `dashboard` (one page read). That is enough for a
target that only has a single sign-on and one page: every persona logs in, reads, thinks, reads again, leaves.

What you may write: every other step (timetable, homework, messages, virtual classes, a parent's children...).
A step you leave out raises `StepNotSupported`; the persona then skips it (counted in sessions.csv's
`steps_not_supported`, once per skip, and logged once per step), never counted as an error. And
`option_types`, the `--client-option KEY=VALUE` keys your client reads, each with what parses its text (`str`,
`int`, `float` or a function of yours raising ValueError): `context.settings.options[KEY]` is then the parsed
value. Any other key, or a value its parser refuses, is refused before the run starts (exit 2).

How a step reports: make the requests on `self.http` (a Locust FastHttpSession; relative paths go to the
target, absolute URLs and redirects pass the loopback guard too; a body over `max_body_bytes` is not read, the
request fails and the client sees an empty body: docs/engine.md), name each request by step, never by id
(`name="homework"`), so statistics stay one row per step, and when the platform fails the step, mark the
response failed (`catch_response=True`, `response.failure(...)`) and raise `StepFailed`. Prefix names with
`context.step_prefix` (bots use it, so their requests are counted apart from people's).

How a client is built: `YourClient(context)`, one per person's session, with a `ClientContext`: the HTTP
session, the settings (`--sso`, `--cas-url`, `--oidc-issuer`, `--client-option KEY=VALUE`...), who the person
is, and a way to open a second connection (back-channel calls, such as a ticket validation server to server).
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from schoolsurge.errors import StepFailed, StepNotSupported

if TYPE_CHECKING:
    from locust.contrib.fasthttp import FastHttpSession

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ClientContext",
    "ClientSettings",
    "Dashboard",
    "Homework",
    "Person",
    "PlatformClient",
    "StepFailed",
    "StepNotSupported",
]

DEFAULT_MAX_BODY_BYTES = 10 << 20  # --max-body-bytes: a login page is tens of KB, a JSON page a few KB
MIN_BODY_BYTES = 1024  # a smaller limit would fail every page


def body_bytes(text: str) -> int:
    """--max-body-bytes (argparse type): a whole number of bytes, at least MIN_BODY_BYTES."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of bytes, e.g. {DEFAULT_MAX_BODY_BYTES}, got {text!r}"
        ) from None
    if value < MIN_BODY_BYTES:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_BODY_BYTES} bytes, got {value}")
    return value


@dataclass(frozen=True)
class ClientSettings:
    """How a client reaches its platform: its single sign-on protocol, the knobs of CAS and of OpenID Connect,
    the largest body a response may have, and free-form options for your own client. Empty URLs mean "on the
    target": the CAS base is TARGET/cas, the service TARGET/ent/auth/callback, the OpenID Provider TARGET/oidc
    (the embedded platform's)."""

    sso: str = "cas"  # cas | oidc: the platform's single sign-on; picks the default client (options.py)
    cas_url: str = ""
    service_url: str = ""
    home_url: str = ""  # the page CasClient's or OidcClient's dashboard() reads
    username_field: str = ""  # the CAS login form's; empty: read from the form
    password_field: str = ""
    logout_method: str = "GET"  # CAS 3.0 /logout is a GET; some deployments want a POST
    validation: str = "browser"  # browser | back-channel | back-channel-cas2 | none: who redeems the ticket (CasClient)
    # OpenID Connect (OidcClient): empty values are the embedded platform's, or read from the login form.
    oidc_issuer: str = ""  # metadata at ISSUER/.well-known/openid-configuration (default TARGET/oidc)
    oidc_login_url: str = ""  # where the service starts a login (default TARGET/ent/auth/oidc/login)
    oidc_client_id: str = ""  # back channel: the client's own id (default: the embedded platform's app)
    oidc_client_secret: str = ""  # back channel: empty for a public client (PKCE alone)
    oidc_redirect_uri: str = ""  # back channel: the client's registered redirect URI
    oidc_scopes: str = "openid profile"
    oidc_username_field: str = ""  # the login form's; empty: read from the form
    oidc_password_field: str = ""
    oidc_token_auth: str = ""  # client_secret_basic | client_secret_post | none (default: basic with a secret)
    oidc_validation: str = "browser"  # browser | back-channel: who redeems the code (see OidcClient)
    journey_map: str = ""  # WebClient's pages: a journey map file, or a shipped map's name (clients/journey.py)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # a larger response body is not read: a failed request
    options: Mapping[str, Any] = field(default_factory=dict)  # --client-option KEY=VALUE, parsed (option_types)


@dataclass(frozen=True)
class Person:
    """Who this session is for."""

    role: str  # student, teacher or parent (the scenario group's persona)
    group: str  # the scenario group's name
    index: int  # the person's number within the group's people in this run


@dataclass(frozen=True)
class ClientContext:
    http: FastHttpSession  # this person's connection to the target (cookies cleared between people)
    settings: ClientSettings = ClientSettings()
    person: Person | None = None  # None for the attack incident's bots
    open_connection: Callable[[], FastHttpSession] | None = None  # a second connection, for back-channel calls
    step_prefix: str = ""  # prefix of every request name (bots: "bot ")


@dataclass(frozen=True)
class Dashboard:
    """What a person sees on landing. Only `role` is always known; the rest is what the platform shows."""

    role: str = ""
    class_ids: list[int] = field(default_factory=list)
    child_ids: list[int] = field(default_factory=list)
    open_virtual_classes: dict[int, int] = field(default_factory=dict)
    """Open virtual class id per class id."""
    waiting_virtual_classes: dict[int, int] = field(default_factory=dict)
    """Virtual class id per class id, for classes created but not opened yet (joining puts you in the waiting room)."""
    selected_child: int | None = None
    """Parents: the child whose timetable and homework are shown when no child is named."""


@dataclass(frozen=True)
class Homework:
    id: int
    class_id: int
    subject: str
    due: str
    submitted: bool = False


class PlatformClient(ABC):
    """One person's conversation with a platform. Subclass it: write login, logout and dashboard; write any
    optional step your platform offers. Each step raises StepFailed when the platform fails it."""

    reads_settings: ClassVar[frozenset[str]] = frozenset()
    """The page settings (clients/options.py PAGE_SETTINGS: `home_url`, `journey_map`) this client reads; one given
    to a client that does not read it is refused before the run, never silently ignored."""
    option_types: ClassVar[Mapping[str, Callable[[str], Any]]] = {}
    """The --client-option keys this client reads, each with what parses its value (e.g. {"tenant": str,
    "timeout_s": float}); none by default."""

    def __init__(self, context: ClientContext) -> None:
        self.context = context
        self.http = context.http

    @property
    def role(self) -> str:
        return self.context.person.role if self.context.person else ""

    def name(self, step: str) -> str:
        """The statistics name of a step (with the bots' prefix when this client is a bot's)."""
        return self.context.step_prefix + step

    # ---- what every persona needs ---------------------------------------------------------------------

    @abstractmethod
    def login(self, username: str, password: str) -> None:
        """Log in through the platform's single sign-on; StepFailed if it refuses or fails."""

    @abstractmethod
    def logout(self) -> None:
        """End the person's session."""

    @abstractmethod
    def dashboard(self) -> Dashboard:
        """The page a person lands on (one page read)."""

    # ---- optional steps: personas skip those a client does not write ------------------------------------

    def timetable(self, child_id: int | None = None) -> None:
        """The week's timetable (of a parent's child when child_id is given)."""
        raise StepNotSupported("timetable")

    def homework(self, child_id: int | None = None) -> list[Homework]:
        """The homework list (of a parent's child when child_id is given)."""
        raise StepNotSupported("homework")

    def messages(self) -> int:
        """Read the inbox; returns the number of messages."""
        raise StepNotSupported("messages")

    def submit_homework(self, homework_id: int, text: str) -> int:
        """Pupils: hand in homework (a durable write); returns the submission id."""
        raise StepNotSupported("homework: submit")

    def classes(self) -> list[int]:
        """Teachers: ids of the classes they teach."""
        raise StepNotSupported("classes")

    def post_homework(self, class_id: int, subject: str, due: str, text: str) -> int:
        """Teachers: post homework for a class (due: YYYY-MM-DD); returns its id."""
        raise StepNotSupported("homework: post")

    def schedule_virtual_class(self, class_id: int, title: str) -> int:
        """Teachers: create a virtual class whose waiting room pupils can enter; returns its id."""
        raise StepNotSupported("virtual class: create")

    def open_virtual_class(self, virtual_class_id: int) -> None:
        """Teachers: open a scheduled virtual class; pupils waiting are let in."""
        raise StepNotSupported("virtual class: open")

    def join_virtual_class(self, virtual_class_id: int) -> str:
        """Pupils: join; returns "joined", "waiting" while the teacher has not opened it, or "closed" once the
        teacher has ended it."""
        raise StepNotSupported("virtual class: join")

    def heartbeat(self, virtual_class_id: int) -> str:
        """Still here; returns the virtual class's status ("scheduled" while waiting, "open", or "closed" once
        the teacher has ended it)."""
        raise StepNotSupported("virtual class: heartbeat")

    def leave_virtual_class(self, virtual_class_id: int) -> None:
        raise StepNotSupported("virtual class: leave")

    def participants(self, virtual_class_id: int) -> int:
        """Teachers: how many pupils are in the class or its waiting room."""
        raise StepNotSupported("virtual class: participants")

    def children(self) -> list[int]:
        """Parents: roster indices of their children."""
        raise StepNotSupported("children")

    def switch_child(self, child_id: int) -> None:
        """Parents: make another of their children the one shown by default."""
        raise StepNotSupported("children: switch")
