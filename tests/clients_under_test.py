"""Platform clients with a known flaw, for the runs that prove the suite reports it (tests put this directory on
PYTHONPATH for the Locust process: `--client clients_under_test:RolelessDashboardClient`)."""

from __future__ import annotations

from typing import Any

from schoolsurge.clients import ReferencePlatformClient
from schoolsurge.errors import StepNotSupported


class RolelessDashboardClient(ReferencePlatformClient):
    """The default client against a platform whose dashboard has no `role` field: every dashboard raises
    KeyError: 'role' in the client, after the page itself was served."""

    def _json(self, method: str, path: str, name: str, *args: Any, **kwargs: Any) -> Any:
        body = super()._json(method, path, name, *args, **kwargs)
        if path == "/api/dashboard":
            body.pop("role")
        return body


class LoginCrashClient(ReferencePlatformClient):
    """A client whose login reads a field the platform's answer does not have: every login raises in the client
    before the person is in."""

    def login(self, username: str, password: str) -> None:
        super().login(username, password)
        raise AttributeError("'NoneType' object has no attribute 'ticket'")


class NoVirtualClassClient(ReferencePlatformClient):
    """The default client without virtual classes (as a journey map that does not name them): every virtual-class
    step is skipped."""

    def schedule_virtual_class(self, class_id: int, title: str) -> int:
        raise StepNotSupported("virtual class: create")

    def open_virtual_class(self, virtual_class_id: int) -> None:
        raise StepNotSupported("virtual class: open")

    def join_virtual_class(self, virtual_class_id: int) -> str:
        raise StepNotSupported("virtual class: join")


class WrongPasswordClient(ReferencePlatformClient):
    """The default client with a wrong password for every third account (as a stale accounts file): those
    logins are refused."""

    def login(self, username: str, password: str) -> None:
        wrong = int(username[-1]) % 3 == 0 if username[-1].isdigit() else False
        super().login(username, f"{password}-stale" if wrong else password)
