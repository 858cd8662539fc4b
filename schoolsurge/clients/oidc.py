"""A person logging in through any OpenID Provider, as a browser does: OpenID Connect Core 1.0's authorization
code flow, with PKCE (RFC 7636, S256).

The login as its steps, each one request in Locust's statistics:

1. where the flow starts, by `validation`:
   - `browser` (default; old name `service`): `sso: start login`, GET the service's login URL
     (`--oidc-login-url`, default the embedded ENT's TARGET/ent/auth/oidc/login); the service answers with a
     redirect to the provider's authorization endpoint, carrying its own client id, redirect URI, state, nonce
     and PKCE challenge, as a real ENT does;
   - `back-channel`: the client is the relying party itself (an app): it reads the provider's metadata
     (`sso: discovery`, once per process, from `--oidc-issuer` + /.well-known/openid-configuration) and makes
     the authorization request with its own client id, redirect URI, scopes, state, nonce and challenge;
2. `sso: login form`: the authorization endpoint's login page (redirects within the provider followed, as
   `sso: login redirect`); the first form with a password field. Every hidden field is sent back as it came;
   the username and password fields are those of the options, or else read from the form: the password input
   names the password field, the text or email input before it the username (login_form.py);
3. `sso: submit credentials`: POST the form; the provider redirects (perhaps through pages of its own) to the
   redirect URI with `code` and the `state` sent (checked);
4. the code is redeemed by whoever `validation` says:
   - `browser`: the browser follows the redirect to the service's callback (`sso: code callback`), which
     redeems the code server side and opens its session;
   - `back-channel`: the client POSTs the code and its PKCE verifier to the token endpoint on a second
     connection (`sso: redeem code`; client_secret_basic, client_secret_post or none, `--oidc-token-auth`),
     and verifies the ID token: signature by a key of the provider's JWKS (`sso: jwks`, once per process), iss,
     aud, nonce, exp (id_tokens.py).

A login that fails says why in its failure message, one of the classes of login_failures.py (the "ticket"
there is the authorization code); each login request carries the person's username in its event's `context`.
Logging out is the provider's end_session_endpoint, when it has one (`sso: logout`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

from joserfc.jwk import KeySet

from schoolsurge.clients.base import ClientContext, Dashboard, PlatformClient, StepFailed
from schoolsurge.clients.login_failures import (
    LoginFailure,
    credential_fields,
    fail_login,
    is_http_error,
    refused_submission,
)
from schoolsurge.clients.login_form import LoginForm, parse_login_form
from schoolsurge.id_tokens import InvalidIdToken, verify_id_token

# The embedded platform's, for a run against it without options.
DEFAULT_ISSUER_PATH = "/oidc"
DEFAULT_LOGIN_PATH = "/ent/auth/oidc/login"
DEFAULT_CLIENT_ID = "ent-mobile"  # its public client: an app redeeming its own codes
DEFAULT_REDIRECT_URI = "fr.schoolsurge.ent:/oidc-callback"
DEFAULT_SCOPES = "openid profile"
# Who redeems the code (`--oidc-validation`), and the name the browser's flow had before.
VALIDATION_MODES = ("browser", "back-channel")
VALIDATION_ALIASES = {"service": "browser"}
VALIDATIONS = (*VALIDATION_MODES, *VALIDATION_ALIASES)  # what --oidc-validation accepts
TOKEN_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10  # within the provider, between its pages


@dataclass
class Provider:
    """An OpenID Provider's metadata and keys, as read once per process (discovery, JWKS)."""

    metadata: dict[str, Any]
    keys: KeySet | None = None

    @property
    def algorithms(self) -> list[str]:
        return list(self.metadata.get("id_token_signing_alg_values_supported") or ["RS256"])


# Per process, by issuer: a browser's relying party reads them once, not at every login.
_providers: dict[str, Provider] = {}


class OidcClient(PlatformClient):
    """Logs people in through an OpenID Provider and reads one page (`home_url`; default: the provider's
    userinfo with the access token when the client holds one, else its metadata). Subclass it for a platform
    behind OpenID Connect: the login comes with it, write the platform's pages."""

    reads_settings = frozenset({"home_url"})

    sso = "oidc"

    def __init__(self, context: ClientContext) -> None:
        super().__init__(context)
        settings, target = context.settings, (context.http.base_url or "").rstrip("/")
        self.settings = settings
        self.issuer = (settings.oidc_issuer or f"{target}{DEFAULT_ISSUER_PATH}").rstrip("/")
        self.login_url = settings.oidc_login_url or f"{target}{DEFAULT_LOGIN_PATH}"
        self.client_id = settings.oidc_client_id or DEFAULT_CLIENT_ID
        self.redirect_uri = settings.oidc_redirect_uri or DEFAULT_REDIRECT_URI
        self.token_auth = settings.oidc_token_auth or ("client_secret_basic" if settings.oidc_client_secret else "none")
        self.validation = VALIDATION_ALIASES.get(settings.oidc_validation, settings.oidc_validation)
        self.tokens: dict[str, Any] = {}  # the token response of the back channel
        self._back_channel: Any = None

    # ---- the login ----------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        self.tokens = {}
        who = {"username": username}  # the request events' context: which account failed (never its password)
        request = self._service_request(who) if self.validation == "browser" else self._own_request()
        form, username_field, password_field = self._login_form(request.authorize_url, who)
        fields = {**form.hidden, username_field: username, password_field: password}
        callback = self._submit(form.action, fields, request, who)
        if self.validation == "browser":
            self._callback(callback, who)
        else:
            self._redeem(parse_qs(urlsplit(callback).query)["code"][0], request, username, who)

    def _service_request(self, who: dict[str, str]) -> AuthorizationRequest:
        """The service starts the flow: its redirect to the provider names its redirect URI and state."""
        with self.http.get(
            self.login_url, name=self.name("sso: start login"), allow_redirects=False, catch_response=True, context=who
        ) as response:
            location = _location(response)
            query = parse_qs(urlsplit(location or "").query)
            status = response.status_code
            if is_http_error(status):
                fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status}")
            if status not in REDIRECTS or not location or "redirect_uri" not in query:
                detail = f"HTTP {status} at the service's login URL, not a redirect to the OpenID Provider"
                fail_login(response, LoginFailure.FORM_NOT_FOUND, detail)
        state = query.get("state", [""])[0]
        return AuthorizationRequest(urljoin(self.login_url, location), query["redirect_uri"][0], state)

    def _own_request(self) -> AuthorizationRequest:
        """The client is the relying party: its own authorization request, with PKCE."""
        provider = self.provider(at_login=True)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        request = AuthorizationRequest(
            "", self.redirect_uri, secrets.token_urlsafe(24), nonce=secrets.token_urlsafe(24), verifier=verifier
        )
        parameters = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.settings.oidc_scopes,
            "state": request.state,
            "nonce": request.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        endpoint = str(provider.metadata["authorization_endpoint"])
        separator = "&" if "?" in endpoint else "?"
        request.authorize_url = f"{endpoint}{separator}{urlencode(parameters)}"
        return request

    def _login_form(self, url: str, who: dict[str, str]) -> tuple[LoginForm, str, str]:
        """The login page the authorization endpoint leads to, through the provider's own redirects, and the
        names of its username and password fields (the settings', else the form's)."""
        name = self.name("sso: login form")
        for _ in range(MAX_REDIRECTS):
            with self.http.get(url, name=name, allow_redirects=False, catch_response=True, context=who) as response:
                location, status = _location(response), response.status_code
                if status in REDIRECTS and location:
                    url, name = urljoin(url, location), self.name("sso: login redirect")
                    continue
                if is_http_error(status):
                    fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status}")
                form = parse_login_form(response.text or "", url) if status == 200 else None
                if form is None:
                    detail = f"HTTP {status}" if status != 200 else "no form with a password input"
                    fail_login(response, LoginFailure.FORM_NOT_FOUND, detail)
                settings = self.settings
                fields = credential_fields(
                    response, form, settings.oidc_username_field, settings.oidc_password_field, "--oidc"
                )
                return form, *fields
        raise StepFailed(f"login: {LoginFailure.FORM_NOT_FOUND} (more than {MAX_REDIRECTS} redirects)")

    def _submit(self, action: str, fields: dict[str, str], request: AuthorizationRequest, who: dict[str, str]) -> str:
        """POST the credentials; returns the redirect URI, with its code, the provider sends the browser back to
        (perhaps through pages of its own)."""
        name, method, url, data = self.name("sso: submit credentials"), "POST", action, fields
        for _ in range(MAX_REDIRECTS):
            with self.http.request(
                method, url, data=data, name=name, allow_redirects=False, catch_response=True, context=who
            ) as response:
                location, status = _location(response), response.status_code
                if status not in REDIRECTS or not location:
                    fail_login(response, *refused_submission(status, response.text or "" if status == 200 else ""))
                url = urljoin(url, location)
                if url.startswith(request.redirect_uri):
                    _check_callback(response, url, request.state)
                    return url
            name, method, data = self.name("sso: login redirect"), "GET", None
        raise StepFailed(f"login: {LoginFailure.NO_TICKET} (more than {MAX_REDIRECTS} redirects)")

    def _callback(self, url: str, who: dict[str, str]) -> Any:
        """Follow the redirect: the service redeems the code and opens its session. Returns its JSON body, or
        None when it is not JSON (an HTML landing page)."""
        target = urlsplit(url)
        path = f"{target.path}?{target.query}" if _same_origin(url, self.http.base_url) else url
        with self.http.get(path, name=self.name("sso: code callback"), catch_response=True, context=who) as response:
            status = response.status_code
            if is_http_error(status):
                fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status}")
            if not 200 <= status < 300:
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, f"the service answered HTTP {status}")
            try:
                return response.json()
            except ValueError:
                return None

    def _redeem(self, code: str, request: AuthorizationRequest, username: str, who: dict[str, str]) -> None:
        """Back channel: the code and its verifier for tokens at the token endpoint; the ID token verified."""
        provider = self.provider(at_login=True)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "code_verifier": request.verifier,
        }
        headers: dict[str, str] = {}
        secret = self.settings.oidc_client_secret
        if self.token_auth == "client_secret_basic":
            credentials = f"{quote(self.client_id, safe='')}:{quote(secret, safe='')}"  # RFC 6749 section 2.3.1
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        else:
            form["client_id"] = self.client_id
            if self.token_auth == "client_secret_post":
                form["client_secret"] = secret
        with self.back_channel().post(
            str(provider.metadata["token_endpoint"]),
            data=form,
            headers=headers,
            name=self.name("sso: redeem code"),
            catch_response=True,
            context=who,
        ) as response:
            body, status = _json_of(response), response.status_code
            if is_http_error(status):
                fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status}")
            if status != 200 or not isinstance(body, dict) or "id_token" not in body:
                error = body.get("error") if isinstance(body, dict) else None
                detail = f"HTTP {status}, no ID token: {error or 'not a token response'}"
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, detail)
            try:
                claims = self._verified(body, request.nonce, provider)
            except InvalidIdToken as refused:
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, f"ID token refused: {refused}")
            if claims.get("preferred_username", username) != username:
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, "the ID token names another user")
        self.tokens = body

    def _verified(self, body: dict[str, Any], nonce: str, provider: Provider) -> dict[str, Any]:
        """The ID token's claims; the JWKS read again once if no key of it verifies (the provider rotated)."""
        for fresh in (False, True):
            keys = self._keys(provider, fresh)
            try:
                return verify_id_token(
                    str(body["id_token"]),
                    keys,
                    issuer=str(provider.metadata["issuer"]),
                    client_id=self.client_id,
                    nonce=nonce,
                    access_token=body.get("access_token"),
                    algorithms=provider.algorithms,
                )
            except InvalidIdToken as refused:
                if fresh or not str(refused).startswith("signature"):
                    raise
        raise AssertionError("unreachable")

    # ---- the provider's metadata and keys -----------------------------------------------------------

    def provider(self, at_login: bool = False) -> Provider:
        """The provider's metadata (OpenID Connect Discovery 1.0), read once per process; a failure to read them
        `at_login` is a failed login (classified), else a failed step."""
        known = _providers.get(self.issuer)
        if known is not None:
            return known
        with self.back_channel().get(
            f"{self.issuer}/.well-known/openid-configuration", name=self.name("sso: discovery"), catch_response=True
        ) as response:
            metadata, status = _json_of(response), response.status_code
            kind = LoginFailure.HTTP_ERROR if is_http_error(status) else LoginFailure.FORM_NOT_FOUND
            if status != 200 or not isinstance(metadata, dict):
                self._fail_provider(response, at_login, kind, f"HTTP {status}, no provider metadata")
            if metadata.get("issuer") != self.issuer:  # Discovery 1.0 section 4.3
                self._fail_provider(response, at_login, kind, "the provider's metadata names another issuer")
        provider = _providers.setdefault(self.issuer, Provider(metadata))
        return provider

    @staticmethod
    def _fail_provider(response: Any, at_login: bool, kind: LoginFailure, detail: str) -> NoReturn:
        if at_login:
            fail_login(response, kind, detail)
        response.failure(detail)
        raise StepFailed(f"OpenID Provider metadata unusable ({detail})")

    def _keys(self, provider: Provider, fresh: bool) -> KeySet:
        if provider.keys is not None and not fresh:
            return provider.keys
        with self.back_channel().get(
            str(provider.metadata["jwks_uri"]), name=self.name("sso: jwks"), catch_response=True
        ) as response:
            status = response.status_code
            if is_http_error(status):
                fail_login(response, LoginFailure.HTTP_ERROR, f"HTTP {status} at the provider's keys")
            try:
                provider.keys = KeySet.import_key_set(response.json())
            except (ValueError, TypeError, KeyError):
                detail = f"HTTP {status}, no JWK Set to check the ID token with"
                fail_login(response, LoginFailure.TICKET_VALIDATION_FAILED, detail)
        return provider.keys

    def back_channel(self) -> Any:
        """The client's own connection to the provider (server to server), opened once per session."""
        if self._back_channel is None:
            self._back_channel = self.context.open_connection() if self.context.open_connection else self.http
        return self._back_channel

    # ---- the rest -----------------------------------------------------------------------------------

    def logout(self) -> None:
        endpoint = self.provider().metadata.get("end_session_endpoint")
        if not endpoint:
            return  # the provider has no logout: forgetting the tokens is all there is to do
        parameters = {"client_id": self.client_id}
        if "id_token" in self.tokens:
            parameters["id_token_hint"] = str(self.tokens["id_token"])
        with self.http.get(
            f"{endpoint}?{urlencode(parameters)}", name=self.name("sso: logout"), catch_response=True
        ) as response:
            if response.status_code >= 400 or response.status_code == 0:
                response.failure(f"HTTP {response.status_code}")
                raise StepFailed("logout failed")
        self.tokens = {}

    def bearer(self) -> dict[str, str]:
        """The headers of a page request: the access token as a bearer when the client holds one (back channel:
        an app calls its platform's API so, having no session cookie of the service's)."""
        token = self.tokens.get("access_token")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def dashboard(self) -> Dashboard:
        headers = self.bearer()
        if self.settings.home_url:
            url = self.settings.home_url
        elif headers:
            url = str(self.provider().metadata.get("userinfo_endpoint") or self.issuer)
        else:
            url = f"{self.issuer}/.well-known/openid-configuration"
        with self.http.get(url, headers=headers, name=self.name("home"), catch_response=True) as response:
            if not 200 <= response.status_code < 300:
                response.failure(f"HTTP {response.status_code}")
                raise StepFailed("home page unavailable")
        return Dashboard(role=self.role)


@dataclass
class AuthorizationRequest:
    authorize_url: str
    redirect_uri: str
    state: str
    nonce: str = ""
    verifier: str = ""


def _check_callback(response: Any, url: str, state: str) -> None:
    """The redirect to the relying party: a code, and the state it sent (else the response failed)."""
    query = parse_qs(urlsplit(url).query)
    if "error" in query:
        fail_login(response, LoginFailure.NO_TICKET, f"the provider answered {query['error'][0]}")
    if "code" not in query or query.get("state", [""])[0] != state:
        fail_login(response, LoginFailure.NO_TICKET, "redirect without a code, or with another state")


def _location(response: Any) -> str | None:
    return response.headers.get("location") if response.headers else None


def _json_of(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _same_origin(url: str, base_url: str | None) -> bool:
    first, second = urlsplit(url), urlsplit(base_url or "")
    return (first.scheme, first.netloc) == (second.scheme, second.netloc)
