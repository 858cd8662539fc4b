"""The platform client a run chose and how it is configured: the class (`--client package.module:Class`, default
the embedded platform's client for `--sso`), its ClientSettings (the CAS and OpenID Connect settings, the largest
response body) and the `--client-option KEY=VALUE` pairs, which the class parses by the keys it declares. The
options themselves are the option table's (options.py, section CLIENT: each names the ClientSettings field it
sets); spec.py turns parsed options into a ClientChoice, which the run spec carries to every Locust process."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from schoolsurge.clients.base import ClientSettings, PlatformClient
from schoolsurge.errors import ClientError, UnsafeTargetError
from schoolsurge.safety import check_target

# The embedded platform's client for each single sign-on protocol.
DEFAULT_CLIENTS = {
    "cas": "schoolsurge.clients.reference:ReferencePlatformClient",
    "oidc": "schoolsurge.clients.reference:ReferenceOidcClient",
}
# Requested by the client, so checked like the target.
URL_FIELDS = frozenset({"cas_url", "service_url", "home_url", "oidc_issuer", "oidc_login_url", "oidc_redirect_uri"})
# Settings only some clients read (PlatformClient.reads_settings), each with the clients that do: given to another
# client, they are refused before the run (spec.py), never ignored.
PAGE_SETTINGS = {
    "home_url": "schoolsurge.clients.cas:CasClient or schoolsurge.clients.oidc:OidcClient",
    "journey_map": "schoolsurge.clients.web:WebClient",
}
# What the options may set directly (--client-option pairs are parsed by the client class, into `options`).
SETTINGS_FIELDS = frozenset(f.name for f in dataclasses.fields(ClientSettings)) - {"options"}


@dataclass(frozen=True)
class ClientChoice:
    """The client a run uses, as its options chose it: the class (None: the embedded platform's client for
    `settings.sso`), its settings, and the --client-option KEY=VALUE pairs, which the class parses."""

    client: str | None = None
    settings: ClientSettings = ClientSettings()
    options: tuple[str, ...] = ()

    def configured(self) -> tuple[type[PlatformClient], ClientSettings]:
        """The client class and its settings, each checked as the client will use it; ClientError names the first
        thing that cannot be used."""
        client_class = load_client_class(self.client, self.settings.sso)
        return client_class, replace(self.settings, options=_client_options(self.options, client_class))


def check_client_url(flag: str, url: str, allow_host: str | None) -> None:
    """A URL the client will request (URL_FIELDS), checked like the target; ClientError names its option."""
    try:
        check_target(url, allow_host)
    except UnsafeTargetError as error:
        raise ClientError(f"{flag}: {error}") from None


def _client_options(pairs: Sequence[str], client_class: type[PlatformClient]) -> dict[str, Any]:
    """Each KEY=VALUE parsed by the client's declared type, or ClientError naming the pair and what to do."""
    declared = client_class.option_types
    known = ", ".join(sorted(declared)) or "none"
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ClientError(f"--client-option {pair!r}: expected KEY=VALUE")
        if key not in declared:
            raise ClientError(
                f"--client-option {key}: not an option of {client_class.__name__} (its options: {known}); "
                "declare it in the client's option_types"
            )
        try:
            parsed[key] = declared[key](text)
        except ValueError as error:
            name = client_class.__name__
            raise ClientError(f"--client-option {pair!r}: not a value {name} takes ({error})") from None
    return parsed


def load_client_class(spec: str | None, sso: str | None = None) -> type[PlatformClient]:
    """The PlatformClient subclass named package.module:Class (default: the embedded platform's for `sso`);
    ClientError says what is wrong, or that it speaks another single sign-on protocol than `sso`."""
    spec = spec or DEFAULT_CLIENTS[sso or "cas"]
    module_name, separator, class_name = spec.partition(":")
    if not separator or not module_name or not class_name:
        raise ClientError(f"--client {spec!r}: expected package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ClientError(f"--client {spec!r}: cannot import {module_name} ({error}); is it on PYTHONPATH?") from None
    client_class = getattr(module, class_name, None)
    if not (isinstance(client_class, type) and issubclass(client_class, PlatformClient)):
        raise ClientError(f"--client {spec!r}: {class_name} is not a PlatformClient subclass in {module_name}")
    if getattr(client_class, "__abstractmethods__", None):
        missing = ", ".join(sorted(client_class.__abstractmethods__))
        raise ClientError(f"--client {spec!r}: {class_name} does not write {missing} (see PlatformClient)")
    speaks = getattr(client_class, "sso", None)
    if sso is not None and speaks is not None and speaks != sso:
        raise ClientError(f"--client {spec!r}: {class_name} logs in by {speaks}, not by --sso {sso}")
    return client_class
