"""Choosing and configuring the platform client from options: `--client package.module:Class`, the CAS
settings, the largest response body (`--max-body-bytes`) and free-form `--client-option KEY=VALUE`. The same
options exist on `schoolsurge run` (which passes them on) and on the locustfile."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from schoolsurge.clients.base import DEFAULT_MAX_BODY_BYTES, ClientSettings, PlatformClient
from schoolsurge.clients.cas import VALIDATIONS
from schoolsurge.errors import ClientError

DEFAULT_CLIENT = "schoolsurge.clients.reference:ReferencePlatformClient"


@dataclass(frozen=True)
class ClientOption:
    flag: str
    field: str  # the ClientSettings field it sets ("" for --client itself)
    help: str
    choices: tuple[str, ...] | None = None
    repeated: bool = False
    type: Callable[[str], Any] | None = None  # argparse's: converts and checks the value


def body_bytes(text: str) -> int:
    """--max-body-bytes: a whole number of bytes, at least 1 KiB (a smaller limit would fail every page)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of bytes, e.g. {DEFAULT_MAX_BODY_BYTES}, got {text!r}"
        ) from None
    if value < 1024:
        raise argparse.ArgumentTypeError(f"expected at least 1024 bytes, got {value}")
    return value


CLIENT_OPTIONS = (
    ClientOption("--client", "", f"platform client class, package.module:Class (default {DEFAULT_CLIENT})"),
    ClientOption("--cas-url", "cas_url", "CAS base URL (default: TARGET/cas)"),
    ClientOption(
        "--service-url", "service_url", "CAS service URL people log in to (default: TARGET/ent/auth/callback)"
    ),
    ClientOption("--home-url", "home_url", "the page CasClient reads as its dashboard (default: the CAS login page)"),
    ClientOption("--cas-username-field", "username_field", "name of the login form's username field"),
    ClientOption("--cas-password-field", "password_field", "name of the login form's password field"),
    ClientOption("--cas-logout-method", "logout_method", "HTTP method of CAS logout", ("GET", "POST")),
    ClientOption("--cas-validation", "validation", "who redeems the service ticket", VALIDATIONS),
    ClientOption(
        "--max-body-bytes",
        "max_body_bytes",
        f"largest response body a request reads (default {DEFAULT_MAX_BODY_BYTES}: 10 MiB); a larger one is a failure",
        type=body_bytes,
    ),
    ClientOption("--client-option", "options", "KEY=VALUE for your own client (repeatable)", repeated=True),
)


def add_client_arguments(parser: Any, add: Callable[..., Any] | None = None) -> None:
    """Add the client options to an argparse parser (`add` lets Locust's parser take its extra keywords)."""
    add_argument = add or parser.add_argument
    for option in CLIENT_OPTIONS:
        kwargs: dict[str, Any] = {"default": None, "help": option.help}
        if option.choices:
            kwargs["choices"] = option.choices
        if option.repeated:
            kwargs["action"] = "append"
        if option.type:
            kwargs["type"] = option.type
        add_argument(option.flag, **kwargs)


def forwarded_client_arguments(options: argparse.Namespace) -> list[str]:
    """The client options that were given, as command-line arguments (schoolsurge run -> locust)."""
    arguments: list[str] = []
    for option in CLIENT_OPTIONS:
        value = getattr(options, _dest(option.flag), None)
        if value is None:
            continue
        for item in value if option.repeated else [value]:
            arguments += [option.flag, str(item)]
    return arguments


def client_settings(options: Any) -> ClientSettings:
    """ClientSettings from parsed options; ClientError names a malformed --client-option."""
    given: dict[str, Any] = {}
    for option in CLIENT_OPTIONS:
        value = getattr(options, _dest(option.flag), None)
        if option.field and value is not None:
            given[option.field] = value
    pairs = given.pop("options", None) or []
    extra: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise ClientError(f"--client-option {pair!r}: expected KEY=VALUE")
        extra[key.strip()] = value
    return ClientSettings(**given, options=extra)


def load_client_class(spec: str | None) -> type[PlatformClient]:
    """The PlatformClient subclass named package.module:Class; ClientError says what is wrong."""
    spec = spec or DEFAULT_CLIENT
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
    return client_class


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")
