"""The CAS service registry: the only URLs this server hands service tickets to.

A CAS server that redirects with a ticket to whatever `service` a link names gives every ticket away: an
attacker sends people to /cas/login?service=http://evil.example/... and collects theirs. So tickets go only
to registered services:

- the ENT's own callback, at the URL the server is bound to and at each `--public-url` it is reached by;
- other services, named one by one (`--service URL`, or SCHOOLSURGE_SERVICES, comma-separated), which redeem
  their tickets at /cas/serviceValidate.

Services are compared after normalize_service (scheme and host case, default port) and otherwise exactly:
no prefixes, no patterns. The ENT callback accepts only tickets issued for one of its own callback URLs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from schoolsurge.platform.security import normalize_service

CALLBACK_PATH = "/ent/auth/callback"
PUBLIC_URLS_ENV = "SCHOOLSURGE_PUBLIC_URLS"
SERVICES_ENV = "SCHOOLSURGE_SERVICES"


class ServiceError(ValueError):
    """A public URL or service that cannot be registered; the message is one line naming it."""


def _checked_http_url(text: str, what: str) -> str:
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        raise ServiceError(f"{what} {text!r} is not a URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ServiceError(f"{what} {text!r} is not an http(s) URL with a host")
    if parts.username is not None or parts.fragment:
        raise ServiceError(f"{what} {text!r} must not carry credentials or a #fragment")
    return text.strip()


def service_url(text: str) -> str:
    """A service URL as registered (normalized); ServiceError if it is not an http(s) URL."""
    return normalize_service(_checked_http_url(text, "service"))


def ent_callback_url(base_url: str) -> str:
    """The ENT's callback at a base URL it is reached by (http://host:port, perhaps with a path prefix)."""
    checked = _checked_http_url(base_url, "public URL")
    if urlsplit(checked).query:
        raise ServiceError(f"public URL {base_url!r} must not have a ?query")
    return normalize_service(checked.rstrip("/") + CALLBACK_PATH)


def _canonical(service: str) -> str | None:
    """The normalized service, or None for one no parser agrees on (e.g. "http://[", an unclosed IPv6 host)."""
    try:
        return normalize_service(service)
    except ValueError:
        return None


@dataclass(frozen=True)
class ServiceRegistry:
    ent_callbacks: frozenset[str] = frozenset()
    others: frozenset[str] = frozenset()

    @classmethod
    def build(cls, ent_base_urls: Iterable[str], services: Iterable[str] = ()) -> ServiceRegistry:
        """The ENT's callbacks at each of its base URLs, and other services by their URL."""
        return cls(frozenset(ent_callback_url(url) for url in ent_base_urls), frozenset(map(service_url, services)))

    def is_registered(self, service: str) -> bool:
        """May a ticket be issued for (or validated by) this service?"""
        canonical = _canonical(service)
        return canonical in self.ent_callbacks or canonical in self.others

    def is_ent_callback(self, service: str) -> bool:
        """Was a ticket issued for `service` meant for the ENT itself (and so redeemable at its callback)?"""
        return _canonical(service) in self.ent_callbacks

    @property
    def ent_over_https(self) -> bool:
        """Is the ENT reached over https at one of its public URLs? Then its cookies are Secure (cookies.py)."""
        return any(callback.startswith("https://") for callback in self.ent_callbacks)

    def to_json(self) -> dict[str, list[str]]:
        return {"ent_callbacks": sorted(self.ent_callbacks), "others": sorted(self.others)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServiceRegistry:
        return cls(frozenset(data["ent_callbacks"]), frozenset(data["others"]))


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-url",
        action="append",
        default=None,
        metavar="URL",
        help=f"another base URL the platform is reached by (a proxy, another host name); its ENT callback is "
        f"registered with CAS beside the bound address's. Repeatable (env {PUBLIC_URLS_ENV}, comma-separated)",
    )
    parser.add_argument(
        "--service",
        action="append",
        default=None,
        metavar="URL",
        help=f"register another CAS service URL, which redeems its tickets at /cas/serviceValidate. "
        f"Repeatable (env {SERVICES_ENV}, comma-separated)",
    )


def resolve_service_options(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(public URLs, services) from the options, else from the environment; checked, ServiceError if not."""
    env = os.environ if environ is None else environ

    def listed(option: list[str] | None, variable: str, check: Callable[[str], str]) -> tuple[str, ...]:
        source = "" if option is not None else f" (from {variable})"
        values = option if option is not None else env.get(variable, "").split(",")
        values = [value.strip() for value in values if value.strip()]
        for value in values:
            try:
                check(value)
            except ServiceError as error:
                raise ServiceError(f"{error}{source}") from None
        return tuple(values)

    public_urls = listed(getattr(args, "public_url", None), PUBLIC_URLS_ENV, ent_callback_url)
    services = listed(getattr(args, "service", None), SERVICES_ENV, service_url)
    return public_urls, services
