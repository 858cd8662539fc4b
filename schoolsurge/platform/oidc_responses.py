"""What the OpenID Provider answers a browser: its login form, and the pages of the errors it may not send back
to the client (an unregistered client or redirect URI: OAuth 2.0 forbids redirecting there). Same look and same
protections as the CAS pages (cas_responses.py: never cached, never framed)."""

from __future__ import annotations

import html
from collections.abc import Mapping

from fastapi.responses import HTMLResponse

from schoolsurge.platform.cas_responses import PAGE, PAGE_SECURITY, page

# The authorization request's parameters the form carries to the credentials' POST, as hidden fields.
AUTHORIZATION_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "response_mode",
)
LOGIN_FORM = """{error}<form method="post" action="/oidc/login">
<label>Identifiant <input type="text" name="username" autocomplete="username"></label>
<label>Mot de passe <input type="password" name="password" autocomplete="current-password"></label>
<input type="hidden" name="execution" value="{execution}">
{hidden}<button type="submit">Se connecter</button>
</form>
"""
UNREGISTERED_CLIENT = "this client or redirect URI is not registered with the OpenID Provider"
UNREGISTERED = """<p>Cette application n'est pas enregistrée auprès du serveur d'authentification :
aucune connexion ne lui est transmise.</p>
<p>This client or redirect URI is not registered with the OpenID Provider, so nothing is sent to it.</p>
"""


def login_page(execution: str, authorization: Mapping[str, str], *, error: str = "") -> HTMLResponse:
    """The login form for an authorization request (its parameters as hidden fields); 401 with an error."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(authorization[name], quote=True)}">\n'
        for name in AUTHORIZATION_PARAMETERS
        if authorization.get(name)
    )
    return page(
        "Connexion ENT", LOGIN_FORM.format(error=error, execution=execution, hidden=hidden), 401 if error else 200
    )


def unregistered_client_page() -> HTMLResponse:
    return HTMLResponse(PAGE.format(title="Application non autorisée", body=UNREGISTERED), 403, PAGE_SECURITY)


def error_page(error: str, description: str, status_code: int) -> HTMLResponse:
    """An error the provider may not redirect to the client (RFC 6749 section 4.1.2.1): shown to the person."""
    body = f"<p>{html.escape(error)}: {html.escape(description)}</p>\n"
    return page("Erreur d'authentification", body, status_code)
