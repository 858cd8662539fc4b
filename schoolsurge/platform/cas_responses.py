"""What the CAS server answers, as the Apereo CAS Protocol 3.0 specification has it: the HTML pages of
/login and /logout, and the validation responses (CAS 1.0 text, CAS 2.0 and 3.0 `serviceResponse` in XML or
JSON)."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from xml.sax.saxutils import escape as xml_escape

from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from schoolsurge.platform.core import Account
from schoolsurge.platform.sso import Failure, Validation

CAS_NAMESPACE = "http://www.yale.edu/tp/cas"
RESPONSE_FORMATS = ("XML", "JSON")  # CAS 3.0 section 2.5.1, the `format` parameter
BAD_CREDENTIALS = "invalid username or password"
STALE_FORM = "login form unknown, already used, expired or opened in another browser; reload it and log in again"
# CAS 3.0 appendix B: the pages around a login must not be cached (a Back button must not replay a form).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}
# Every page: never inside a frame (clickjacking the login form), and nothing loaded or run but the page itself
# (it has no script, style or image). No form-action: browsers apply it to the redirect after the form, which
# goes to the service, on another origin.
PAGE_SECURITY = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}

PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1>
{body}</body></html>
"""
# The hidden inputs are those of Apereo CAS's form, so a client that posts every hidden field back works here.
# The execution input keeps this exact spelling: clients find the token with a regular expression.
LOGIN_FORM = """{error}<form method="post" action="/cas/login">
<label>Identifiant <input type="text" name="username" autocomplete="username"></label>
<label>Mot de passe <input type="password" name="password" autocomplete="current-password"></label>
<input type="hidden" name="execution" value="{execution}">
<input type="hidden" name="_eventId" value="submit">
{service}<button type="submit">Se connecter</button>
</form>
"""
LOGIN_ERROR = f"""<p class="error" role="alert">Identifiant ou mot de passe incorrect ({BAD_CREDENTIALS}).</p>
"""
STALE_FORM_ERROR = f"""<p class="error" role="alert">Ce formulaire a expiré, a déjà servi ou a été ouvert dans un autre
navigateur : saisissez à nouveau vos identifiants ({STALE_FORM}).</p>
"""
LOGGED_IN = """<p>Vous êtes authentifié. Aucun service n'a été demandé : ouvrez le service que vous voulez utiliser.</p>
<p>Your credentials are accepted. No service was named, so no ticket was issued; this server keeps no single
sign-on session: open the service you want to use.</p>
"""
LOGGED_OUT = """<p>Vous êtes déconnecté de l'ENT. Pour plus de sécurité, fermez votre navigateur.</p>
<p>You are logged out.</p>
"""
UNREGISTERED_SERVICE = "this service is not registered with the CAS server, so no ticket is issued for it"
UNREGISTERED = """<p>Ce service n'est pas enregistré auprès du serveur d'authentification :
aucune connexion ne lui est transmise.</p>
<p>This service is not registered with the CAS server, so no ticket is issued for it.</p>
"""


# ---- pages ----------------------------------------------------------------------------------------------


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(title=title, body=body), status_code=status_code, headers={**NO_STORE, **PAGE_SECURITY}
    )


def login_page(execution: str, service: str | None, *, error: str = "") -> HTMLResponse:
    """The login form (CAS 3.0 section 2.1.3); with an error (LOGIN_ERROR after wrong credentials, section
    2.2.4, or STALE_FORM_ERROR), 401."""
    hidden_service = (
        f'<input type="hidden" name="service" value="{html.escape(service, quote=True)}">\n' if service else ""
    )
    form = LOGIN_FORM.format(error=error, execution=execution, service=hidden_service)
    return page("Connexion ENT", form, 401 if error else 200)


def logged_in_page() -> HTMLResponse:
    return page("Connexion réussie", LOGGED_IN)


def logged_out_page() -> HTMLResponse:
    return page("Déconnexion", LOGGED_OUT)


def unregistered_service_page() -> HTMLResponse:
    return HTMLResponse(PAGE.format(title="Service non autorisé", body=UNREGISTERED), 403, PAGE_SECURITY)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


# ---- validation responses -------------------------------------------------------------------------------


def attributes_of(account: Account, authenticated_at: float) -> dict[str, str | int | bool]:
    """CAS 3.0 attributes (appendix A): the three the schema requires, then the account's own."""
    authenticated = datetime.fromtimestamp(authenticated_at, UTC).isoformat(timespec="milliseconds")
    attributes: dict[str, str | int | bool] = {
        "authenticationDate": authenticated.replace("+00:00", "Z"),
        "longTermAuthenticationRequestTokenUsed": False,  # no Remember-Me here
        "isFromNewLogin": True,  # every ticket comes from credentials just checked: no single sign-on session
        "role": account.role,
        "displayName": account.display_name,
    }
    if account.class_id is not None:
        attributes["classId"] = account.class_id
    return attributes


def failure_status(validation: Validation) -> int:
    """200 for every answer of the protocol, but 503 when the database was too busy to validate (retry)."""
    return 503 if validation.failure is Failure.INTERNAL_ERROR else 200


def service_response(
    validation: Validation, *, with_attributes: bool, response_format: str, retry_after: int
) -> Response:
    """A CAS 2.0 (/serviceValidate) or 3.0 (/p3/serviceValidate, `with_attributes`) serviceResponse."""
    status = failure_status(validation)
    headers = {"Retry-After": str(retry_after)} if status == 503 else None
    if response_format == "JSON":
        return JSONResponse(_json_body(validation, with_attributes), status_code=status, headers=headers)
    return Response(_xml_body(validation, with_attributes), status, headers, media_type="application/xml")


def cas1_response(validation: Validation, *, retry_after: int) -> PlainTextResponse:
    """CAS 1.0 (/validate): "yes", the user, or "no" and an empty line; each line ends with a line feed."""
    if validation.account is not None:
        return PlainTextResponse(f"yes\n{validation.account.username}\n")
    status = failure_status(validation)
    headers = {"Retry-After": str(retry_after)} if status == 503 else None
    return PlainTextResponse("no\n\n", status_code=status, headers=headers)


def _xml_body(validation: Validation, with_attributes: bool) -> str:
    account = validation.account
    if account is None:
        code = validation.failure or Failure.INTERNAL_ERROR
        inner = f'<cas:authenticationFailure code="{code}">{xml_escape(validation.message)}</cas:authenticationFailure>'
    else:
        attributes = ""
        if with_attributes:
            values = attributes_of(account, validation.authenticated_at)
            attributes = "".join(f"<cas:{name}>{_xml_text(value)}</cas:{name}>" for name, value in values.items())
            attributes = f"<cas:attributes>{attributes}</cas:attributes>"
        inner = (
            f"<cas:authenticationSuccess><cas:user>{xml_escape(account.username)}</cas:user>{attributes}"
            "</cas:authenticationSuccess>"
        )
    return f'<cas:serviceResponse xmlns:cas="{CAS_NAMESPACE}">{inner}</cas:serviceResponse>\n'


def _xml_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_escape(str(value))


def _json_body(validation: Validation, with_attributes: bool) -> dict[str, object]:
    account = validation.account
    if account is None:
        code = validation.failure or Failure.INTERNAL_ERROR
        return {"serviceResponse": {"authenticationFailure": {"code": str(code), "description": validation.message}}}
    success: dict[str, object] = {"user": account.username}
    if with_attributes:
        success["attributes"] = attributes_of(account, validation.authenticated_at)
    return {"serviceResponse": {"authenticationSuccess": success}}
