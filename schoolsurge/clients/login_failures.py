"""Why a login failed, in one of a few classes, so that "0 of 13 logged in" comes with its cause.

Every failed login is one of `LoginFailure`, named at the start of the failure message of the request that
failed (Locust's failures table, the report's failure rows) and of the StepFailed the persona sees:

    login: form not found (HTTP 404)
    login: fields not found (no input 'username' in the form; its inputs: password, user)
    login: credentials refused (form shown again, LemonLDAP error 5)
    login: no ticket (redirect without a ticket)
    login: ticket validation failed (the service answered HTTP 401)
    login: HTTP error (HTTP 503)

The detail in parentheses never holds the account's password, nor its username (it would make one failure row
per person): the username is in the request event's `context` ({"username": ...}) instead. With OpenID
Connect, the "ticket" is the authorization code. `login_failure_of` reads the class back from a message.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, NoReturn

from schoolsurge.clients.login_form import LoginForm, parse_login_form
from schoolsurge.errors import StepFailed

__all__ = [
    "LOGIN_FAILURE_PREFIX",
    "LoginFailed",
    "LoginFailure",
    "credential_fields",
    "fail_login",
    "is_http_error",
    "login_failure_message",
    "login_failure_of",
    "refused_submission",
]

LOGIN_FAILURE_PREFIX = "login: "


class LoginFailure(StrEnum):
    """Where a login was lost, in the order a login goes."""

    FORM_NOT_FOUND = "form not found"  # no login page with a password input (or the SSO refused to show it)
    FIELDS_NOT_FOUND = "fields not found"  # the form has no such username or password input
    CREDENTIALS_REFUSED = "credentials refused"  # the form shown again, or a 401
    NO_TICKET = "no ticket"  # the SSO answered the credentials without a ticket (a token, a service refused...)
    TICKET_VALIDATION_FAILED = "ticket validation failed"  # the service (or the client) refused the ticket
    HTTP_ERROR = "HTTP error"  # no answer, a timeout, throttled (429) or a server error (5xx): the load's doing


# Statuses that say the server could not serve the request, whatever was sent: no answer (0), a timeout,
# throttling, a server error. A login lost to these is the surge's doing, not the client's set-up.
_HTTP_ERROR_STATUSES = frozenset({0, 408, 429})

# LemonLDAP::NG answers a refused login with HTTP 200, its form again (or an error page once the credentials
# were accepted), the reason as a number: `trmsg="N"` (Lemonldap::NG::Portal::Main::Constants).
LEMONLDAP_ERRORS: dict[int, tuple[LoginFailure, str]] = {
    2: (LoginFailure.FIELDS_NOT_FOUND, "the portal got an empty form"),
    4: (LoginFailure.CREDENTIALS_REFUSED, "unknown user"),
    5: (LoginFailure.CREDENTIALS_REFUSED, "wrong credentials"),
    81: (LoginFailure.NO_TICKET, "no login token"),
    82: (LoginFailure.NO_TICKET, "login token used or expired"),
    84: (LoginFailure.NO_TICKET, "service not authorized for this user"),
    107: (LoginFailure.NO_TICKET, "service not registered"),
}
_LEMONLDAP_ERROR = re.compile(r"""\btrmsg\s*=\s*["']?(\d+)""")
_PAGE_SCAN_CHARS = 1 << 20  # as far as the login form is read
_CLASSIFIED = re.compile(re.escape(LOGIN_FAILURE_PREFIX) + "(" + "|".join(map(re.escape, LoginFailure)) + ")")


class LoginFailed(StepFailed):
    """A login that failed, with its class (the message is `login_failure_message`)."""

    def __init__(self, kind: LoginFailure, detail: str) -> None:
        super().__init__(login_failure_message(kind, detail))
        self.kind = kind


def login_failure_message(kind: LoginFailure, detail: str) -> str:
    return f"{LOGIN_FAILURE_PREFIX}{kind} ({detail})"


def login_failure_of(message: str) -> LoginFailure | None:
    """The class a failure message names (also inside a wrapper such as "CatchResponseError('login: ...')")."""
    found = _CLASSIFIED.search(message)
    return LoginFailure(found[1]) if found else None


def fail_login(response: Any, kind: LoginFailure, detail: str) -> NoReturn:
    """Mark the request failed with the classified message, and fail the login step with it."""
    failed = LoginFailed(kind, detail)
    response.failure(str(failed))
    raise failed


def is_http_error(status: int) -> bool:
    return status in _HTTP_ERROR_STATUSES or status >= 500


def refused_submission(status: int, page: str) -> tuple[LoginFailure, str]:
    """Why the answer to a posted login form is not the redirect it should be (with a ticket or a code)."""
    if is_http_error(status):
        return LoginFailure.HTTP_ERROR, f"HTTP {status}"
    if status == 401:
        return LoginFailure.CREDENTIALS_REFUSED, "HTTP 401"
    if status in (301, 302, 303, 307, 308):
        return LoginFailure.NO_TICKET, "redirect without a ticket"
    if status != 200:
        return LoginFailure.NO_TICKET, f"HTTP {status}"
    code = _LEMONLDAP_ERROR.search(page, 0, _PAGE_SCAN_CHARS)
    if code is not None:  # the form again, or an error page once the credentials were accepted (107)
        number = int(code[1])
        kind, reason = LEMONLDAP_ERRORS.get(number, (LoginFailure.NO_TICKET, "refused"))
        return kind, f"{reason}, LemonLDAP error {number}"
    if parse_login_form(page, "") is None:
        return LoginFailure.NO_TICKET, "HTTP 200 without a login form nor a redirect"
    return LoginFailure.CREDENTIALS_REFUSED, "form shown again"


def credential_fields(
    response: Any, form: LoginForm, username_field: str, password_field: str, flag: str
) -> tuple[str, str]:
    """The username and password field names to post: those given (each must be an input of the form), else
    those the form shows; a login that cannot fill the form fails on the form's response (`flag`: the options'
    prefix, named in the message)."""
    for given, option in ((username_field, f"{flag}-username-field"), (password_field, f"{flag}-password-field")):
        if given and given not in form.inputs:
            shown = ", ".join(sorted(form.inputs - set(form.hidden))) or "none"
            detail = f"no input {given!r} in the form ({option}); its inputs: {shown}"
            fail_login(response, LoginFailure.FIELDS_NOT_FOUND, detail)
    username_field = username_field or form.username_field
    if not username_field:
        detail = f"no text input beside the password; give {flag}-username-field"
        fail_login(response, LoginFailure.FIELDS_NOT_FOUND, detail)
    return username_field, password_field or form.password_field
