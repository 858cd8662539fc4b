"""What the OpenID Provider (`--sso oidc`) is made of beyond the settings, made once when the server starts and
shared by its worker processes: its issuer, its RS256 signing key, and its two registered clients.

- the ENT's web site, `ent`: a confidential client (client_secret_basic or client_secret_post), redirected to its
  callback `/ent/auth/oidc/callback` at each base URL the ENT is reached by (the bound address and each
  `--public-url`, as CAS registers its service);
- the ENT's mobile app, `ent-mobile`: a public client (no secret: PKCE alone protects its codes), redirected to a
  custom-scheme URI (an app, not a web page). A load generator redeeming its codes itself (OidcClient's back
  channel) logs in as this app.

The key and the ENT's secret are random at each start, written (mode 0600) in the server's state folder, never
logged; the workers and PlatformProcess (tests) read them from that file. Codes, tokens and the ENT's logins
in progress live in the database, like CAS tickets, so any worker may redeem what another issued.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

from schoolsurge.platform.security import normalize_service, run_state_dir, write_private_file

ISSUER_PATH = "/oidc"
ENT_CALLBACK_PATH = "/ent/auth/oidc/callback"
ENT_CLIENT_ID = "ent"
MOBILE_CLIENT_ID = "ent-mobile"
MOBILE_REDIRECT_URI = "fr.schoolsurge.ent:/oidc-callback"
PROVIDER_FILE = "oidc-provider.json"
SIGNING_KEY_BITS = 2048


def provider_file(db_path: Path) -> Path:
    """Where the server holding db_path keeps its provider's key and the ENT's secret."""
    return run_state_dir(db_path) / PROVIDER_FILE


@dataclass(frozen=True)
class ProviderConfig:
    """The provider as every worker sees it."""

    issuer: str  # BASE/oidc, BASE the first public URL if any, else the bound address
    ent_redirect_uris: tuple[str, ...]  # the ENT's callback at each of its base URLs, the issuer's first
    signing_key: dict[str, Any]  # the private RSA key, as a JWK
    ent_client_secret: str

    @classmethod
    def create(cls, ent_base_urls: Iterable[str]) -> ProviderConfig:
        """A new provider for an ENT reached at these base URLs, the first of them its issuer's."""
        bases = [url.rstrip("/") for url in ent_base_urls]
        key = RSAKey.generate_key(SIGNING_KEY_BITS, private=True)
        return cls(
            issuer=bases[0] + ISSUER_PATH,
            ent_redirect_uris=tuple(dict.fromkeys(normalize_service(base + ENT_CALLBACK_PATH) for base in bases)),
            signing_key=key.as_dict(private=True),
            ent_client_secret=secrets.token_urlsafe(32),
        )

    def write(self, path: Path) -> None:
        write_private_file(path, json.dumps(self.__dict__))

    @classmethod
    def read(cls, path: Path) -> ProviderConfig:
        data = json.loads(Path(path).read_text())
        return cls(data["issuer"], tuple(data["ent_redirect_uris"]), data["signing_key"], data["ent_client_secret"])
