"""ID token validation, as OpenID Connect Core 1.0 section 3.1.3.7 asks of a relying party: the signature by a
key of the provider's JWKS (an algorithm it announced, never `none`), `iss` the provider's issuer, `aud` this
client (with `azp` when there are several audiences), `exp` not passed, `nonce` the one sent, and `at_hash` the
access token's. Shared by both relying parties of this project: the embedded ENT (platform/ent_oidc.py) and the
load generator's OidcClient (clients/oidc.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

DEFAULT_ALGORITHMS = ("RS256",)
CLOCK_LEEWAY_S = 30  # clocks of the provider and the client may disagree by this much


class InvalidIdToken(ValueError):
    """The ID token is not to be trusted; the message says why, in one line."""


def verify_id_token(
    id_token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str | None = None,
    algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
) -> dict[str, Any]:
    """The ID token's claims once every check passed; InvalidIdToken naming the first that failed."""
    allowed = [name for name in algorithms if name.lower() != "none"]
    try:
        token = jwt.decode(id_token, keys, algorithms=allowed)
    except (JoseError, ValueError) as error:
        raise InvalidIdToken(f"signature not verified ({error})") from None
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={"iss": {"essential": True, "value": issuer}, "aud": {"essential": True, "value": client_id}},
        params={"nonce": nonce, "client_id": client_id, "access_token": access_token},
    )
    try:
        claims.validate(leeway=CLOCK_LEEWAY_S)
    except JoseError as error:
        raise InvalidIdToken(f"claims refused ({error})") from None
    return dict(claims)
