"""The reference platform over real HTTP: a real server process on an ephemeral loopback port, no mocks."""

from __future__ import annotations

import argparse
import http.client
import json
import re
import socket
import sqlite3
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import bcrypt
import pytest

from schoolsurge.accounts import Roster
from schoolsurge.platform import db as platform_db
from schoolsurge.platform.process import PlatformError, PlatformProcess
from schoolsurge.platform.seed import ensure_database
from schoolsurge.platform.server import add_target_arguments, bind_socket, is_loopback, run_target

CALLBACK = "/ent/auth/callback"


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """A tiny HTTP client that keeps the ent_session cookie and never follows redirects."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, *, form: dict[str, str] | None = None, body: Any = None, raw: bytes | None = None
    ) -> Reply:
        parts = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        payload = raw
        if form is not None:
            payload = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            payload = json.dumps(body).encode()
        if payload is not None and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            reply = Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()
        for cookie in reply.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0].strip('"')
            if value and "max-age=0" not in cookie.lower():
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)


def service_url(base_url: str) -> str:
    return f"{base_url}{CALLBACK}"


def login_form(client: Client) -> str:
    """GET the CAS form; returns its execution token."""
    reply = client.get(f"/cas/login?{urlencode({'service': service_url(client.base_url)})}")
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    match = re.search(r'<input type="hidden" name="execution" value="([^"]+)">', reply.text)
    assert match, reply.text
    return match.group(1)


def post_credentials(client: Client, username: str, password: str, execution: str | None = None) -> Reply:
    execution = execution or login_form(client)
    form = {"username": username, "password": password, "execution": execution}
    return client.post("/cas/login", form={**form, "service": service_url(client.base_url)})


def ticket_of(reply: Reply) -> str:
    assert reply.status == 302, reply.text
    location = reply.headers["Location"]
    match = re.fullmatch(r"http://127\.0\.0\.1:\d+/ent/auth/callback\?ticket=(ST-[\w-]+)", location)
    assert match, location
    return match.group(1)


def login(base_url: str, roster: Roster, role: str, index: int) -> tuple[Client, dict[str, Any]]:
    """Full CAS round trip: form, credentials, redirect with ticket, ENT callback that sets the cookie."""
    client = Client(base_url)
    username, password = roster.credentials(role, index)
    ticket = ticket_of(post_credentials(client, username, password))
    reply = client.get(f"{CALLBACK}?ticket={ticket}")
    assert reply.status == 200, reply.text
    assert "ent_session" in client.cookies
    return client, reply.json()


def metric_value(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# ---- process, ready file, host refusal ------------------------------------------------------------------


def test_ready_file_holds_base_url_and_server_answers(platform_process: PlatformProcess, platform_url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", platform_url)
    assert platform_process.ready_file.read_text().strip() == platform_url
    # Write-then-rename leaves no temporary file next to the ready file.
    assert [p.name for p in platform_process.ready_file.parent.iterdir() if p.name.endswith(".tmp")] == []
    reply = Client(platform_url).get("/healthz")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})


def parse_target_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_target_arguments(parser)
    return parser.parse_args(argv)


def test_non_loopback_host_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_file = tmp_path / "never.sqlite3"
    assert run_target(parse_target_args(["--host", "0.0.0.0", "--db", str(db_file)])) == 2
    assert "refusing" in capsys.readouterr().err
    args = parse_target_args(["--host", "0.0.0.0", "--allow-host", "192.0.2.1", "--db", str(db_file)])
    assert run_target(args) == 2
    assert not db_file.exists()  # refused before any seeding
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.1.2.3", "::", "example.org"))


def test_platform_process_reports_an_early_exit(tmp_path: Path) -> None:
    proc = PlatformProcess(host="0.0.0.0", size=5, hash_cost=4, db=tmp_path / "x.sqlite3")
    with pytest.raises(PlatformError, match="refusing to bind non-loopback"):
        proc.start()
    assert not proc.ready_file.parent.exists()  # its temporary folder (default log included) is cleaned up


def test_listening_socket_is_tcp_so_asyncio_disables_nagle() -> None:
    # A proto-0 socket makes asyncio skip TCP_NODELAY, which adds ~40 ms to each keep-alive response.
    sock, url = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert url == f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def test_options_defaults() -> None:
    args = parse_target_args([])
    assert (args.host, args.port, args.seed, args.size, args.hash_cost) == ("127.0.0.1", 8080, 2021, 1270, 10)
    assert args.db is None and args.ready_file is None and args.allow_host is None


# ---- CAS ------------------------------------------------------------------------------------------------


def test_login_form_needs_a_service(platform_url: str) -> None:
    assert Client(platform_url).get("/cas/login").status == 400


@pytest.mark.parametrize("role", ["student", "teacher", "parent"])
def test_full_login_then_dashboard_timetable_homework(platform_url: str, platform_roster: Roster, role: str) -> None:
    roster = platform_roster
    client = Client(platform_url)
    username, password = roster.credentials(role, 3)
    ticket = ticket_of(post_credentials(client, username, password))
    reply = client.get(f"{CALLBACK}?ticket={ticket}")
    assert reply.status == 200
    me = reply.json()
    assert me["username"] == username and me["role"] == role and me["display_name"]
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith("ent_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Path=/" in cookie
    assert len(client.cookies["ent_session"]) >= 22  # at least 128 bits in base64url

    dash = client.get("/api/dashboard")
    assert dash.status == 200
    data = dash.json()
    assert set(data) == {"username", "role", "display_name", "children", "classes", "open_virtual_classes"}
    assert (data["username"], data["role"], data["display_name"]) == (username, role, me["display_name"])
    class_ids = [c["id"] for c in data["classes"]]
    query = ""
    if role == "student":
        assert class_ids == [roster.class_of_pupil(3)] and data["children"] == []
    elif role == "teacher":
        assert class_ids == roster.classes_of_teacher(3) and data["children"] == []
    else:
        children = roster.families[3]
        assert [c["id"] for c in data["children"]] == list(children)
        assert all(c["class_id"] == roster.class_of_pupil(c["id"]) and c["name"] for c in data["children"])
        assert class_ids == sorted({roster.class_of_pupil(c) for c in children})
        class_ids = [roster.class_of_pupil(children[0])]
        query = f"?child={children[0]}"
        assert client.get("/api/timetable").status == 400  # parents must choose a child

    lessons = client.get(f"/api/timetable{query}").json()["lessons"]
    assert lessons and {lesson["class_id"] for lesson in lessons} == set(class_ids)
    assert set(lessons[0]) == {"day", "start", "end", "subject", "class_id"}
    homework = client.get(f"/api/homework{query}").json()["homework"]
    assert homework and {h["class_id"] for h in homework} == set(class_ids)
    assert set(homework[0]) == {"id", "class_id", "subject", "due", "text"}


def test_wrong_password_and_unknown_user_get_the_same_401(platform_url: str, platform_roster: Roster) -> None:
    client = Client(platform_url)
    username, _ = platform_roster.credentials("student", 1)
    for user, secret in ((username, "not-the-password"), ("eleve.9999999", "whatever"), (username, "x" * 100)):
        reply = post_credentials(client, user, secret)
        assert reply.status == 401
        assert reply.json() == {"detail": "invalid username or password"}


def test_missing_form_fields_are_rejected(platform_url: str) -> None:
    reply = Client(platform_url).post("/cas/login", form={"username": "eleve.0000001"})
    assert 400 <= reply.status < 500


def test_execution_token_is_single_use(platform_url: str, platform_roster: Roster) -> None:
    client = Client(platform_url)
    username, password = platform_roster.credentials("student", 2)
    execution = login_form(client)
    assert post_credentials(client, username, password, execution).status == 302
    reply = post_credentials(client, username, password, execution)
    assert reply.status == 400 and reply.json()["detail"]
    assert post_credentials(client, username, password, "made-up-token").status == 400


def test_service_ticket_is_single_use(platform_url: str, platform_roster: Roster) -> None:
    client = Client(platform_url)
    username, password = platform_roster.credentials("teacher", 1)
    service = service_url(platform_url)

    # Redeemed at the ENT callback first: the back channel then refuses it.
    ticket = ticket_of(post_credentials(client, username, password))
    assert client.get(f"{CALLBACK}?ticket={ticket}").status == 200
    reply = client.get(f"{CALLBACK}?ticket={ticket}")
    assert reply.status == 401 and reply.json()["detail"]
    xml = client.get(f"/cas/serviceValidate?{urlencode({'service': service, 'ticket': ticket})}")
    assert xml.status == 200 and '<cas:authenticationFailure code="INVALID_TICKET">' in xml.text

    # Redeemed at serviceValidate first: CAS 2.0 success once, then failure, and the callback refuses it.
    ticket = ticket_of(post_credentials(client, username, password))
    xml = client.get(f"/cas/serviceValidate?{urlencode({'service': service, 'ticket': ticket})}")
    assert xml.status == 200
    assert xml.text.startswith('<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">')
    assert f"<cas:authenticationSuccess><cas:user>{username}</cas:user></cas:authenticationSuccess>" in xml.text
    xml = client.get(f"/cas/serviceValidate?{urlencode({'service': service, 'ticket': ticket})}")
    assert "authenticationFailure" in xml.text
    assert client.get(f"{CALLBACK}?ticket={ticket}").status == 401


def test_requests_without_a_valid_session_get_401(platform_url: str, platform_roster: Roster) -> None:
    anonymous = Client(platform_url)
    forged = Client(platform_url, cookies={"ent_session": "forged-token"})
    for client in (anonymous, forged):
        for path in ("/api/dashboard", "/api/timetable", "/api/homework"):
            reply = client.get(path)
            assert reply.status == 401 and reply.json()["detail"]
        assert client.post("/api/virtual-classes", body={"class_id": 0, "title": "x"}).status == 401
        assert client.post("/api/virtual-classes/1/join").status == 401

    client, _ = login(platform_url, platform_roster, "student", 4)
    token = client.cookies["ent_session"]
    reply = client.post("/cas/logout")
    assert reply.status == 200 and "ent_session" not in client.cookies
    assert Client(platform_url, cookies={"ent_session": token}).get("/api/dashboard").status == 401


def test_parent_cannot_read_someone_elses_child(platform_url: str, platform_roster: Roster) -> None:
    client, _ = login(platform_url, platform_roster, "parent", 0)
    stranger = next(p for p in range(platform_roster.pupils) if p not in platform_roster.families[0])
    assert client.get(f"/api/timetable?child={stranger}").status == 403
    assert client.get(f"/api/homework?child={stranger}").status == 403
    assert client.get("/api/homework?child=not-a-number").status == 422


# ---- virtual classes ------------------------------------------------------------------------------------


def test_virtual_class_lifecycle(platform_url: str, platform_roster: Roster) -> None:
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
        "status": "open",
        "join_url": f"/api/virtual-classes/{vc['id']}/join",
    }

    pupils = [p for p in range(roster.pupils) if roster.class_of_pupil(p) == main_class]
    pupil, _ = login(platform_url, roster, "student", pupils[0])
    dash = pupil.get("/api/dashboard").json()
    assert {"id": vc["id"], "class_id": main_class, "title": "Maths, 6 avril", "status": "open"} in dash[
        "open_virtual_classes"
    ]
    reply = pupil.post(vc["join_url"])
    assert reply.status == 200 and reply.json() == {"status": "joined", "participants": 1}
    classmate, _ = login(platform_url, roster, "student", pupils[1])
    assert classmate.post(vc["join_url"]).json()["participants"] == 2
    assert pupil.post(f"/api/virtual-classes/{vc['id']}/heartbeat").json() == {"status": "ok"}
    assert teacher.post(f"/api/virtual-classes/{vc['id']}/heartbeat").json() == {"status": "ok"}
    assert pupil.post(f"/api/virtual-classes/{vc['id']}/leave").json() == {"status": "left"}
    assert pupil.post(f"/api/virtual-classes/{vc['id']}/heartbeat").status == 403  # no longer in it

    outsider = next(p for p in range(roster.pupils) if roster.class_of_pupil(p) != main_class)
    other, _ = login(platform_url, roster, "student", outsider)
    assert other.post(vc["join_url"]).status == 403
    assert other.post(f"/api/virtual-classes/{vc['id']}/heartbeat").status == 403
    parent, _ = login(platform_url, roster, "parent", 1)
    assert parent.post(vc["join_url"]).status == 403
    assert pupil.post("/api/virtual-classes/999999/join").status == 404

    # The teacher leaving closes the class: it disappears from dashboards and cannot be joined.
    assert teacher.post(f"/api/virtual-classes/{vc['id']}/leave").json() == {"status": "left"}
    assert vc["id"] not in [v["id"] for v in pupil.get("/api/dashboard").json()["open_virtual_classes"]]
    assert pupil.post(vc["join_url"]).status == 409


def test_virtual_class_creation_rules(platform_url: str, platform_roster: Roster) -> None:
    roster = platform_roster
    teacher, _ = login(platform_url, roster, "teacher", 0)
    untaught = next(c for c in range(roster.classes) if c not in roster.classes_of_teacher(0))
    assert teacher.post("/api/virtual-classes", body={"class_id": untaught, "title": "x"}).status == 403
    pupil, _ = login(platform_url, roster, "student", 0)
    assert pupil.post("/api/virtual-classes", body={"class_id": 0, "title": "x"}).status == 403
    for bad in (b"{not json", b"[]", b'{"class_id": "zero", "title": "x"}', b'{"class_id": 0}'):
        reply = teacher.post("/api/virtual-classes", raw=bad)
        assert reply.status == 422 and reply.json()["detail"]


# ---- metrics --------------------------------------------------------------------------------------------


def test_metrics_reflect_logins_and_virtual_classes(platform_url: str, platform_roster: Roster) -> None:
    scrape = Client(platform_url)
    before = scrape.get("/metrics").text
    teacher, _ = login(platform_url, platform_roster, "teacher", 1)
    post_credentials(Client(platform_url), "prof.0000001", "wrong")
    main_class = platform_roster.main_class_of_teacher(1)
    vc = teacher.post("/api/virtual-classes", body={"class_id": main_class, "title": "Français"}).json()
    pupil_idx = next(p for p in range(platform_roster.pupils) if platform_roster.class_of_pupil(p) == main_class)
    pupil, _ = login(platform_url, platform_roster, "student", pupil_idx)
    assert pupil.post(vc["join_url"]).status == 200

    reply = scrape.get("/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    after = reply.text

    def delta(name: str, labels: str = "") -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    assert delta("schoolsurge_logins_total", 'outcome="success"') == 2
    assert delta("schoolsurge_logins_total", 'outcome="failure"') == 1
    assert delta("schoolsurge_virtual_classes_created_total") == 1
    assert delta("schoolsurge_virtual_class_joins_total") == 1
    assert delta("schoolsurge_http_requests_total", 'route="/api/virtual-classes/{id}/join",status="200"') == 1
    assert delta("schoolsurge_http_requests_total", 'route="/cas/login",status="302"') == 2
    assert metric_value(after, "schoolsurge_active_sessions") >= 2
    # Route labels are templates, never raw ids.
    assert f"/api/virtual-classes/{vc['id']}/" not in after


# ---- seeding --------------------------------------------------------------------------------------------


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything but the (salted) password hashes and the build stamp."""
    conn = sqlite3.connect(path)
    try:
        queries = {
            "accounts": "SELECT username, role, idx, display_name, class_id FROM accounts ORDER BY id",
            "schools": "SELECT * FROM schools ORDER BY id",
            "classes": "SELECT * FROM classes ORDER BY id",
            "teacher_classes": "SELECT a.idx, tc.class_id FROM teacher_classes tc"
            " JOIN accounts a ON a.id = tc.teacher_id ORDER BY 1, 2",
            "parent_children": "SELECT p.idx, c.idx FROM parent_children pc JOIN accounts p ON p.id = pc.parent_id"
            " JOIN accounts c ON c.id = pc.child_id ORDER BY 1, 2",
            "lessons": "SELECT * FROM lessons ORDER BY id",
            "homework": "SELECT * FROM homework ORDER BY id",
        }
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        conn.close()


def test_seeding_is_deterministic_and_matches_the_roster(tmp_path: Path) -> None:
    roster = Roster(7, 80)
    first, second, other = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3", tmp_path / "c.sqlite3"
    logs: list[str] = []
    for path, seed in ((first, 7), (second, 7), (other, 8)):
        assert ensure_database(path, seed, 80, 4, log=logs.append) is True
    assert dump(first) == dump(second)
    assert dump(first)["accounts"] != dump(other)["accounts"]  # another seed, other names

    data = dump(first)
    expected = {
        (role, i): roster.credentials(role, i)[0]
        for role in ("student", "teacher", "parent")
        for i in range(roster.count(role))
    }
    assert {(r, i): u for u, r, i, _, _ in data["accounts"]} == expected
    assert all(name for *_, name, _ in data["accounts"])
    assert {(i, c) for u, r, i, _, c in data["accounts"] if r == "student"} == {
        (p, roster.class_of_pupil(p)) for p in range(roster.pupils)
    }
    assert set(data["parent_children"]) == {(p, c) for p, kids in enumerate(roster.families) for c in kids}
    assert set(data["teacher_classes"]) == {
        (t, c) for t in range(roster.teachers) for c in roster.classes_of_teacher(t)
    }
    # Passwords are bcrypt hashes, at the requested cost, of the roster's passwords.
    conn = sqlite3.connect(first)
    for role in ("student", "teacher", "parent"):
        user, secret = roster.credentials(role, 1)
        (hashed,) = conn.execute("SELECT password_hash FROM accounts WHERE username = ?", (user,)).fetchone()
        assert hashed.startswith(b"$2b$04$") and bcrypt.checkpw(secret.encode(), hashed)
    conn.close()


def test_cache_is_reused_and_rebuilt_only_when_stale(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    logs: list[str] = []
    assert ensure_database(path, 3, 30, 4, log=logs.append) is True
    build_id = platform_db.read_meta(path)["build_id"]
    assert ensure_database(path, 3, 30, 4, log=logs.append) is False
    assert platform_db.read_meta(path)["build_id"] == build_id
    assert not list(tmp_path.glob("*.tmp"))

    # Another cost, or a file not marked complete, is rebuilt.
    assert ensure_database(path, 3, 30, 5, log=logs.append) is True
    assert platform_db.read_meta(path)["hash_cost"] == "5"
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'complete'")
    conn.commit()
    conn.close()
    assert ensure_database(path, 3, 30, 5, log=logs.append) is True


def test_second_start_reuses_the_database(tmp_path: Path) -> None:
    path = tmp_path / "reuse.sqlite3"
    log = tmp_path / "platform.log"
    with PlatformProcess(seed=5, size=30, hash_cost=4, db=path, log_path=log, startup_timeout=60) as proc:
        login(proc.base_url, Roster(5, 30), "teacher", 0)
    build_id = platform_db.read_meta(path)["build_id"]
    assert "seeding" in log.read_text() and "reusing" not in log.read_text()
    log.write_text("")
    with PlatformProcess(seed=5, size=30, hash_cost=4, db=path, log_path=log, startup_timeout=60) as proc:
        # A fresh run: sessions of the earlier run are gone, accounts are intact.
        client, me = login(proc.base_url, Roster(5, 30), "student", 0)
        assert me["username"] == "eleve.0000000"
        assert client.get("/metrics").text.count("schoolsurge_active_sessions 1.0") == 1
    assert platform_db.read_meta(path)["build_id"] == build_id
    assert "reusing cached database" in log.read_text() and "seeding" not in log.read_text()
