"""WebClient: any platform behind CAS or OpenID Connect, its pages described by a journey map (journey.py).

`--client schoolsurge.clients.web:WebClient --journey-map FILE`: people log in by the run's single sign-on
(`--sso`: CasClient's or OidcClient's login, with every `--cas-...` / `--oidc-...` option), then each persona
step is the map's request(s) for it. A step the map leaves out raises StepNotSupported: personas skip it,
counted in sessions.csv's `steps_not_supported`. Without `--journey-map`, the embedded platform's map
(`embedded`), which walks the embedded ENT as the default client does.

Logging out is the map's `logout` step when it has one (an ENT's logout usually sends the browser on to its
single sign-on's), else the single sign-on's own.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from schoolsurge.clients.base import ClientContext, Dashboard, Homework, PlatformClient, StepFailed, StepNotSupported
from schoolsurge.clients.cas import CasClient
from schoolsurge.clients.journey import (
    STEPS,
    ReadFailed,
    Request,
    load_journey_map,
    rendered,
    template,
    url_encoded,
    values_read,
)
from schoolsurge.clients.oidc import OidcClient

DEFAULT_JOURNEY_MAP = "embedded"
SIGN_ON_CLIENTS: dict[str, type[PlatformClient]] = {"cas": CasClient, "oidc": OidcClient}


class WebClient(PlatformClient):
    """The run's single sign-on, then the journey map's pages."""

    reads_settings = frozenset({"journey_map"})

    sso: ClassVar[str | None] = None  # either protocol: the login is --sso's

    def __init__(self, context: ClientContext) -> None:
        super().__init__(context)
        self.journey = load_journey_map(context.settings.journey_map or DEFAULT_JOURNEY_MAP)
        self.sign_on = SIGN_ON_CLIENTS[context.settings.sso](context)
        self.values: dict[str, Any] = self._person_values("")

    def _person_values(self, username: str) -> dict[str, Any]:
        person = self.context.person
        values: dict[str, Any] = {"username": username or None}
        if person is not None:
            values |= {"role": person.role, "group": person.group, "index": person.index}
        return values

    # ---- single sign-on ------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        self.values = self._person_values(username)  # a new session: nothing read yet
        self.sign_on.login(username, password)

    def logout(self) -> None:
        if self.journey.requests("logout"):
            self._take("logout")
        else:
            self.sign_on.logout()

    # ---- the map's steps -----------------------------------------------------------------------------

    def dashboard(self) -> Dashboard:
        read = self._take("dashboard")
        return Dashboard(
            role=read.get("role") or self.role,
            class_ids=read.get("class_ids", []),
            child_ids=read.get("child_ids", []),
            open_virtual_classes=_by_class(read.get("open_virtual_classes", [])),
            waiting_virtual_classes=_by_class(read.get("waiting_virtual_classes", [])),
            selected_child=read.get("selected_child"),
        )

    def timetable(self, child_id: int | None = None) -> None:
        self._take("timetable", child_id=child_id)

    def homework(self, child_id: int | None = None) -> list[Homework]:
        records = self._take("homework", child_id=child_id).get("homework", [])
        return [Homework(r["id"], r["class_id"], r["subject"], r["due"], r["submitted"]) for r in records]

    def messages(self) -> int:
        return len(self._take("messages").get("messages", []))

    def submit_homework(self, homework_id: int, text: str) -> int:
        return self._take("submit_homework", homework_id=homework_id, text=text)["id"]

    def classes(self) -> list[int]:
        return self._take("classes").get("class_ids", [])

    def post_homework(self, class_id: int, subject: str, due: str, text: str) -> int:
        return self._take("post_homework", class_id=class_id, subject=subject, due=due, text=text)["id"]

    def schedule_virtual_class(self, class_id: int, title: str) -> int:
        return self._take("schedule_virtual_class", class_id=class_id, title=title)["id"]

    def open_virtual_class(self, virtual_class_id: int) -> None:
        self._take("open_virtual_class", virtual_class_id=virtual_class_id)

    def join_virtual_class(self, virtual_class_id: int) -> str:
        return self._take("join_virtual_class", virtual_class_id=virtual_class_id)["status"]

    def heartbeat(self, virtual_class_id: int) -> str:
        return self._take("heartbeat", virtual_class_id=virtual_class_id)["status"]

    def leave_virtual_class(self, virtual_class_id: int) -> None:
        self._take("leave_virtual_class", virtual_class_id=virtual_class_id)

    def participants(self, virtual_class_id: int) -> int:
        return len(self._take("participants", virtual_class_id=virtual_class_id).get("participants", []))

    def children(self) -> list[int]:
        return self._take("children").get("child_ids", [])

    def switch_child(self, child_id: int) -> None:
        self._take("switch_child", child_id=child_id)

    # ---- carrying a step out --------------------------------------------------------------------------

    def _take(self, step_name: str, **arguments: Any) -> dict[str, Any]:
        """The step's requests in order; returns what they read (with the step's defaults), kept for the
        session's later templates. StepNotSupported when the map leaves the step out, or when its URL needs a
        value this person's session does not have."""
        step = STEPS[step_name]
        requests = self.journey.requests(step_name)
        if not requests:
            raise StepNotSupported(step.name)
        read = {name: [] if result.kind != "value" else result.default for name, result in step.results.items()}
        for request in requests:
            values = {**self.values, **arguments}
            answer = self._send(request, self.name(request.name or step.name), values, step_name)
            read |= answer
            self.values |= {name: value for name, value in answer.items() if not isinstance(value, list)}
        return read

    def _send(self, request: Request, name: str, values: dict[str, Any], step_name: str) -> dict[str, Any]:
        url_template = template(request.url)
        if url_template.whole:
            url = values.get(next(iter(url_template.names)))
        else:
            url = url_template.render(values, url_encoded)
        if url is None:
            # This person's session has no such value (a parent's child_id for a pupil): not a step for them.
            missing = ", ".join(sorted(f"{{{n}}}" for n in url_template.names if values.get(n) is None))
            raise StepNotSupported(f"{STEPS[step_name].name} (its URL needs {missing})")
        kwargs: dict[str, Any] = {}
        query = _entries(request.query, values)
        if query:
            kwargs["params"] = query
        # The sign-on's bearer when it holds an access token (OpenID Connect's back channel: an app's API calls);
        # the map's own headers win.
        bearer = self.sign_on.bearer() if isinstance(self.sign_on, OidcClient) else {}
        headers = {**bearer, **_entries(request.headers, values)}
        if headers:
            kwargs["headers"] = headers
        if request.form is not None:
            kwargs["data"] = _entries(request.form, values)
        elif request.json_body is not None:
            kwargs["json"] = rendered(request.json_body, values)
        with self.http.request(
            request.method,
            str(url),
            name=name,
            catch_response=True,
            allow_redirects=request.follow_redirects,
            **kwargs,
        ) as response:
            status = response.status_code
            if status in request.accept:
                response.success()
                return dict(request.accept[status])
            if not request.expects(status):
                expected = request.expect if request.expect is not None else "2xx"
                response.failure(f"HTTP {status}, expected {expected}")
                raise StepFailed(f"{name}: HTTP {status}")
            if not request.read:
                return {}
            try:
                return values_read(request, STEPS[step_name], response.text or "", _json_of(response))
            except ReadFailed as failed:
                response.failure(str(failed))
                raise StepFailed(f"{name}: {failed}") from None


def _entries(entries: dict[str, Any], values: dict[str, Any]) -> dict[str, str]:
    """Query, header or form entries rendered; one that names an absent value is left out."""
    rendered_entries = ((key, template(str(text)).render(values)) for key, text in entries.items())
    return {key: text for key, text in rendered_entries if text is not None}


def _json_of(response: Any) -> Any:
    try:
        return json.loads(response.content or b"")  # bytes as they came: JSON says its encoding
    except ValueError:
        return None


def _by_class(records: list[dict[str, Any]]) -> dict[int, int]:
    """Virtual class id per class id, the first listed for a class (as the embedded ENT's dashboard lists them)."""
    by_class: dict[int, int] = {}
    for record in records:
        by_class.setdefault(record["class_id"], record["id"])
    return by_class
