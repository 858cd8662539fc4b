"""Client for the embedded reference platform (CAS-style SSO + JSON API)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from locust.contrib.fasthttp import FastHttpSession

from schoolsurge.clients.base import Dashboard, PlatformClient, PlatformError

EXECUTION_FIELD = re.compile(r'name="execution"\s+value="([^"]+)"')
CALLBACK_PATH = "/ent/auth/callback"


class ReferencePlatformClient(PlatformClient):
    """Request names are grouped by step (never by id) so statistics stay one row per step."""

    def __init__(self, http: FastHttpSession) -> None:
        self.http = http

    def _json(self, method: str, path: str, name: str, expect: int = 200, **kwargs: Any) -> Any:
        with self.http.request(method, path, name=name, catch_response=True, **kwargs) as response:
            if response.status_code != expect:
                response.failure(f"HTTP {response.status_code}, expected {expect}")
                raise PlatformError(f"{name}: HTTP {response.status_code}")
            try:
                return response.json()
            except ValueError:
                response.failure("response is not JSON")
                raise PlatformError(f"{name}: response is not JSON") from None

    def login(self, username: str, password: str) -> None:
        service = f"{self.http.base_url}{CALLBACK_PATH}"
        with self.http.get(
            "/cas/login", params={"service": service}, name="sso: login form", catch_response=True
        ) as form:
            match = EXECUTION_FIELD.search(form.text or "") if form.status_code == 200 else None
            if not match:
                form.failure(f"HTTP {form.status_code}, no execution token in the login form")
                raise PlatformError("login form unavailable")
        credentials = {"username": username, "password": password, "execution": match[1], "service": service}
        with self.http.post(
            "/cas/login",
            data=credentials,
            name="sso: submit credentials",
            allow_redirects=False,
            catch_response=True,
        ) as submitted:
            location = submitted.headers.get("location") if submitted.headers else None
            if submitted.status_code != 302 or not location:
                submitted.failure(f"HTTP {submitted.status_code}, expected a redirect with a service ticket")
                raise PlatformError("credentials refused or login failed")
        callback = urlsplit(location)
        self._json("GET", f"{callback.path}?{callback.query}", "sso: ticket callback")

    def logout(self) -> None:
        self._json("POST", "/cas/logout", "sso: logout")

    def dashboard(self) -> Dashboard:
        body = self._json("GET", "/api/dashboard", "dashboard")
        return Dashboard(
            role=body["role"],
            class_ids=[c["id"] for c in body["classes"]],
            child_ids=[c["id"] for c in body["children"]],
            open_virtual_classes={v["class_id"]: v["id"] for v in body["open_virtual_classes"]},
        )

    def timetable(self, child_id: int | None = None) -> None:
        params = {"child": child_id} if child_id is not None else None
        self._json("GET", "/api/timetable", "timetable", params=params)

    def homework(self, child_id: int | None = None) -> None:
        params = {"child": child_id} if child_id is not None else None
        self._json("GET", "/api/homework", "homework", params=params)

    def create_virtual_class(self, class_id: int, title: str) -> int:
        body = self._json(
            "POST",
            "/api/virtual-classes",
            "virtual class: create",
            expect=201,
            json={"class_id": class_id, "title": title},
        )
        return int(body["id"])

    def join_virtual_class(self, virtual_class_id: int) -> None:
        self._json("POST", f"/api/virtual-classes/{virtual_class_id}/join", "virtual class: join")

    def heartbeat(self, virtual_class_id: int) -> None:
        self._json("POST", f"/api/virtual-classes/{virtual_class_id}/heartbeat", "virtual class: heartbeat")

    def leave_virtual_class(self, virtual_class_id: int) -> None:
        self._json("POST", f"/api/virtual-classes/{virtual_class_id}/leave", "virtual class: leave")
