"""Secrets of the platform: random tokens, password checks, the admin token file."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import bcrypt

# bcrypt only looks at the first 72 bytes and bcrypt 5 refuses longer secrets; none of ours is that long.
BCRYPT_MAX_BYTES = 72
# CAS 3.0 (sections 3.1.1 and 3.7): a service ticket starts with "ST-", holds only letters, digits and hyphens, and
# services must accept at least 32 characters. Ours are exactly 32: "ST-" and 29 random alphanumerics (172 bits).
SERVICE_TICKET_PREFIX = "ST-"
SERVICE_TICKET_LENGTH = 32
TICKET_ALPHABET = string.ascii_letters + string.digits


def token() -> str:
    """An unguessable one-time token (a login form's execution token): 192 random bits."""
    return secrets.token_urlsafe(24)


def service_ticket() -> str:
    """A CAS service ticket: ST- and random letters and digits, 32 characters in all."""
    random_part = SERVICE_TICKET_LENGTH - len(SERVICE_TICKET_PREFIX)
    return SERVICE_TICKET_PREFIX + "".join(secrets.choice(TICKET_ALPHABET) for _ in range(random_part))


def session_token() -> str:
    """A session cookie value: 256 random bits."""
    return secrets.token_urlsafe(32)


def token_hash(value: str) -> str:
    """Only hashes of sessions and of the admin token are stored, so a copy of a file hands out nothing live."""
    return hashlib.sha256(value.encode()).hexdigest()


# A bcrypt salt: "$2b$", two digits of cost, "$", 22 characters. A full hash adds 31 characters of digest.
BCRYPT_SALT_BYTES = 29


def _secret(password: str) -> bytes | None:
    """The bytes bcrypt hashes, or None for what no account's password can be (never hashed, as before)."""
    try:
        secret = password.encode()
    except UnicodeEncodeError:  # lone surrogates from a malformed form
        return None
    return secret if len(secret) <= BCRYPT_MAX_BYTES else None


def check_password(password: str, hashed: bytes) -> bool:
    secret = _secret(password)
    if secret is None:
        return False
    try:
        return bcrypt.checkpw(secret, hashed)
    except ValueError:
        return False


def is_pending(stored: bytes) -> bool:
    """Is this a seeded account's bare salt, its password not hashed yet (seed.py), rather than a bcrypt hash?"""
    return len(stored) == BCRYPT_SALT_BYTES


def verify_password(password: str, stored: bytes, expected: Callable[[], str]) -> tuple[bool, bytes | None]:
    """Check a password against an account's stored bcrypt hash, or its bare salt before its first login.

    Returns (valid, hash to store). A hash is checked with bcrypt.checkpw. A salt means the password was never
    hashed: the submitted password is hashed with it at its cost, right or wrong (the same bcrypt work as a
    check, so a first login is no cheaper than any other and a wrong password takes as long as a right one),
    and compared in constant time with the account's expected password (`expected()`, derived from the seed).
    Only a right password's hash is returned to be stored; the same salt gives every worker the same hash."""
    if not is_pending(stored):
        return check_password(password, stored), None
    secret = _secret(password)
    if secret is None:
        return False, None
    try:
        hashed = bcrypt.hashpw(secret, stored)
    except ValueError:
        return False, None
    if hmac.compare_digest(secret, expected().encode()):
        return True, hashed
    return False, None


def same_secret(given_hash: str, expected_hash: str) -> bool:
    return hmac.compare_digest(given_hash, expected_hash)


def normalize_service(url: str) -> str:
    """Canonical service URL: lower-case scheme and host, no default port, no fragment."""
    parts = urlsplit(url)
    scheme, netloc = parts.scheme.lower(), parts.netloc.lower()
    default_port = {"http": ":80", "https": ":443"}.get(scheme)
    if default_port and netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def admin_token_path(db_path: Path) -> Path:
    return Path(f"{db_path}.admin-token")


def run_state_dir(db_path: Path) -> Path:
    """The state folder of the server holding db_path: metrics, incident, OpenID Provider keys; gone at stop."""
    return Path(f"{db_path}.run")


def write_admin_token(db_path: Path) -> str:
    """Create a fresh admin token, readable by the owner only, next to the database; returns it."""
    value = secrets.token_urlsafe(32)
    write_private_file(admin_token_path(db_path), value + "\n")
    return value


def write_private_file(path: Path, text: str) -> None:
    """Write a file readable by the owner only, atomically (a reader never sees half of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
