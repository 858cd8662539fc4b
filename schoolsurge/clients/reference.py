"""Clients for the embedded reference platform: the ENT's JSON API (ReferencePages), behind its single sign-on,
CAS (`ReferencePlatformClient`, CasClient's login) or OpenID Connect (`ReferenceOidcClient`, OidcClient's). The
run picks the one of the platform's protocol (`--sso`, options.py)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from schoolsurge.clients.base import Dashboard, Homework, PlatformClient, StepFailed
from schoolsurge.clients.cas import CasClient
from schoolsurge.clients.oidc import OidcClient

CLOSED = frozenset({410})  # the virtual class has ended (409 is a full room: a failure)


class ReferencePages(PlatformClient):
    """The ENT's pages, whatever single sign-on logged the person in (mixed in before a login client). Request
    names are grouped by step (never by id) so statistics stay one row per step."""

    reads_settings: ClassVar[frozenset[str]] = frozenset()  # its pages are the API's: no home_url, no journey map

    def _json(
        self, method: str, path: str, name: str, expect: int = 200, also: frozenset[int] = frozenset(), **kwargs: Any
    ) -> Any:
        """The JSON body of a response with the expected status (or one of `also`, answers that are not failures)."""
        name = self.name(name)
        with self.http.request(method, path, name=name, catch_response=True, **kwargs) as response:
            if response.status_code in also:
                response.success()
                return {"status_code": response.status_code}
            if response.status_code != expect:
                response.failure(f"HTTP {response.status_code}, expected {expect}")
                raise StepFailed(f"{name}: HTTP {response.status_code}")
            try:
                return json.loads(response.content or b"")  # bytes as they came: JSON says its encoding
            except ValueError:
                response.failure("response is not JSON")
                raise StepFailed(f"{name}: response is not JSON") from None

    # ---- reading ------------------------------------------------------------------------------------

    def dashboard(self) -> Dashboard:
        body = self._json("GET", "/api/dashboard", "dashboard")
        by_status: dict[str, dict[int, int]] = {"open": {}, "scheduled": {}}
        for vc in body["virtual_classes"]:
            by_status[vc["status"]].setdefault(vc["class_id"], vc["id"])
        return Dashboard(
            role=body["role"],
            class_ids=[c["id"] for c in body["classes"]],
            child_ids=[c["id"] for c in body["children"]],
            open_virtual_classes=by_status["open"],
            waiting_virtual_classes=by_status["scheduled"],
            selected_child=body["selected_child"],
        )

    def timetable(self, child_id: int | None = None) -> None:
        params = {"child": child_id} if child_id is not None else None
        self._json("GET", "/api/timetable", "timetable", params=params)

    def homework(self, child_id: int | None = None) -> list[Homework]:
        params = {"child": child_id} if child_id is not None else None
        body = self._json("GET", "/api/homework", "homework", params=params)
        return [
            Homework(h["id"], h["class_id"], h["subject"], h["due"], h.get("submitted_at") is not None)
            for h in body["homework"]
        ]

    def messages(self) -> int:
        return len(self._json("GET", "/api/messages", "messages")["messages"])

    def children(self) -> list[int]:
        return [c["id"] for c in self._json("GET", "/api/children", "children")["children"]]

    def switch_child(self, child_id: int) -> None:
        self._json("POST", f"/api/children/{child_id}/select", "children: switch")

    # ---- writing ------------------------------------------------------------------------------------

    def submit_homework(self, homework_id: int, text: str) -> int:
        body = self._json(
            "POST", f"/api/homework/{homework_id}/submissions", "homework: submit", expect=201, json={"text": text}
        )
        return int(body["id"])

    def classes(self) -> list[int]:
        return [c["id"] for c in self._json("GET", "/api/classes", "classes")["classes"]]

    def post_homework(self, class_id: int, subject: str, due: str, text: str) -> int:
        body = self._json(
            "POST",
            f"/api/classes/{class_id}/homework",
            "homework: post",
            expect=201,
            json={"subject": subject, "due": due, "text": text},
        )
        return int(body["id"])

    # ---- virtual classes ----------------------------------------------------------------------------

    def schedule_virtual_class(self, class_id: int, title: str) -> int:
        body = self._json(
            "POST",
            "/api/virtual-classes",
            "virtual class: create",
            expect=201,
            json={"class_id": class_id, "title": title},
        )
        return int(body["id"])

    def open_virtual_class(self, virtual_class_id: int) -> None:
        self._json("POST", f"/api/virtual-classes/{virtual_class_id}/open", "virtual class: open")

    def join_virtual_class(self, virtual_class_id: int) -> str:
        # 410: the teacher ended the lesson between the dashboard and the join, which the pupil sees as its end.
        body = self._json("POST", f"/api/virtual-classes/{virtual_class_id}/join", "virtual class: join", also=CLOSED)
        return "closed" if "status_code" in body else str(body["status"])

    def heartbeat(self, virtual_class_id: int) -> str:
        # 410: the teacher has ended the lesson, which a pupil's client takes as the end, not as an error.
        body = self._json(
            "POST", f"/api/virtual-classes/{virtual_class_id}/heartbeat", "virtual class: heartbeat", also=CLOSED
        )
        return "closed" if "status_code" in body else str(body["virtual_class"])

    def participants(self, virtual_class_id: int) -> int:
        body = self._json("GET", f"/api/virtual-classes/{virtual_class_id}/participants", "virtual class: participants")
        return sum(1 for person in body["participants"] if person["state"] != "left")

    def leave_virtual_class(self, virtual_class_id: int) -> None:
        # Leaving a lesson the teacher has already ended (410) is no failure either.
        self._json("POST", f"/api/virtual-classes/{virtual_class_id}/leave", "virtual class: leave", also=CLOSED)


class ReferencePlatformClient(ReferencePages, CasClient):
    """The embedded platform with its CAS single sign-on (the default)."""


class ReferenceOidcClient(ReferencePages, OidcClient):
    """The embedded platform with its OpenID Connect single sign-on (`--sso oidc`)."""
