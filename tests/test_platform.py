"""The reference platform over real HTTP: process, options, single sign-on and reading journeys.

A real server (two worker processes) on an ephemeral loopback port, no mocks."""

from __future__ import annotations

import argparse
import re
import socket
from pathlib import Path
from urllib.parse import urlencode

import pytest
from conftest import CALLBACK, Client, login, login_form, post_credentials, service_url, ticket_of

from schoolsurge.accounts import LEVELS, Roster
from schoolsurge.errors import PlatformStartError
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.server import add_target_arguments, bind_socket, run_target
from schoolsurge.platform.settings import PROFILES, Settings, SettingsError, resolve
from schoolsurge.safety import is_loopback_host as is_loopback

# ---- process, ready file, host refusal ------------------------------------------------------------------


def test_ready_file_holds_base_url_and_server_answers(platform_process: PlatformProcess, platform_url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", platform_url)
    assert platform_process.ready_file.read_text().strip() == platform_url
    # Write-then-rename leaves no temporary file next to the ready file.
    assert [p.name for p in platform_process.ready_file.parent.iterdir() if p.name.endswith(".tmp")] == []
    reply = Client(platform_url).get("/healthz")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    log = platform_process.log_path.read_text()
    assert "profile resized: 2 worker(s)" in log and f"listening on {platform_url}" in log


def test_openapi_schema_describes_every_journey(platform_url: str) -> None:
    reply = Client(platform_url).get("/openapi.json")
    assert reply.status == 200
    schema = reply.json()
    paths = schema["paths"]
    for path in (
        "/cas/login",
        "/cas/serviceValidate",
        "/ent/auth/callback",
        "/api/dashboard",
        "/api/timetable",
        "/api/homework",
        "/api/homework/{homework_id}/submissions",
        "/api/messages",
        "/api/children",
        "/api/children/{child}/select",
        "/api/classes",
        "/api/classes/{class_id}/homework",
        "/api/virtual-classes",
        "/api/virtual-classes/{id}/open",
        "/api/virtual-classes/{id}/join",
        "/api/virtual-classes/{id}/participants",
        "/admin/capacity",
        "/healthz",
        "/metrics",
    ):
        assert path in paths, path
    dashboard = paths["/api/dashboard"]["get"]["responses"]
    assert dashboard["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Dashboard"}
    assert dashboard["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    schemes = schema["components"]["securitySchemes"]
    assert schemes["APIKeyCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "ent_session",
        "description": "HttpOnly session cookie set by GET /ent/auth/callback",
    }
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert paths["/api/dashboard"]["get"]["security"] == [{"APIKeyCookie": []}]


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
    with pytest.raises(PlatformStartError, match="refusing to bind non-loopback"):
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
    assert (args.host, args.port, args.seed, args.size) == ("127.0.0.1", 8080, 2021, 1270)
    assert args.db is None and args.ready_file is None and args.allow_host is None and args.cache_dir is None
    profile, settings = resolve(args, environ={})
    assert profile == "undersized-2021"
    assert settings == Settings(**PROFILES["undersized-2021"])
    assert settings.hash_cost == 10 and settings.session_idle == 3600


def test_profile_environment_and_options_take_precedence_in_that_order() -> None:
    env = {"SCHOOLSURGE_PROFILE": "resized", "SCHOOLSURGE_WORKERS": "3", "SCHOOLSURGE_DB_TIMEOUT": "0.5"}
    profile, settings = resolve(parse_target_args([]), environ=env)
    assert profile == "resized"
    assert settings.workers == 3 and settings.db_timeout == 0.5  # environment over profile
    assert settings.max_in_flight == PROFILES["resized"]["max_in_flight"]  # profile over built-in default
    args = parse_target_args(["--profile", "undersized-2021", "--workers", "2", "--hash-cost", "12"])
    profile, settings = resolve(args, environ=env)
    assert profile == "undersized-2021" and settings.workers == 2 and settings.hash_cost == 12  # options win

    with pytest.raises(SettingsError, match="SCHOOLSURGE_WORKERS: expected a whole number"):
        resolve(parse_target_args([]), environ={"SCHOOLSURGE_WORKERS": "two"})
    with pytest.raises(SettingsError, match="SCHOOLSURGE_PROFILE='huge' is not a profile"):
        resolve(parse_target_args([]), environ={"SCHOOLSURGE_PROFILE": "huge"})
    with pytest.raises(SystemExit):
        parse_target_args(["--max-in-flight", "0"])


def test_bad_environment_is_a_one_line_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse_target_args(["--db", str(tmp_path / "never.sqlite3")])
    monkey = pytest.MonkeyPatch()
    monkey.setenv("SCHOOLSURGE_QUEUE_TIMEOUT", "soon")
    try:
        assert run_target(args) == 2
    finally:
        monkey.undo()
    error = capsys.readouterr().err.strip()
    assert "SCHOOLSURGE_QUEUE_TIMEOUT" in error and "\n" not in error
    assert not (tmp_path / "never.sqlite3").exists()


# ---- CAS ------------------------------------------------------------------------------------------------


def test_login_form_needs_an_http_service(platform_url: str) -> None:
    # Without a service the form is served (CAS 3.0 section 2.1.1: tests/test_platform_cas_protocol.py).
    for query in ("?service=", "?service=javascript:alert(1)", "?service=ftp://example.org/"):
        reply = Client(platform_url).get(f"/cas/login{query}")
        assert reply.status == 422 and reply.json()["detail"].startswith("query.service:"), query


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
    assert set(data) == {
        "username",
        "role",
        "display_name",
        "children",
        "selected_child",
        "classes",
        "virtual_classes",
    }
    assert (data["username"], data["role"], data["display_name"]) == (username, role, me["display_name"])
    class_ids = [c["id"] for c in data["classes"]]
    query = ""
    assert all(c["level"] in LEVELS for c in data["classes"])
    if role == "student":
        assert class_ids == [roster.class_of_pupil(3)] and data["children"] == []
        assert data["selected_child"] is None
    elif role == "teacher":
        assert class_ids == roster.classes_of_teacher(3) and data["children"] == []
    else:
        children = roster.families[3]
        assert [c["id"] for c in data["children"]] == list(children)
        assert all(c["class_id"] == roster.class_of_pupil(c["id"]) and c["name"] for c in data["children"])
        assert all(c["level"] == roster.level_of_pupil(c["id"]) for c in data["children"])
        assert class_ids == sorted({roster.class_of_pupil(c) for c in children})
        assert data["selected_child"] == children[0]  # a parent's session starts on their first child
        class_ids = [roster.class_of_pupil(children[0])]
        query = f"?child={children[0]}"
        # Without ?child=, the selected child's pages.
        assert client.get("/api/timetable").json() == client.get(f"/api/timetable{query}").json()

    timetable = client.get(f"/api/timetable{query}").json()
    lessons = timetable["lessons"]
    assert timetable["week_of"] == "2021-04-05"
    assert lessons and {lesson["class_id"] for lesson in lessons} == set(class_ids)
    assert set(lessons[0]) == {"day", "start", "end", "subject", "class_id"}
    # The surge week: Tuesday 6 to Friday 9 April (Monday 5 was Easter Monday).
    assert {lesson["day"] for lesson in lessons} <= {"2021-04-06", "2021-04-07", "2021-04-08", "2021-04-09"}
    assert "2021-04-06" in {lesson["day"] for lesson in lessons}
    homework = client.get(f"/api/homework{query}").json()["homework"]
    assert homework and {h["class_id"] for h in homework} == set(class_ids)
    assert set(homework[0]) == {"id", "class_id", "subject", "due", "text", "submitted_at"}
    inbox = client.get("/api/messages").json()["messages"]
    assert all(set(m) == {"id", "class_id", "sender", "subject", "body", "sent_at"} for m in inbox)
    assert {m["class_id"] for m in inbox} <= set(c["id"] for c in data["classes"])


def test_wrong_password_and_unknown_user_get_the_same_401(platform_url: str, platform_roster: Roster) -> None:
    client = Client(platform_url)
    username, _ = platform_roster.credentials("student", 1)
    pages = set()
    for user, secret in ((username, "not-the-password"), ("eleve.9999999", "whatever"), (username, "x" * 100)):
        reply = post_credentials(client, user, secret)
        # CAS 3.0: the login form again, with the error (and a fresh execution token: blanked to compare).
        assert reply.status == 401 and reply.headers["Content-Type"].startswith("text/html")
        assert "invalid username or password" in reply.text
        pages.add(re.sub(r'name="execution" value="[^"]+"', 'name="execution" value=""', reply.text))
    assert len(pages) == 1


def test_missing_form_fields_are_rejected_with_a_message_that_never_echoes_input(platform_url: str) -> None:
    reply = Client(platform_url).post("/cas/login", form={"username": "eleve.0000001", "password": "s3cret-pw"})
    assert reply.status == 422
    detail = reply.json()["detail"]
    assert detail.startswith("execution: Field required") and "s3cret-pw" not in reply.text


def test_passwords_never_reach_the_log(platform_process: PlatformProcess, platform_roster: Roster) -> None:
    username, password = platform_roster.credentials("teacher", 4)
    client = Client(platform_process.base_url)
    assert post_credentials(client, username, "Wr0ng-" + password).status == 401
    assert post_credentials(client, username, password).status == 302
    too_long = post_credentials(client, username, "Long-" + "x" * 2000)
    assert too_long.status == 422 and "Long-" not in too_long.text  # validation errors never echo input
    log = platform_process.log_path.read_text()
    assert password not in log and "Wr0ng-" not in log and "Long-" not in log


def test_execution_token_is_single_use(platform_url: str, platform_roster: Roster) -> None:
    client = Client(platform_url)
    username, password = platform_roster.credentials("student", 2)
    execution = login_form(client)
    assert post_credentials(client, username, password, execution).status == 302
    reply = post_credentials(client, username, password, execution)
    assert reply.status == 401 and "reload it" in reply.json()["detail"]
    assert post_credentials(client, username, password, "made-up-token").status == 401


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
    nobody = 999_999
    for page in ("timetable", "homework"):
        # Refused, and exactly as for a child who does not exist: the answer says nothing about who does.
        refused, missing = client.get(f"/api/{page}?child={stranger}"), client.get(f"/api/{page}?child={nobody}")
        assert refused.status == missing.status == 404
        assert refused.json() == missing.json() == {"detail": "no such child"}
    assert client.get("/api/homework?child=not-a-number").status == 422
