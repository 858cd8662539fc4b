"""The ENT as an OpenID Connect relying party (`--sso oidc`), as a real ENT signs its users in through its
region's provider: the authorization code flow with PKCE, the code redeemed server side.

1. `start_login`: a browser asks the ENT to log in; the ENT makes a `state` (bound to that browser by the
   `ent_oidc_login` cookie), a `nonce` and a PKCE verifier, keeps them, and sends the browser to the provider's
   authorization endpoint with its client id, callback and S256 challenge.
2. `finish_login`: the browser comes back to the callback with `code` and `state`. The ENT uses the state up
   (unknown, used, expired or another browser's: refused), redeems the code at the token endpoint with its
   client secret and verifier, verifies the ID token (id_tokens.py: signature, iss, aud, nonce, exp, at_hash)
   and opens the session of its subject.

The token request is made in process, through the very token endpoint code clients reach over HTTP (as the
CAS callback validates its ticket in process): same client authentication, same single use of the code.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from schoolsurge.id_tokens import InvalidIdToken, verify_id_token
from schoolsurge.platform.core import Account, Platform
from schoolsurge.platform.oidc_config import ENT_CLIENT_ID, ISSUER_PATH
from schoolsurge.platform.oidc_provider import SCOPES, HttpRequest, OidcProvider
from schoolsurge.platform.security import same_secret, token, token_hash


@dataclass(frozen=True)
class LoginRefused:
    """Why the callback opened no session, in one line."""

    reason: str


def start_login(platform: Platform, provider: OidcProvider, browser: str, redirect_uri: str) -> str:
    """Keep a new login's state for the browser whose `ent_oidc_login` cookie is `browser`; returns where to
    send it: the provider's authorization endpoint, on the origin the browser reached the ENT by."""
    state, nonce, verifier = token(), token(), secrets.token_urlsafe(48)  # a verifier of 64 characters
    platform.connection().execute(
        "INSERT INTO ent_oidc_logins (state, browser_hash, nonce, code_verifier, redirect_uri, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (state, token_hash(browser), nonce, verifier, redirect_uri, time.time()),
    )
    request = {
        "response_type": "code",
        "client_id": ENT_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": " ".join(SCOPES),
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return f"{ISSUER_PATH}/authorize?{urlencode(request)}"


def finish_login(
    platform: Platform, provider: OidcProvider, state: str, code: str, browser: str | None
) -> Account | LoginRefused:
    """The account the provider vouches for, or why not."""
    # fetchall() finishes the statement so the delete commits now: a state serves once.
    rows = (
        platform.connection()
        .execute(
            "DELETE FROM ent_oidc_logins WHERE state = ? RETURNING browser_hash, nonce, code_verifier, redirect_uri,"
            " created_at",
            (state,),
        )
        .fetchall()
    )
    if not rows or browser is None:
        return LoginRefused("unknown login state (used, or never sent to this browser)")
    browser_hash, nonce, verifier, redirect_uri, created_at = rows[0]
    if time.time() - created_at > platform.settings.login_flow_ttl or not same_secret(
        token_hash(browser), browser_hash
    ):
        return LoginRefused("login state expired or opened in another browser")
    try:
        response = provider.server.create_token_response(_token_request(provider, code, redirect_uri, verifier))
    except OAuth2Error as error:  # an insecure transport (authlib's check, before its own error handling)
        return LoginRefused(f"code not redeemed ({error.error})")
    body = json.loads(response.body)
    if response.status_code != 200:
        return LoginRefused(f"code refused by the provider ({body.get('error', response.status_code)})")
    try:
        claims = verify_id_token(
            body["id_token"],
            provider.public_keys,
            issuer=provider.issuer,
            client_id=ENT_CLIENT_ID,
            nonce=nonce,
            access_token=body["access_token"],
        )
    except InvalidIdToken as error:
        return LoginRefused(f"ID token refused: {error}")
    account = platform.account_by_username(str(claims["sub"]))
    return account if account is not None else LoginRefused("no such account")


def _token_request(provider: OidcProvider, code: str, redirect_uri: str, verifier: str) -> HttpRequest:
    """The ENT's token request, authenticated by client_secret_basic (RFC 6749 section 2.3.1)."""
    credentials = f"{quote(ENT_CLIENT_ID, safe='')}:{quote(provider.ent_client_secret, safe='')}"
    basic = base64.b64encode(credentials.encode()).decode()
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    return HttpRequest("POST", provider.endpoint("token"), {"Authorization": f"Basic {basic}"}, form=form)
