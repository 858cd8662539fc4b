"""A person logging in through any CAS 3.0 server, as a browser does (Apereo CAS Protocol Specification 3.0).

The login as its steps, each one request in Locust's statistics:

1. `sso: login form`: GET CAS/login?service=SERVICE, the HTML form; every hidden field it carries (the
   one-time `execution` token, `_eventId`, `lt` on older servers...) is sent back as it came.
2. `sso: submit credentials`: POST the form with the username and password fields (their names are
   settings: CAS servers differ); success is a redirect to SERVICE?ticket=ST-...
3. the service ticket is redeemed by whoever `validation` says:
   - `service` (default): the browser follows the redirect, the service validates the ticket and opens its
     own session (`sso: ticket callback`), as the embedded platform's ENT does;
   - `p3` / `p2`: the client validates it itself, server to server, at CAS/p3/serviceValidate (CAS 3.0) or
     CAS/serviceValidate (2.0), on a second connection (`sso: validate ticket`); for a CAS server with no
     service of its own to land on;
   - `none`: a ticket on the redirect is the login.

Logging out is CAS/logout (a GET by the spec; `logout_method` for deployments that want a POST).
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit
from xml.etree import ElementTree

from schoolsurge.clients.base import ClientContext, Dashboard, PlatformClient, StepFailed

CAS_NAMESPACE = "{http://www.yale.edu/tp/cas}"
DEFAULT_CAS_PATH = "/cas"
DEFAULT_SERVICE_PATH = "/ent/auth/callback"  # the embedded platform's ENT
VALIDATIONS = ("service", "p3", "p2", "none")
VALIDATION_PATHS = {"p3": "/p3/serviceValidate", "p2": "/serviceValidate"}
REDIRECTS = frozenset({301, 302, 303, 307})


class CasClient(PlatformClient):
    """Logs people in through a CAS server and reads one page (`home_url`, default the CAS login page).
    Subclass it for a platform behind CAS: the login comes with it, write the platform's pages."""

    sso = "cas"

    def __init__(self, context: ClientContext) -> None:
        super().__init__(context)
        settings, target = context.settings, (context.http.base_url or "").rstrip("/")
        self.cas_url = (settings.cas_url or f"{target}{DEFAULT_CAS_PATH}").rstrip("/")
        self.service_url = settings.service_url or f"{target}{DEFAULT_SERVICE_PATH}"
        self.home_url = settings.home_url or f"{self.cas_url}/login"
        self.settings = settings

    # ---- the login ----------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        form = self._login_form()
        fields = {**form.hidden, self.settings.username_field: username, self.settings.password_field: password}
        fields.setdefault("service", self.service_url)
        ticket_url = self._submit(form.action, fields)
        ticket = _ticket_of(ticket_url)
        if self.settings.validation == "service":
            self.redeem_at_service(ticket_url)
        elif self.settings.validation in VALIDATION_PATHS:
            self._validate(ticket, username)

    def _login_form(self) -> LoginForm:
        with self.http.get(
            f"{self.cas_url}/login",
            params={"service": self.service_url},
            name=self.name("sso: login form"),
            catch_response=True,
        ) as response:
            form = (
                parse_login_form(response.text or "", f"{self.cas_url}/login") if response.status_code == 200 else None
            )
            if form is None:
                response.failure(f"HTTP {response.status_code}, no login form")
                raise StepFailed("login form unavailable")
        return form

    def _submit(self, action: str, fields: dict[str, str]) -> str:
        """POST the credentials; returns the redirect URL carrying the service ticket."""
        with self.http.post(
            action, data=fields, name=self.name("sso: submit credentials"), allow_redirects=False, catch_response=True
        ) as response:
            location = response.headers.get("location") if response.headers else None
            if response.status_code not in REDIRECTS or not location or _ticket_of(location) is None:
                response.failure(f"HTTP {response.status_code}, expected a redirect with a service ticket")
                raise StepFailed("credentials refused or login failed")
        return urljoin(action, location)

    def redeem_at_service(self, ticket_url: str) -> Any:
        """Follow the redirect: the service validates the ticket and opens its session. Returns its JSON body,
        or None when it is not JSON (an HTML landing page)."""
        target = urlsplit(ticket_url)
        path = f"{target.path}?{target.query}" if _same_origin(ticket_url, self.http.base_url) else ticket_url
        with self.http.get(path, name=self.name("sso: ticket callback"), catch_response=True) as response:
            if not 200 <= response.status_code < 300:
                response.failure(f"HTTP {response.status_code}, the service refused its ticket")
                raise StepFailed("ticket refused by the service")
            try:
                return response.json()
            except ValueError:
                return None

    def _validate(self, ticket: str | None, username: str) -> None:
        """Back channel: the ticket is validated server to server, as the service would."""
        connection = self.context.open_connection() if self.context.open_connection else self.http
        path = VALIDATION_PATHS[self.settings.validation]
        with connection.get(
            f"{self.cas_url}{path}",
            params={"service": self.service_url, "ticket": ticket or ""},
            name=self.name("sso: validate ticket"),
            catch_response=True,
        ) as response:
            user, failure = parse_validation(response.text or "") if response.status_code == 200 else (None, None)
            if user is None:
                response.failure(f"HTTP {response.status_code}, ticket not validated ({failure or 'no CAS response'})")
                raise StepFailed("ticket not validated")
            if user != username:
                response.failure(f"ticket validated for {user!r}, not for the person who logged in")
                raise StepFailed("ticket of another user")

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


class LoginForm:
    def __init__(self, action: str, hidden: dict[str, str]) -> None:
        self.action = action
        self.hidden = hidden


# The page is read in one pass of one pattern whose every alternative, once begun at a "<", runs to its end or
# to the page's and never fails: a comment, a script or a style (left out), a form or input tag to its ">" (a
# tag or a quote left open takes the rest of the page, as in a browser). No position is ever scanned twice, so
# the reader is linear in the page, whatever the page (no ReDoS), and it reads at most LOGIN_PAGE_MAX_CHARS.
# Regular expressions rather than html.parser: the form is read at every login, on the generator's hot path.
LOGIN_PAGE_MAX_CHARS = 1 << 20
_TOKENS = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style)\b.*?(?:</\1\s*>|\Z)"
    r"""|<(form|input)\b((?:[^>"']+|"[^"]*(?:"|\Z)|'[^']*(?:'|\Z))*)""",
    re.DOTALL | re.IGNORECASE,
)
# A tag's attributes: HTML's three ways of quoting a value (an open quote runs to the end), or none.
_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"?|'([^']*)'?|([^\s>"']+)))?""")


def _attributes(text: str) -> dict[str, str]:
    """A tag's attributes, names lower-cased, values unescaped; the first of a repeated name wins, as in HTML."""
    attributes: dict[str, str] = {}
    for name, double, single, bare in _ATTRIBUTE.findall(text):
        attributes.setdefault(name.lower(), html.unescape(double or single or bare))
    return attributes


def parse_login_form(page: str, page_url: str) -> LoginForm | None:
    """The first form of a CAS page that has a password field (its action made absolute, its hidden inputs), or
    None when the page has none in its first LOGIN_PAGE_MAX_CHARS. Comments, scripts and styles are left out."""
    forms: list[tuple[str | None, dict[str, str], bool]] = []
    for token in _TOKENS.finditer(page, 0, LOGIN_PAGE_MAX_CHARS):
        tag = token[2]
        if tag is None:  # a comment, a script or a style
            continue
        attributes = _attributes(token[3])
        if tag.lower() == "form":
            forms.append((attributes.get("action"), {}, False))
        elif forms:
            action, hidden, has_password = forms[-1]
            kind = attributes.get("type", "text").lower()
            if kind == "hidden" and attributes.get("name"):
                hidden[attributes["name"]] = attributes.get("value", "")
            elif kind == "password":
                forms[-1] = (action, hidden, True)
    for action, hidden, has_password in forms:
        if has_password:
            return LoginForm(urljoin(page_url, action or page_url), hidden)
    return None


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
