"""Journeys of pupils, teachers and parents over real HTTP, and who may do what (401, 403 and 404)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import Client, login, pupil_of_class
from fastapi import HTTPException

from schoolsurge.accounts import Roster
from schoolsurge.platform.app import create_app
from schoolsurge.platform.core import Platform
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.routes import virtual_classes
from schoolsurge.platform.routes.dependencies import Caller


def homework_of(client: Client, query: str = "") -> list[dict[str, Any]]:
    reply = client.get(f"/api/homework{query}")
    assert reply.status == 200, reply.text
    return reply.json()["homework"]


def test_every_session_endpoint_answers_401_without_a_valid_session(platform_url: str) -> None:
    schema = Client(platform_url).get("/openapi.json").json()
    bodies = {
        "/api/virtual-classes": {"class_id": 0, "title": "Maths"},
        "/api/classes/{class_id}/homework": {"subject": "Maths", "due": "2021-04-08", "text": "Exercice 1"},
        "/api/homework/{homework_id}/submissions": {"text": "Ma réponse"},
    }
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            takes_session = {"APIKeyCookie": []} in operation.get("security", ())
            if not takes_session or path == "/cas/logout":
                continue
            concrete = path.replace("{class_id}", "0").replace("{homework_id}", "1")
            concrete = concrete.replace("{id}", "1").replace("{child}", "0")
            body = bodies.get(path) if method == "post" else None
            for client in (Client(platform_url), Client(platform_url, cookies={"ent_session": "forged-" + "x" * 40})):
                reply = client.request(method.upper(), concrete, body=body)
                assert reply.status == 401, (method, path, reply.status, reply.text)
                assert reply.json()["detail"]
            checked += 1
    assert checked >= 15


def test_malformed_requests_get_422_with_or_without_a_session(platform_url: str, platform_roster: Roster) -> None:
    """Parameters and bodies are checked before the session (routes/dependencies.py): a malformed request gets
    422 whoever sends it, and only a well-formed one without a valid session gets 401."""
    pupil, _ = login(platform_url, platform_roster, "student", 8)
    anonymous, forged = Client(platform_url), Client(platform_url, cookies={"ent_session": "forged-" + "x" * 40})
    malformed = (
        ("GET", "/api/timetable?child=not-a-number", None),
        ("GET", "/api/homework?child=-1", None),
        ("POST", "/api/children/-1/select", None),
        ("GET", "/api/homework/x/submissions", None),
        ("POST", "/api/homework/1/submissions", {"text": ""}),
        ("POST", "/api/classes/0/homework", {"subject": "Maths", "due": "9 avril", "text": "x"}),
        ("POST", "/api/virtual-classes", {"class_id": "zero", "title": "x"}),
        ("POST", "/api/virtual-classes/x/join", None),
        ("GET", "/api/virtual-classes/-1/participants", None),
    )
    for client in (anonymous, forged, pupil):
        for method, path, body in malformed:
            reply = client.request(method, path, body=body)
            assert reply.status == 422 and reply.json()["detail"], (method, path, reply.status)
    for client in (anonymous, forged):
        assert client.request("POST", "/api/homework/1/submissions", body={"text": "ok"}).status == 401


def test_pupil_submits_homework_and_sees_it(platform_url: str, platform_roster: Roster) -> None:
    roster = platform_roster
    pupil_idx = pupil_of_class(roster, 2, 1)
    pupil, _ = login(platform_url, roster, "student", pupil_idx)
    item = homework_of(pupil)[0]
    assert item["submitted_at"] is None
    reply = pupil.post(f"/api/homework/{item['id']}/submissions", body={"text": "J'ai fait les exercices."})
    assert reply.status == 201, reply.text
    submission = reply.json()
    assert submission["homework_id"] == item["id"] and submission["pupil"] == pupil_idx
    assert submission["text"] == "J'ai fait les exercices."
    listed = {h["id"]: h for h in homework_of(pupil)}
    assert listed[item["id"]]["submitted_at"] == submission["submitted_at"]

    # A resubmission replaces the earlier one; the pupil sees only their own.
    reply = pupil.post(f"/api/homework/{item['id']}/submissions", body={"text": "Version corrigée."})
    assert reply.status == 201 and reply.json()["id"] == submission["id"]
    mine = pupil.get(f"/api/homework/{item['id']}/submissions").json()["submissions"]
    assert [(s["pupil"], s["text"]) for s in mine] == [(pupil_idx, "Version corrigée.")]

    # Their teacher sees it among the class's; their parent sees it on the child's homework list.
    teacher, _ = login(platform_url, roster, "teacher", roster.main_class_of_teacher(2))
    everyone = teacher.get(f"/api/homework/{item['id']}/submissions").json()["submissions"]
    assert (pupil_idx, "Version corrigée.") in [(s["pupil"], s["text"]) for s in everyone]
    parent, _ = login(platform_url, roster, "parent", roster.parent_of_pupil(pupil_idx))
    as_parent = {h["id"]: h for h in homework_of(parent, f"?child={pupil_idx}")}
    assert as_parent[item["id"]]["submitted_at"] is not None

    for bad in ({}, {"text": ""}, {"text": "x" * 5001}, {"text": 3}, {"text": "ok", "extra": 1}):
        reply = pupil.post(f"/api/homework/{item['id']}/submissions", body=bad)
        assert reply.status == 422 and reply.json()["detail"], bad
    reply = pupil.post(f"/api/homework/{item['id']}/submissions", raw=b'{"text": "\\ud800"}')
    assert reply.status == 422 and "unicode" in reply.json()["detail"].lower()
    assert pupil.post("/api/homework/999999/submissions", body={"text": "x"}).status == 404


def test_teacher_lists_classes_and_posts_homework(platform_url: str, platform_roster: Roster) -> None:
    roster = platform_roster
    teacher, _ = login(platform_url, roster, "teacher", 1)
    classes = teacher.get("/api/classes").json()["classes"]
    assert [c["id"] for c in classes] == roster.classes_of_teacher(1)
    assert all(c["pupils"] == len(roster.pupils_of_class(c["id"])) for c in classes)
    class_id = classes[0]["id"]
    reply = teacher.post(
        f"/api/classes/{class_id}/homework",
        body={"subject": "Mathématiques", "due": "2021-04-09", "text": "Fiche 3, exercices 1 à 4."},
    )
    assert reply.status == 201, reply.text
    posted = reply.json()
    assert (posted["class_id"], posted["due"], posted["text"]) == (class_id, "2021-04-09", "Fiche 3, exercices 1 à 4.")
    pupil, _ = login(platform_url, roster, "student", pupil_of_class(roster, class_id))
    assert posted["id"] in [h["id"] for h in homework_of(pupil)]
    for bad in (
        {"subject": "Maths", "due": "9 avril", "text": "x"},
        {"subject": "", "due": "2021-04-09", "text": "x"},
        {"subject": "Maths", "due": "2021-04-09"},
    ):
        assert teacher.post(f"/api/classes/{class_id}/homework", body=bad).status == 422


def test_messages_reach_each_role_of_the_class(platform_url: str, platform_roster: Roster) -> None:
    roster = platform_roster
    secondary = roster.classes_of_level("college")[0]
    pupil, _ = login(platform_url, roster, "student", pupil_of_class(roster, secondary))
    inbox = pupil.get("/api/messages").json()["messages"]
    assert inbox and {m["class_id"] for m in inbox} == {secondary}
    assert all(m["subject"] and m["body"] and m["sender"] for m in inbox)
    teacher, _ = login(platform_url, roster, "teacher", 0)
    assert teacher.get("/api/messages").json()["messages"][0]["sender"].startswith("La direction")
    parent_idx = roster.parent_of_pupil(pupil_of_class(roster, secondary))
    parent, _ = login(platform_url, roster, "parent", parent_idx)
    classes = {roster.class_of_pupil(c) for c in roster.families[parent_idx]}
    assert {m["class_id"] for m in parent.get("/api/messages").json()["messages"]} <= classes


def test_parent_lists_and_switches_children(platform_url: str, platform_roster: Roster) -> None:
    roster = platform_roster
    parent_idx = next(p for p, kids in enumerate(roster.families) if len(kids) >= 2)
    first, second = roster.families[parent_idx][:2]
    parent, _ = login(platform_url, roster, "parent", parent_idx)
    children = parent.get("/api/children").json()
    assert children["selected_child"] == first
    assert [c["id"] for c in children["children"]] == list(roster.families[parent_idx])
    reply = parent.post(f"/api/children/{second}/select")
    assert reply.status == 200 and reply.json()["selected_child"] == second
    # The switch lives in the session: any worker now shows the second child's pages by default.
    for _ in range(4):
        lessons = parent.get("/api/timetable").json()["lessons"]
        assert {lesson["class_id"] for lesson in lessons} == {roster.class_of_pupil(second)}
    assert parent.get("/api/dashboard").json()["selected_child"] == second


def test_authorisation_matrix(platform_url: str, platform_roster: Roster) -> None:
    """Each role reaching for what is not theirs is refused, whatever the worker: 403 where their role may never
    do it (which reveals nothing), 404 where the thing is not theirs to see (as if it did not exist)."""
    roster = platform_roster
    pupil_class, other_class = 1, 3
    pupil_idx = pupil_of_class(roster, pupil_class)
    pupil, _ = login(platform_url, roster, "student", pupil_idx)
    outsider, _ = login(platform_url, roster, "student", pupil_of_class(roster, other_class))
    other_homework = homework_of(outsider)[0]["id"]
    teacher_idx = roster.main_class_of_teacher(other_class)
    teacher, _ = login(platform_url, roster, "teacher", teacher_idx)
    untaught = next(c for c in range(roster.classes) if c not in roster.classes_of_teacher(teacher_idx))
    parent_idx = roster.parent_of_pupil(pupil_idx)
    parent, _ = login(platform_url, roster, "parent", parent_idx)
    stranger = next(p for p in range(roster.pupils) if p not in roster.families[parent_idx])
    vc = teacher.post("/api/virtual-classes", body={"class_id": other_class, "title": "Histoire"}).json()
    colleague_idx = next(t for t in range(roster.teachers) if t != teacher_idx)
    colleague, _ = login(platform_url, roster, "teacher", colleague_idx)
    homework_body = {"subject": "x", "due": "2021-04-08", "text": "x"}

    refused = [
        # roles: only teachers teach, only pupils hand in and join, only parents have children
        (pupil, "GET", "/api/classes", None),
        (pupil, "POST", f"/api/classes/{pupil_class}/homework", homework_body),
        (pupil, "POST", "/api/virtual-classes", {"class_id": pupil_class, "title": "x"}),
        (pupil, "GET", "/api/children", None),
        (pupil, "POST", f"/api/children/{pupil_idx}/select", None),
        (teacher, "POST", f"/api/homework/{other_homework}/submissions", {"text": "x"}),
        (teacher, "POST", f"/api/virtual-classes/{vc['id']}/join", None),
        (teacher, "GET", "/api/children", None),
        (parent, "POST", f"/api/virtual-classes/{vc['id']}/join", None),
        (parent, "POST", f"/api/homework/{other_homework}/submissions", {"text": "x"}),
        (parent, "GET", "/api/classes", None),
        # a pupil of the class sees the virtual class, but only the teacher who created it runs it
        (outsider, "GET", f"/api/virtual-classes/{vc['id']}/participants", None),
    ]
    hidden = [
        # a pupil: only their own class
        (pupil, "POST", f"/api/homework/{other_homework}/submissions", {"text": "x"}),
        (pupil, "GET", f"/api/homework/{other_homework}/submissions", None),
        (pupil, "POST", f"/api/virtual-classes/{vc['id']}/join", None),
        # a teacher: only the classes they teach and the virtual classes they created
        (teacher, "POST", f"/api/classes/{untaught}/homework", homework_body),
        (teacher, "POST", "/api/virtual-classes", {"class_id": untaught, "title": "x"}),
        (colleague, "POST", f"/api/virtual-classes/{vc['id']}/open", None),
        (colleague, "GET", f"/api/virtual-classes/{vc['id']}/participants", None),
        # a parent: only their own children
        (parent, "GET", f"/api/timetable?child={stranger}", None),
        (parent, "GET", f"/api/homework?child={stranger}", None),
        (parent, "POST", f"/api/children/{stranger}/select", None),
    ]
    if other_class not in {roster.class_of_pupil(c) for c in roster.families[parent_idx]}:
        hidden.append((parent, "GET", f"/api/homework/{other_homework}/submissions", None))
    for expected, cases in ((403, refused), (404, hidden)):
        for client, method, path, body in cases:
            reply = client.request(method, path, body=body)
            assert reply.status == expected, (method, path, reply.status, reply.text)
            assert reply.json()["detail"]
    assert parent.get("/api/homework?child=not-a-number").status == 422


def test_virtual_class_waiting_room_then_open_then_close(platform_url: str, platform_roster: Roster) -> None:
    roster = platform_roster
    teacher, _ = login(platform_url, roster, "teacher", 0)
    main_class = roster.main_class_of_teacher(0)
    reply = teacher.post("/api/virtual-classes", body={"class_id": main_class, "title": "Maths, 6 avril"})
    assert reply.status == 201
    vc = reply.json()
    assert vc == {
        "id": vc["id"],
        "class_id": main_class,
        "title": "Maths, 6 avril",
        "status": "scheduled",
        "join_url": f"/api/virtual-classes/{vc['id']}/join",
    }
    base = f"/api/virtual-classes/{vc['id']}"
    first, second, third = (pupil_of_class(roster, main_class, n) for n in range(3))
    pupil, _ = login(platform_url, roster, "student", first)
    summary = {"id": vc["id"], "class_id": main_class, "title": "Maths, 6 avril", "status": "scheduled"}
    assert summary in pupil.get("/api/dashboard").json()["virtual_classes"]

    # Before the teacher opens it: the waiting room.
    assert pupil.post(vc["join_url"]).json() == {"status": "waiting", "participants": 0, "waiting": 1}
    assert pupil.post(f"{base}/heartbeat").json() == {"status": "ok", "virtual_class": "scheduled"}
    people = teacher.get(f"{base}/participants").json()
    assert people["status"] == "scheduled" and [(p["id"], p["state"]) for p in people["participants"]] == [
        (first, "waiting")
    ]

    # Opening lets the waiting room in; later joiners go straight in.
    opened = teacher.post(f"{base}/open")
    assert opened.status == 200 and opened.json()["status"] == "open"
    assert pupil.post(f"{base}/heartbeat").json() == {"status": "ok", "virtual_class": "open"}
    classmate, _ = login(platform_url, roster, "student", second)
    assert classmate.post(vc["join_url"]).json() == {"status": "joined", "participants": 2, "waiting": 0}
    assert teacher.post(f"{base}/heartbeat").json() == {"status": "ok", "virtual_class": "open"}
    assert pupil.post(f"{base}/leave").json() == {"status": "left"}
    assert pupil.post(f"{base}/heartbeat").status == 403  # no longer in it
    late, _ = login(platform_url, roster, "student", third)
    assert late.post(vc["join_url"]).json()["status"] == "joined"
    states = {p["id"]: p["state"] for p in teacher.get(f"{base}/participants").json()["participants"]}
    assert states == {first: "left", second: "in_class", third: "in_class"}
    assert pupil.post("/api/virtual-classes/999999/join").status == 404

    # The teacher leaving closes the class: it disappears from dashboards and cannot be joined or opened.
    assert teacher.post(f"{base}/leave").json() == {"status": "left"}
    assert vc["id"] not in [v["id"] for v in pupil.get("/api/dashboard").json()["virtual_classes"]]
    assert pupil.post(vc["join_url"]).status == 410
    assert teacher.post(f"{base}/open").status == 410
    assert classmate.post(f"{base}/heartbeat").status == 410


def test_virtual_class_creation_rejects_malformed_bodies(platform_url: str, platform_roster: Roster) -> None:
    teacher, _ = login(platform_url, platform_roster, "teacher", 0)
    for bad in (
        b"{not json",
        b"[]",
        b'{"class_id": "zero", "title": "x"}',
        b'{"class_id": 0}',
        b'{"class_id": -1, "title": "x"}',
        b'{"class_id": 99999999999999999999, "title": "x"}',
        b'{"class_id": 0, "title": ""}',
    ):
        reply = teacher.post("/api/virtual-classes", raw=bad)
        assert reply.status == 422 and reply.json()["detail"], bad
    # A body announced over 1 MB is refused before it is read. Only the headers are sent: the platform answers
    # and closes at once, and a client still sending the megabyte may see the connection reset before the answer.
    parts = urlsplit(platform_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/virtual-classes")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str((1 << 20) + 1))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()


def closing_before(platform: Platform, statement: str, teacher: Caller, virtual_class_id: int) -> None:
    """Makes the teacher leave (which closes the class) the moment this thread's next `statement` starts, before
    it takes any lock: the interleaving a pupil's request and the teacher's met in a run, made deterministic."""
    connection = platform.connection()

    def on_statement(sql: str) -> None:
        if sql.startswith(statement):
            connection.set_trace_callback(None)
            # Another thread, so another connection; it commits before this thread's statement goes on.
            leaving = threading.Thread(target=virtual_classes.leave, args=(platform, teacher, virtual_class_id))
            leaving.start()
            leaving.join()

    connection.set_trace_callback(on_statement)


@pytest.mark.parametrize(
    ("request_name", "statement"),
    [("heartbeat", "UPDATE vc_participants SET last_seen"), ("join", "BEGIN IMMEDIATE")],
)
def test_a_pupils_request_racing_the_teacher_closing_the_class_gets_410(
    platform_process: PlatformProcess, platform_roster: Roster, request_name: str, statement: str
) -> None:
    """The teacher leaving closes the class while a pupil's heartbeat or join is under way: the pupil is told
    the lesson ended (410, which their client takes as its end), never 403 "join first" (a failed step in the
    run), and is never put in the closed class. Run in this process on the shared platform's database, the
    teacher's leave timed between the request reading the class and writing."""
    roster, url = platform_roster, platform_process.base_url
    teacher, _ = login(url, roster, "teacher", 3)
    vc = teacher.post("/api/virtual-classes", body={"class_id": roster.main_class_of_teacher(3), "title": "x"}).json()
    assert teacher.post(f"/api/virtual-classes/{vc['id']}/open").status == 200
    pupil, _ = login(url, roster, "student", pupil_of_class(roster, roster.main_class_of_teacher(3)))
    if request_name == "heartbeat":
        assert pupil.post(vc["join_url"]).json()["status"] == "joined"
    platform: Platform = create_app(platform_process.db).state.platform
    as_teacher, as_pupil = (Caller(platform, client.cookies["ent_session"]) for client in (teacher, pupil))
    request: Callable[..., object] = getattr(virtual_classes, request_name)

    closing_before(platform, statement, as_teacher, vc["id"])
    with pytest.raises(HTTPException) as answer:
        request(platform, as_pupil, vc["id"])
    assert answer.value.status_code == 410, answer.value.detail
    people = teacher.get(f"/api/virtual-classes/{vc['id']}/participants").json()
    assert people["status"] == "closed" and all(p["state"] == "left" for p in people["participants"])
