"""Load goes to loopback only, unless the user names the one other host they are allowed to hit."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from schoolsurge.errors import UnsafeTargetError

__all__ = ["UnsafeTargetError", "check_target", "is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """True when every address the host name resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_target(url: str, allowed_host: str | None = None) -> str:
    """Return the target's host name, or raise UnsafeTargetError with what to do about it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTargetError(f"target {url!r} is not an http(s) URL; give e.g. http://127.0.0.1:8080")
    try:
        port = parts.port  # None when the URL names none (the scheme's)
    except ValueError:  # above 65535, or not a number
        port = 0
    if port == 0:
        raise UnsafeTargetError(
            f"target {url!r}: the port must be a number from 1 to 65535; give e.g. http://127.0.0.1:8080"
        )
    host = parts.hostname
    if is_loopback_host(host) or (allowed_host is not None and host == allowed_host):
        return host
    raise UnsafeTargetError(
        f"target {host} is not a loopback address; load this host only if you own it, by passing --allow-host {host}"
    )
