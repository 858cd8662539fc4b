"""A person logging in through any CAS 3.0 server, as a browser does (Apereo CAS Protocol Specification 3.0).

The login as its steps, each one request in Locust's statistics:

1. `sso: login form`: GET CAS/login?service=SERVICE, the HTML form; every hidden field it carries (the
   one-time `execution` token, `_eventId`, `lt` on older servers...) is sent back as it came. The username and
   password fields are those of the settings, or else read from the form (login_form.py): LemonLDAP's username
   field is `user`, Apereo's `username`. A field the form does not have fails the login there, without a post.
2. `sso: submit credentials`: POST the form with the username and password; success is a redirect to
   SERVICE?ticket=ST-...
3. the service ticket is redeemed by whoever `validation` says:
   - `browser` (default; old name `service`): as after a person's login, the browser follows the redirect to
     the service with its ticket, and on to the page the service sends it to (`sso: ticket callback`); the
     service validates the ticket (with the CAS server, server to server) and opens its session. A service that
     refuses the ticket (401, 403), or sends the browser back to a login form, fails the login;
   - `back-channel` (old name `p3`), `back-channel-cas2` (old name `p2`): the client validates the ticket
     itself, server to server, at CAS/p3/serviceValidate (CAS 3.0) or CAS/serviceValidate (2.0), on a second
     connection (`sso: validate ticket`), and checks it names the person; the service is never visited: for a
     CAS server with no service of its own to land on;
   - `none`: a ticket on the redirect is the login.

A login that fails says why in its failure message, one of the classes of login_failures.py ("login:
credentials refused (HTTP 401)"); each login request carries the person's username in its event's `context`.
Logging out is CAS/logout (a GET by the spec; `logout_method` for deployments that want a POST).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit
from xml.etree import ElementTree

from schoolsurge.clients.base import ClientContext, Dashboard, PlatformClient, StepFailed
from schoolsurge.clients.login_failures import (
    LoginFailure,
    credential_fields,
    fail_login,
    is_http_error,
    refused_submission,
)
from schoolsurge.clients.login_form import LoginForm, parse_login_form

CAS_NAMESPACE = "{http://www.yale.edu/tp/cas}"
DEFAULT_CAS_PATH = "/cas"
DEFAULT_SERVICE_PATH = "/ent/auth/callback"  # the embedded platform's ENT
# Who redeems the service ticket (`--cas-validation`), and the names these modes had before.
VALIDATION_MODES = ("browser", "back-channel", "back-channel-cas2", "none")
VALIDATION_ALIASES = {"service": "browser", "p3": "back-channel", "p2": "back-channel-cas2"}
VALIDATIONS = (*VALIDATION_MODES, *VALIDATION_ALIASES)  # what --cas-validation accepts
VALIDATION_PATHS = {"back-channel": "/p3/serviceValidate", "back-channel-cas2": "/serviceValidate"}
REDIRECTS = frozenset({301, 302, 303, 307})


def validation_mode(name: str) -> str:
    """The mode a --cas-validation name stands for (an old name is an alias)."""
    return VALIDATION_ALIASES.get(name, name)


class CasClient(PlatformClient):
    """Logs people in through a CAS server and reads one page (`home_url`, default the CAS login page).
    Subclass it for a platform behind CAS: the login comes with it, write the platform's pages (or describe
    them in a journey map: clients/web.py)."""

    reads_settings = frozenset({"home_url"})

    sso = "cas"

    def __init__(self, context: ClientContext) -> None:
        super().__init__(context)
        settings, target = context.settings, (context.http.base_url or "").rstrip("/")
        self.cas_url = (settings.cas_url or f"{target}{DEFAULT_CAS_PATH}").rstrip("/")
        self.service_url = settings.service_url or f"{target}{DEFAULT_SERVICE_PATH}"
        self.home_url = settings.home_url or f"{self.cas_url}/login"
        self.validation = validation_mode(settings.validation)
        self.settings = settings

    # ---- the login ----------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        who = {"username": username}  # the request events' context: which account failed (never its password)
        form, username_field, password_field = self._login_form(who)
        fields = {**form.hidden, username_field: username, password_field: password}
        fields.setdefault("service", self.service_url)
        ticket_url = self._submit(form.action, fields, who)
        if self.validation == "browser":
            self.redeem_at_service(ticket_url, who)
        elif self.validation in VALIDATION_PATHS:
            self._validate(_ticket_of(ticket_url), username, who)

    def _login_form(self, who: dict[str, str]) -> tuple[LoginForm, str, str]:
        """The login form and the names of its username and password fields (the settings', else the form's)."""
        with self.http.get(
            f"{self.cas_url}/login",
            params={"service": self.service_url},
            name=self.name("sso: login form"),
            catch_response=True,
            context=who,
        ) as response:
            status = response.status_code
            if is_http_error(status):
                fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status}")
            form = parse_login_form(response.text or "", f"{self.cas_url}/login") if status == 200 else None
            if form is None:
                detail = f"HTTP {status}" if status != 200 else "no form with a password input"
                if status in (401, 403):
                    detail += "; is the service registered with the CAS server?"
                fail_login(response, LoginFailure.FORM_NOT_FOUND, detail)
            return form, *credential_fields(
                response, form, self.settings.username_field, self.settings.password_field, "--cas"
            )

    def _submit(self, action: str, fields: dict[str, str], who: dict[str, str]) -> str:
        """POST the credentials; returns the redirect URL carrying the service ticket."""
        with self.http.post(
            action,
            data=fields,
            name=self.name("sso: submit credentials"),
            allow_redirects=False,
            catch_response=True,
            context=who,
        ) as response:
            location = response.headers.get("location") if response.headers else None
            if response.status_code in REDIRECTS and location and _ticket_of(location) is not None:
                return urljoin(action, location)
            page = response.text or "" if response.status_code == 200 else ""
            fail_login(response, *refused_submission(response.status_code, page))

    def redeem_at_service(self, ticket_url: str, who: dict[str, str]) -> Any:
        """Follow the redirect, and the service's own: it validates the ticket and opens its session. Returns the
        JSON body of the page it lands on, or None when it is not JSON (an HTML page)."""
        target = urlsplit(ticket_url)
        path = f"{target.path}?{target.query}" if _same_origin(ticket_url, self.http.base_url) else ticket_url
        with self.http.get(path, name=self.name("sso: ticket callback"), catch_response=True, context=who) as response:
            status = response.status_code
            if is_http_error(status):
                fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status}")
            if not 200 <= status < 300:
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, f"the service answered HTTP {status}")
            try:
                return response.json()
            except ValueError:
                pass
            if parse_login_form(response.text or "", "") is not None:
                # A service that refuses a ticket often sends the browser back to log in: no session opened.
                detail = "the service sent the browser back to a login form"
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, detail)
            return None

    def _validate(self, ticket: str | None, username: str, who: dict[str, str]) -> None:
        """Back channel: the ticket is validated server to server, as the service would."""
        connection = self.context.open_connection() if self.context.open_connection else self.http
        path = VALIDATION_PATHS[self.validation]
        with connection.get(
            f"{self.cas_url}{path}",
            params={"service": self.service_url, "ticket": ticket or ""},
            name=self.name("sso: validate ticket"),
            catch_response=True,
            context=who,
        ) as response:
            status = response.status_code
            if is_http_error(status):
                fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status}")
            user, failure = parse_validation(response.text or "") if status == 200 else (None, f"HTTP {status}")
            if user is None:
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, failure or "no CAS response")
            if user != username:
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, "the ticket names another user")

    # ---- the rest -----------------------------------------------------------------------------------

    def logout(self) -> None:
        method = self.settings.logout_method.upper()
        with self.http.request(
            method, f"{self.cas_url}/logout", name=self.name("sso: logout"), allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code >= 400 or response.status_code == 0:
                response.failure(f"HTTP {response.status_code}")
                raise StepFailed("logout failed")

    def dashboard(self) -> Dashboard:
        with self.http.get(self.home_url, name=self.name("home"), catch_response=True) as response:
            if not 200 <= response.status_code < 300:
                response.failure(f"HTTP {response.status_code}")
                raise StepFailed("home page unavailable")
        return Dashboard(role=self.role)


def parse_validation(xml: str) -> tuple[str | None, str | None]:
    """(user, None) of a CAS 2.0/3.0 authenticationSuccess, or (None, failure code) of a failure."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None, "not XML"
    success = root.find(f"{CAS_NAMESPACE}authenticationSuccess")
    if success is not None:
        user = success.findtext(f"{CAS_NAMESPACE}user")
        return (user.strip() if user else None), None if user else "no user"
    failure = root.find(f"{CAS_NAMESPACE}authenticationFailure")
    return None, (failure.get("code") if failure is not None else "no serviceResponse")


def _ticket_of(url: str) -> str | None:
    tickets = parse_qs(urlsplit(url).query).get("ticket")
    return tickets[0] if tickets else None


def _same_origin(url: str, base_url: str | None) -> bool:
    first, second = urlsplit(url), urlsplit(base_url or "")
    return (first.scheme, first.netloc) == (second.scheme, second.netloc)
