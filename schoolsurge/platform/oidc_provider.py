"""The OpenID Provider of `--sso oidc`: OpenID Connect Core 1.0's authorization code flow, on authlib's
server-side components. authlib's own integrations are Flask's and Django's; for FastAPI this module writes the
small adapters authlib asks a framework for (`create_oauth2_request`, `handle_response`), and the models and
storage it leaves to the application, in SQLite so that every worker process sees them.

What authlib does here: validating authorization requests (client, redirect_uri, response_type, scope, nonce,
prompt) and token requests (client authentication by client_secret_basic, client_secret_post or none; code,
redirect_uri), PKCE (RFC 7636; here required, S256 only), ID tokens (signed RS256 with the key of
oidc_config.py), bearer access tokens and their validation at userinfo, RP-initiated logout's id_token_hint, and
the errors' shapes (RFC 6749 section 5.2, redirects with `error` and `state`).

What this module adds: the registered clients (oidc_config.py), codes bound to client, redirect_uri and PKCE
challenge, single-use across workers (redeemed by one atomic UPDATE) and short-lived (`code_ttl`), a code used
twice revoking the tokens issued from it (RFC 6749 section 4.1.2); the subject is the account's username.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    ResourceProtector,
    TokenMixin,
)
from authlib.oauth2.rfc6749 import grants as oauth2_grants
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, UserInfo
from authlib.oidc.rpinitiated import EndSessionEndpoint
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from joserfc.jwk import KeySet, RSAKey

from schoolsurge.platform.core import Account, Platform
from schoolsurge.platform.oidc_config import ENT_CLIENT_ID, MOBILE_CLIENT_ID, MOBILE_REDIRECT_URI, ProviderConfig
from schoolsurge.platform.security import same_secret, token_hash

SIGNING_ALG = "RS256"
SCOPES = ("openid", "profile")  # others requested are ignored (OpenID Connect Core section 3.1.2.1)
ID_TOKEN_TTL_S = 300
ACCESS_TOKEN_TTL_S = 3600
CLAIMS = ("sub", "name", "preferred_username")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


# ---- requests and responses: the adapters authlib asks of a framework ------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """What authlib reads of a request: its method, URL and headers, its query and its (already parsed) form."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    form: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, request: Request, form: Mapping[str, str | None] | None = None) -> HttpRequest:
        """A FastAPI request, with the form fields its endpoint declared (None: not sent)."""
        sent = {name: value for name, value in (form or {}).items() if value is not None}
        return cls(request.method, str(request.url), request.headers, request.query_params.multi_items(), sent)


class _Payload(OAuth2Payload):
    def __init__(self, request: HttpRequest) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in [*request.query, *request.form.items()]:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class PlatformOAuth2Request(OAuth2Request):
    """authlib's request, read from an HttpRequest. Its constructor refuses (InsecureTransportError, an
    OAuth2Error) a URL neither https nor on loopback: OAuth 2.0 requires TLS."""

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        self._request = request
        self.payload = _Payload(request)

    @property
    def args(self) -> dict[str, str]:
        return dict(self._request.query)

    @property
    def form(self) -> Mapping[str, str]:
        return self._request.form


def to_response(status: int, body: Any, headers: Sequence[tuple[str, str]]) -> Response:
    """authlib's (status, body, headers) as a Starlette response."""
    if isinstance(body, dict):
        return JSONResponse(body, status_code=status, headers=dict(headers))
    return Response(body or b"", status_code=status, headers=dict(headers))


# ---- models ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):
    client_id: str
    redirect_uris: frozenset[str]
    auth_methods: frozenset[str]  # at the token endpoint
    secret_hash: str | None = None  # None: a public client

    @property
    def client_metadata(self) -> dict[str, Any]:
        return {}  # no post_logout_redirect_uris: logging out ends on the provider's page

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # every request names its redirect_uri (OpenID Connect requires it)

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = scope_to_list(scope or "") or []
        if "openid" not in requested:
            return None  # an OpenID Provider only: invalid_scope
        return " ".join(name for name in SCOPES if name in requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string comparison (OAuth 2.1, RFC 9700 section 4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and same_secret(token_hash(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint != "token" or method in self.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class IssuedCode(AuthorizationCodeMixin):
    code_hash: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    account_id: int
    auth_time: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]  # RFC 8176: a password


@dataclass(frozen=True)
class AccessToken(TokenMixin):
    client: RegisteredClient
    account: Account
    scope: str
    expires_at: float

    def check_client(self, client: ClientMixin) -> bool:
        return client.get_client_id() == self.client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return False  # a revoked token's row is gone

    def get_user(self) -> Account:
        return self.account

    def get_client(self) -> RegisteredClient:
        return self.client


# ---- grants and extensions ------------------------------------------------------------------------------


class CodeGrant(oauth2_grants.AuthorizationCodeGrant):
    """The authorization code grant, its codes in the database (OidcProvider's)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: OidcServer

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.provider.save_code(code, request)

    def query_authorization_code(self, code: str, client: RegisteredClient) -> IssuedCode | None:
        return self.server.provider.redeem_code(code, client)

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        pass  # used up when redeemed, whatever came after

    def authenticate_user(self, authorization_code: IssuedCode) -> Account | None:
        return self.server.provider.platform.account_by_id(authorization_code.account_id)


class RequiredPkce(CodeChallenge):
    """PKCE for every client, public or not, and only S256: a `plain` challenge is the verifier itself."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE (RFC 7636) is required")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class IdTokens(OpenIDCode):
    """OpenID Connect on the code grant: an ID token with the access token, signed by the provider's key."""

    def __init__(self, provider: OidcProvider) -> None:
        super().__init__(require_nonce=False)  # optional in the code flow (OpenID Connect Core 3.1.2.1)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.provider.nonce_in_use(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: RegisteredClient) -> RSAKey:
        return self.provider.signing_key

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return SIGNING_ALG

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        return {"alg": SIGNING_ALG, "kid": self.provider.key_id}

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.provider.issuer, "aud": client.client_id, "iat": now, "exp": now + ID_TOKEN_TTL_S}

    def generate_user_info(self, user: Account, scope: str) -> UserInfo:
        return user_info(user, scope)


def user_info(account: Account, scope: str) -> UserInfo:
    """The claims of an account a scope grants: `sub` (the username), and with `profile` its names."""
    claims = UserInfo(sub=account.username, name=account.display_name, preferred_username=account.username)
    return claims.filter(scope)


class EndSession(EndSessionEndpoint):
    """RP-initiated logout: validates an id_token_hint against the provider's own keys."""

    server: OidcServer

    def get_server_jwks(self) -> KeySet:
        return self.server.provider.public_keys

    def end_session(self, end_session_request: Any) -> None:
        pass  # the route ends the ENT session (its cookie is the route's to drop)


class BearerTokens(BearerTokenValidator):
    def __init__(self, provider: OidcProvider) -> None:
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return self.provider.access_token(token_string)


class OidcServer(AuthorizationServer):
    """authlib's authorization server, for FastAPI: requests come as HttpRequest, responses go as Starlette's."""

    def __init__(self, provider: OidcProvider) -> None:
        super().__init__()
        self.provider = provider
        self.register_token_generator(
            "default", BearerTokenGenerator(lambda **_: generate_token(42), expires_generator=ACCESS_TOKEN_TTL_S)
        )
        self.register_grant(CodeGrant, [RequiredPkce(required=True), IdTokens(provider)])
        self.register_endpoint(EndSession)

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self.provider.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.save_token(token, request)

    def create_oauth2_request(self, request: HttpRequest | OAuth2Request) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else PlatformOAuth2Request(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no endpoint of this provider takes JSON")

    def handle_response(self, status: int, body: Any, headers: Sequence[tuple[str, str]]) -> Response:
        return to_response(status, body, headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass  # nobody listens


# ---- the provider ---------------------------------------------------------------------------------------


class OidcProvider:
    """One worker's OpenID Provider: its clients, keys and the state it keeps in the platform's database."""

    def __init__(self, platform: Platform, config: ProviderConfig) -> None:
        self.platform = platform
        self.issuer = config.issuer
        self.signing_key = RSAKey.import_key(config.signing_key)
        self.key_id = self.signing_key.thumbprint()
        public = self.signing_key.as_dict(private=False)
        self.jwks: dict[str, Any] = {"keys": [{**public, "kid": self.key_id, "use": "sig", "alg": SIGNING_ALG}]}
        self.public_keys = KeySet.import_key_set(self.jwks)
        self.ent_redirect_uris = config.ent_redirect_uris
        self.clients = {
            ENT_CLIENT_ID: RegisteredClient(
                ENT_CLIENT_ID,
                frozenset(config.ent_redirect_uris),
                frozenset({"client_secret_basic", "client_secret_post"}),
                token_hash(config.ent_client_secret),
            ),
            MOBILE_CLIENT_ID: RegisteredClient(MOBILE_CLIENT_ID, frozenset({MOBILE_REDIRECT_URI}), frozenset({"none"})),
        }
        self.ent_client_secret = config.ent_client_secret  # the ENT's own, to redeem its codes (ent_oidc.py)
        self.server = OidcServer(self)
        self.resource_protector = ResourceProtector()
        self.resource_protector.register_token_validator(BearerTokens(self))

    def endpoint(self, name: str) -> str:
        return f"{self.issuer}/{name}"

    def discovery(self) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0, section 3."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("jwks"),
            "end_session_endpoint": self.endpoint("logout"),
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "token_endpoint_auth_methods_supported": list(CodeGrant.TOKEN_ENDPOINT_AUTH_METHODS),
            "code_challenge_methods_supported": list(RequiredPkce.SUPPORTED_CODE_CHALLENGE_METHOD),
            "claims_supported": [*CLAIMS, "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash"],
            "prompt_values_supported": ["none", "login"],
        }

    # ---- codes ------------------------------------------------------------------------------------------

    def save_code(self, code: str, request: OAuth2Request) -> None:
        data, now = request.payload.data, time.time()
        self.platform.connection().execute(
            "INSERT INTO oidc_codes (code_hash, client_id, redirect_uri, scope, nonce, code_challenge,"
            " code_challenge_method, account_id, auth_time, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash(code),
                request.client.get_client_id(),
                request.payload.redirect_uri,
                request.scope,
                data.get("nonce"),
                data["code_challenge"],
                data["code_challenge_method"],
                request.user.id,
                now,
                now,
            ),
        )

    def redeem_code(self, code: str, client: RegisteredClient) -> IssuedCode | None:
        """Use a code up: what it was issued with if it is unused, unexpired and this client's, else None. A code
        already used revokes the tokens issued from it (it may have been stolen)."""
        connection, key, now = self.platform.connection(), token_hash(code), time.time()
        # fetchall() finishes the statement so the update commits now: two workers cannot both redeem a code.
        rows = connection.execute(
            "UPDATE oidc_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL RETURNING client_id,"
            " redirect_uri, scope, nonce, code_challenge, code_challenge_method, account_id, auth_time, created_at",
            (now, key),
        ).fetchall()
        if not rows:
            connection.execute("DELETE FROM oidc_tokens WHERE code_hash = ?", (key,))
            return None
        *issued, created_at = rows[0]
        if now - created_at > self.platform.settings.code_ttl or issued[0] != client.get_client_id():
            return None
        return IssuedCode(key, *issued)

    def nonce_in_use(self, client_id: str | None, nonce: str) -> bool:
        """Is a code of this client still outstanding for this nonce? (A replayed authentication request.)"""
        row = (
            self.platform.connection()
            .execute("SELECT 1 FROM oidc_codes WHERE client_id = ? AND nonce = ? LIMIT 1", (client_id, nonce))
            .fetchone()
        )
        return row is not None

    # ---- access tokens ----------------------------------------------------------------------------------

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.platform.connection().execute(
            "INSERT INTO oidc_tokens (token_hash, code_hash, client_id, account_id, scope, issued_at, expires_in)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                token_hash(token["access_token"]),
                request.authorization_code.code_hash,
                request.client.get_client_id(),
                request.user.id,
                token.get("scope", ""),
                time.time(),
                token["expires_in"],
            ),
        )

    def access_token(self, value: str) -> AccessToken | None:
        row = (
            self.platform.connection()
            .execute(
                "SELECT client_id, account_id, scope, issued_at + expires_in FROM oidc_tokens WHERE token_hash = ?",
                (token_hash(value),),
            )
            .fetchone()
        )
        if row is None or (client := self.clients.get(row[0])) is None:
            return None
        account = self.platform.account_by_id(row[1])
        return None if account is None else AccessToken(client, account, row[2], row[3])
