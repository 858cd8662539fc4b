"""Login failures say why: each failed login of CasClient against the embedded platform's CAS server is one
class of login_failures.py, named at the start of the failure message Locust records and of the StepFailed
the persona sees, with the account's username (never its password) in the request event's context. And the
browser's real flow (`--cas-validation browser`, the default): the service validates the ticket, and a
service that sends the browser back to a login form is a failed login, not a successful one.

The service here is a small CAS-protected application on a loopback port, registered with the platform, that
validates its tickets at the platform's /cas/p3/serviceValidate as mod_auth_cas does, and sends the browser
back to the CAS login when the validation fails. LemonLDAP::NG's failures: tests/test_lemonldap.py.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from conftest import Client
from locust.env import Environment

from schoolsurge.accounts import Roster
from schoolsurge.clients import CasClient, ClientContext, ClientSettings, ReferencePlatformClient, StepFailed
from schoolsurge.clients.cas import VALIDATIONS, validation_mode
from schoolsurge.clients.login_failures import (
    LoginFailure,
    login_failure_message,
    login_failure_of,
    refused_submission,
)
from schoolsurge.engine.http import GuardedOpener
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.spec import check_client_arguments

SEED, SIZE, COST = 2021, 60, 4


@dataclass
class ProtectedApp:
    """A CAS-protected application: /app?ticket=ST-... has the ticket validated at the CAS server's
    /p3/serviceValidate for `validated_as` (its own URL, unless a test misconfigures it); success opens the
    page, failure sends the browser back to CAS/login, as mod_auth_cas does."""

    cas_url: str = ""
    validated_as: str = ""
    refusal: int | None = None  # answer a failed validation with this status instead of the CAS login
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/app"


@pytest.fixture(scope="module")
def protected_app() -> Iterator[ProtectedApp]:
    app = ProtectedApp()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            ticket = parse_qs(urlsplit(self.path).query).get("ticket", [""])[0]
            query = urlencode({"service": app.validated_as or app.url, "ticket": ticket})
            reply = Client(app.cas_url).get(f"/cas/p3/serviceValidate?{query}")
            if b"authenticationSuccess" in reply.body:
                self._send(200, b"<h1>Application</h1>")
            elif app.refusal:
                self._send(app.refusal, b"<p>ticket refused</p>")
            else:
                self._send(302, b"", location=f"{app.cas_url}/cas/login?{urlencode({'service': app.url})}")

        def _send(self, status: int, body: bytes, location: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's signature
            pass

    app.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=app.server.serve_forever, daemon=True).start()
    yield app
    app.server.shutdown()
    app.server.server_close()


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path, protected_app: ProtectedApp) -> Iterator[str]:
    """The embedded platform, with the protected application registered as a CAS service of its own."""
    root = tmp_path_factory.mktemp("login-failures")
    with PlatformProcess(
        seed=SEED,
        size=SIZE,
        hash_cost=COST,
        cache_dir=platform_cache,
        log_path=root / "log",
        extra_args=["--service", protected_app.url],
    ) as platform:
        protected_app.cas_url = platform.base_url
        yield platform.base_url


@dataclass
class Attempt:
    """A login by one client, with the request events it fired."""

    events: list[dict[str, Any]] = field(default_factory=list)
    error: StepFailed | None = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["exception"] is not None]


def log_in(url: str, settings: ClientSettings, password: str | None = None, client_class: Any = CasClient) -> Attempt:
    """One login of a CasClient through a guarded connection of a Locust environment, as in a run."""
    environment = Environment(host=url)
    opener = GuardedOpener(None)
    client = client_class(
        ClientContext(
            http=opener.new_connection(environment),
            settings=settings,
            open_connection=lambda: opener.new_connection(environment),
        )
    )
    attempt = Attempt()
    environment.events.request.add_listener(lambda **event: attempt.events.append(event))
    username, right_password = Roster(SEED, SIZE).credentials("student", 3)
    try:
        client.login(username, password or right_password)
    except StepFailed as failed:
        attempt.error = failed
    return attempt


def assert_failed_as(attempt: Attempt, kind: LoginFailure, detail: str, step: str) -> None:
    """The login failed as `kind`, on `step`'s request only, the same message there and in the StepFailed, with
    the username in the event's context and no password anywhere."""
    message = login_failure_message(kind, detail)
    assert attempt.error is not None and str(attempt.error) == message
    (failed,) = attempt.failed
    assert failed["name"] == step and str(failed["exception"]) == message
    username, password = Roster(SEED, SIZE).credentials("student", 3)
    assert failed["context"] == {"username": username}
    assert password not in repr(attempt.events)


def test_a_login_that_works_fails_nothing(cas: str) -> None:
    attempt = log_in(cas, ClientSettings())
    assert attempt.error is None and not attempt.failed
    assert [event["name"] for event in attempt.events] == [
        "sso: login form",
        "sso: submit credentials",
        "sso: ticket callback",
    ]


def test_the_field_names_are_read_from_the_form_when_not_given(cas: str) -> None:
    """No --cas-username-field: the form's text input beside its password input names it (here `username`)."""
    assert ClientSettings().username_field == "" and ClientSettings().password_field == ""
    assert log_in(cas, ClientSettings()).error is None


def test_a_field_the_form_does_not_have_fails_on_the_form_without_posting(cas: str) -> None:
    attempt = log_in(cas, ClientSettings(username_field="user"))
    detail = "no input 'user' in the form (--cas-username-field); its inputs: password, username"
    assert_failed_as(attempt, LoginFailure.FIELDS_NOT_FOUND, detail, "sso: login form")
    assert [event["name"] for event in attempt.events] == ["sso: login form"]


def test_a_wrong_password_is_credentials_refused(cas: str) -> None:
    attempt = log_in(cas, ClientSettings(), password="not-the-password")
    assert_failed_as(attempt, LoginFailure.CREDENTIALS_REFUSED, "HTTP 401", "sso: submit credentials")


def test_a_service_the_cas_server_refuses_is_no_form(cas: str) -> None:
    attempt = log_in(cas, ClientSettings(service_url="http://127.0.0.1:9/not-registered"))
    detail = "HTTP 403; is the service registered with the CAS server?"
    assert_failed_as(attempt, LoginFailure.FORM_NOT_FOUND, detail, "sso: login form")


def test_the_service_validates_the_ticket_and_opens_its_page(cas: str, protected_app: ProtectedApp) -> None:
    protected_app.validated_as = ""
    attempt = log_in(cas, ClientSettings(service_url=protected_app.url))
    assert attempt.error is None and not attempt.failed


def test_a_service_that_sends_the_browser_back_to_log_in_failed_the_login(
    cas: str, protected_app: ProtectedApp
) -> None:
    """The browser's flow checks what the service did: its validation failed (it asked for another service's
    ticket), it sent the browser back to the CAS login form. Before, that 200 page counted as logged in."""
    protected_app.validated_as = "http://127.0.0.1:9/another-service"
    try:
        attempt = log_in(cas, ClientSettings(service_url=protected_app.url))
    finally:
        protected_app.validated_as = ""
    detail = "the service sent the browser back to a login form"
    assert_failed_as(attempt, LoginFailure.TICKET_VALIDATION_FAILED, detail, "sso: ticket callback")


def test_a_service_that_refuses_its_ticket_failed_the_login(cas: str, protected_app: ProtectedApp) -> None:
    protected_app.validated_as, protected_app.refusal = "http://127.0.0.1:9/another-service", 401
    try:
        attempt = log_in(cas, ClientSettings(service_url=protected_app.url))
    finally:
        protected_app.validated_as, protected_app.refusal = "", None
    detail = "the service answered HTTP 401"
    assert_failed_as(attempt, LoginFailure.TICKET_VALIDATION_FAILED, detail, "sso: ticket callback")


def test_a_ticket_validated_on_the_back_channel_for_another_service_failed_the_login(
    cas: str, protected_app: ProtectedApp
) -> None:
    """`back-channel`: the client validates the ticket itself; one issued for the app, validated for the ENT."""
    settings = ClientSettings(service_url=protected_app.url, validation="back-channel")
    assert log_in(cas, settings).error is None
    attempt = log_in(cas, settings, client_class=_ValidatesForTheEnt)
    assert_failed_as(attempt, LoginFailure.TICKET_VALIDATION_FAILED, "INVALID_SERVICE", "sso: validate ticket")


class _ValidatesForTheEnt(CasClient):
    """A ticket issued for the app, validated for the ENT's callback: a deployment's mismatch of services."""

    def _validate(self, ticket: str | None, username: str, who: dict[str, str]) -> None:
        self.service_url = f"{self.http.base_url}/ent/auth/callback"
        super()._validate(ticket, username, who)


# ---- the classes, as messages ------------------------------------------------------------------------------


def test_the_class_is_read_back_from_a_message_however_wrapped() -> None:
    message = login_failure_message(LoginFailure.CREDENTIALS_REFUSED, "form shown again")
    assert message == "login: credentials refused (form shown again)"
    assert login_failure_of(f"CatchResponseError({message!r})") is LoginFailure.CREDENTIALS_REFUSED
    assert login_failure_of("StepFailed('homework: HTTP 500')") is None


@pytest.mark.parametrize(
    ("status", "page", "kind", "detail"),
    [
        (503, "", LoginFailure.HTTP_ERROR, "HTTP 503"),
        (0, "", LoginFailure.HTTP_ERROR, "HTTP 0"),
        (429, "", LoginFailure.HTTP_ERROR, "HTTP 429"),
        (401, "", LoginFailure.CREDENTIALS_REFUSED, "HTTP 401"),
        (302, "", LoginFailure.NO_TICKET, "redirect without a ticket"),
        (403, "", LoginFailure.NO_TICKET, "HTTP 403"),
        (200, "<p>You are logged in.</p>", LoginFailure.NO_TICKET, "HTTP 200 without a login form nor a redirect"),
        (
            200,
            '<form><input name="u"><input type="password" name="p"></form>',
            LoginFailure.CREDENTIALS_REFUSED,
            "form shown again",
        ),
        (
            200,
            '<div trmsg="82"></div><form><input name="user"><input type="password" name="password"></form>',
            LoginFailure.NO_TICKET,
            "login token used or expired, LemonLDAP error 82",
        ),
    ],
)
def test_an_answer_to_the_credentials_without_a_ticket_is_classified(
    status: int, page: str, kind: LoginFailure, detail: str
) -> None:
    assert refused_submission(status, page) == (kind, detail)


# ---- the ticket's validation modes ---------------------------------------------------------------------------


def test_the_validation_modes_are_named_for_what_they_do_and_the_old_names_still_work() -> None:
    assert ClientSettings().validation == "browser"
    assert {name: validation_mode(name) for name in ("service", "p3", "p2", "none")} == {
        "service": "browser",
        "p3": "back-channel",
        "p2": "back-channel-cas2",
        "none": "none",
    }
    for name in VALIDATIONS:
        check_client_arguments(["--cas-validation", name])


def test_the_reference_client_still_logs_in_by_its_browser_flow(cas: str) -> None:
    environment = Environment(host=cas)
    client = ReferencePlatformClient(ClientContext(http=GuardedOpener(None).new_connection(environment)))
    client.login(*Roster(SEED, SIZE).credentials("teacher", 1))
    assert client.dashboard().role == "teacher"
