"""Hardening of the reference platform, each finding attacked for real over HTTP against real processes:
CAS tickets only for registered services, a refused second server leaves the first alone, the body limit on
bytes received, a read-only database refused at start, and the low-severity items (token out of the log,
/metrics token, 404 for what is not yours), wrong passwords slowing each account down whatever the addresses,
and login forms bound to their browser, never framed, with Secure cookies behind https."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from conftest import (
    CALLBACK,
    Client,
    Reply,
    log_in_when_allowed,
    login,
    login_form,
    metric_value,
    post_credentials,
    pupil_of_class,
    service_url,
    slow_down_checks,
    ticket_of,
)

from schoolsurge.accounts import Roster
from schoolsurge.errors import PlatformStartError
from schoolsurge.platform.body_limit import MAX_BODY_BYTES
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.server import add_target_arguments, resolve_access, run_target
from schoolsurge.platform.settings import Settings

SEED, SIZE, COST = 2021, 60, 4
NOTES = "http://notes.example/ent/auth/callback"  # another registered service, at the same path as the ENT's
ENT_ALIAS = "http://ent.example:8443"  # a public URL the ENT is also reached by (a reverse proxy)


def options(cache: Path, **extra: object) -> dict[str, object]:
    return {"seed": SEED, "size": SIZE, "hash_cost": COST, "cache_dir": cache, "startup_timeout": 60, **extra}


@pytest.fixture(scope="module")
def registry_platform(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    """Two workers, another registered service and another public URL: its own, so locks and throttling here
    touch nobody else's accounts."""
    root = tmp_path_factory.mktemp("hardened")
    args = ["--profile", "resized", "--service", NOTES, "--public-url", ENT_ALIAS]
    with PlatformProcess(**options(platform_cache, log_path=root / "log", extra_args=args)) as proc:
        yield proc


def parse_target_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_target_arguments(parser)
    return parser.parse_args(argv)


def location_ticket(location: str, service: str) -> str:
    match = re.fullmatch(re.escape(service) + r"\?ticket=(ST-[\w-]+)", location)
    assert match, location
    return match.group(1)


def credentials_for(client: Client, username: str, password: str, service: str) -> Reply:
    """POST the right credentials on a genuine login form, naming `service`."""
    form = {"username": username, "password": password, "execution": login_form(client), "service": service}
    return client.post("/cas/login", form=form)


# ---- 1. CAS issues tickets to registered services only ----------------------------------------------------


@pytest.mark.parametrize(
    "service",
    [
        "http://evil.example/ent/auth/callback",
        "http://{netloc}@evil.example/ent/auth/callback",
        "http://{netloc}.evil.example/ent/auth/callback",
        "https://{netloc}/ent/auth/callback",
        "http://{netloc}/ent/auth/callback/../../elsewhere",
        "http://evil.example/?next=http://{netloc}/ent/auth/callback",
        "http://[{netloc}/ent/auth/callback",  # no parser agrees on it: not registered either, and no 500
    ],
)
def test_cas_gives_no_ticket_to_an_unregistered_service(registry_platform: PlatformProcess, service: str) -> None:
    url = registry_platform.base_url
    service = service.format(netloc=urlsplit(url).netloc)
    roster = Roster(SEED, SIZE)
    username, password = roster.credentials("student", 5)
    client = Client(url)
    hashed_before = metric_value(client.get("/metrics").text, "schoolsurge_password_hash_seconds_count")

    form = client.get(f"/cas/login?{urlencode({'service': service})}")
    assert form.status == 403 and "execution" not in form.text
    assert form.json()["detail"].startswith("this service is not registered with the CAS server")
    page = client.get(f"/cas/login?{urlencode({'service': service})}", headers={"Accept": "text/html"})
    assert page.status == 403 and page.headers["Content-Type"].startswith("text/html")
    assert "evil" not in page.text and "execution" not in page.text  # never echoes the attacker's URL

    # Right credentials, a genuine login form, the attacker's service: refused, no redirect, no ticket.
    refused = credentials_for(client, username, password, service)
    assert refused.status == 403 and refused.headers["Location"] is None and "ST-" not in refused.text
    hashed_after = metric_value(client.get("/metrics").text, "schoolsurge_password_hash_seconds_count")
    assert hashed_after == hashed_before  # refused before any hashing


def test_ent_callback_takes_the_service_from_the_ticket_never_from_host_headers(
    registry_platform: PlatformProcess,
) -> None:
    url, roster = registry_platform.base_url, Roster(SEED, SIZE)
    username, password = roster.credentials("teacher", 3)
    client = Client(url)

    def notes_ticket() -> str:
        reply = credentials_for(client, username, password, NOTES)
        assert reply.status == 302
        return location_ticket(reply.headers["Location"], NOTES)

    # A ticket issued to another registered service, redeemed at the ENT by someone posing as that host:
    # the ENT callback accepts only tickets issued for its own callback URLs.
    forged = (
        {"Host": "notes.example"},
        {"X-Forwarded-Host": "notes.example", "X-Forwarded-Proto": "http"},
        {"Host": "notes.example", "X-Forwarded-Host": "notes.example", "Forwarded": "host=notes.example"},
    )
    for headers in forged:
        thief = Client(url)
        reply = thief.get(f"{CALLBACK}?ticket={notes_ticket()}", headers=headers)
        assert reply.status == 401 and "INVALID_SERVICE" in reply.json()["detail"], headers
        assert "ent_session" not in thief.cookies

    # The other service still redeems its own tickets over the CAS back channel (CAS semantics).
    validated = client.get(f"/cas/serviceValidate?{urlencode({'service': NOTES, 'ticket': notes_ticket()})}")
    assert f"<cas:user>{username}</cas:user>" in validated.text
    # ... but not as the ENT, and nobody validates for an unregistered service.
    for service in (service_url(url), "http://evil.example/ent/auth/callback"):
        xml = client.get(f"/cas/serviceValidate?{urlencode({'service': service, 'ticket': notes_ticket()})}")
        assert '<cas:authenticationFailure code="INVALID_SERVICE">' in xml.text, service

    # The ENT's own ticket opens a session whatever Host says: the ticket names its service, not the header.
    ticket = ticket_of(post_credentials(client, username, password))
    assert client.get(f"{CALLBACK}?ticket={ticket}", headers={"Host": "evil.example"}).status == 200


def test_the_ent_is_also_registered_at_its_public_url(registry_platform: PlatformProcess) -> None:
    url, roster = registry_platform.base_url, Roster(SEED, SIZE)
    username, password = roster.credentials("parent", 2)
    client = Client(url)
    alias = f"{ENT_ALIAS}{CALLBACK}"
    reply = credentials_for(client, username, password, alias)
    assert reply.status == 302
    assert client.get(f"{CALLBACK}?ticket={location_ticket(reply.headers['Location'], alias)}").status == 200
    assert client.get("/api/dashboard").json()["username"] == username
    assert f"CAS issues tickets to: {url}{CALLBACK}, {alias}, {NOTES}" in registry_platform.log_path.read_text()


def test_the_load_generators_client_logs_in_against_the_default_registry(platform_url: str) -> None:
    """The load generator's clients (schoolsurge/clients/) name the platform's bound URL as their service:
    registered by default. The ENT's client redeems its ticket at the callback; the generic CAS 3.0 client
    validates it itself at /cas/p3/serviceValidate and logs out with GET /cas/logout. In a subprocess, since
    locust monkey-patches the process that imports it."""
    script = textwrap.dedent(
        f"""
        from locust.contrib.fasthttp import FastHttpSession
        from locust.event import EventHook
        from schoolsurge.accounts import Roster
        from schoolsurge.clients import CasClient, ClientContext, ClientSettings, ReferencePlatformClient
        credentials = Roster({SEED}, {SIZE}).credentials("student", 9)
        client = ReferencePlatformClient(ClientContext(FastHttpSession({platform_url!r}, EventHook(), user=None)))
        client.login(*credentials)
        print(client.dashboard().role)
        http = FastHttpSession({platform_url!r}, EventHook(), user=None)
        cas = CasClient(ClientContext(http, ClientSettings(validation="p3")))
        cas.login(*credentials)
        cas.dashboard()
        cas.logout()
        print("p3")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()) == (0, ["student", "p3"]), done.stderr[-2000:]


def test_service_options_come_from_options_or_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"SCHOOLSURGE_SERVICES": f"{NOTES}, https://cahier.example/app", "SCHOOLSURGE_PUBLIC_URLS": ENT_ALIAS}
    access = resolve_access(parse_target_args([]), env)
    assert access.services == (NOTES, "https://cahier.example/app") and access.public_urls == (ENT_ALIAS,)
    access = resolve_access(parse_target_args(["--service", "https://other.example/cb"]), env)
    assert access.services == ("https://other.example/cb",)  # an option replaces the environment's list
    with pytest.raises(ValueError, match=r"service 'ftp://x/' is not an http\(s\) URL.*SCHOOLSURGE_SERVICES"):
        resolve_access(parse_target_args([]), {"SCHOOLSURGE_SERVICES": "ftp://x/"})
    with pytest.raises(ValueError, match="must not have a"):
        resolve_access(parse_target_args(["--public-url", "http://ent.example/?a=1"]), {})
    db_file = tmp_path / "never.sqlite3"
    assert run_target(parse_target_args(["--service", "javascript:alert(1)", "--db", str(db_file)])) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("schoolsurge target: service") and "\n" not in error
    assert not db_file.exists()  # refused before anything was prepared


# ---- 2. a refused second server leaves the first one's state alone ----------------------------------------


def test_a_refused_second_server_leaves_the_first_ones_state_alone(tmp_path: Path, platform_cache: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    with PlatformProcess(**options(platform_cache, db=db)) as first:
        admin = Client(first.base_url)
        bearer = {"Authorization": f"Bearer {first.admin_token}"}
        assert admin.post("/admin/capacity", body={"fraction_lost": 0.5}, headers=bearer).status == 200

        second = subprocess.run(
            [sys.executable, "-m", "schoolsurge.platform", "--port", "0", "--db", str(db), "--seed", str(SEED)]
            + ["--size", str(SIZE), "--hash-cost", str(COST), "--cache-dir", str(platform_cache)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0 and f"another platform is serving {db}" in second.stderr

        assert admin.get("/metrics").status == 200
        assert Path(f"{db}.admin-token").read_text().strip() == first.admin_token
        capacity = admin.get("/admin/capacity", headers=bearer)
        assert capacity.status == 200 and capacity.json()["fraction_lost"] == 0.5  # the incident is still on


# ---- 3. the body limit counts the bytes received, on every path --------------------------------------------


def worker_pid(server_pid: int) -> int:
    """The one uvicorn worker process (a spawned child) of a --workers 1 platform."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
            if ppid == server_pid and b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
                workers.append(int(entry.name))
    assert len(workers) == 1, workers
    return workers[0]


def peak_rss_bytes(pid: int) -> int:
    """The process's resident set high-water mark (VmHWM): a body buffered then freed still shows here."""
    match = re.search(r"^VmHWM:\s+(\d+) kB$", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    assert match
    return int(match.group(1)) * 1024


def stream_body(
    url: str, method: str, path: str, size: int, *, chunked: bool, headers: dict[str, str] | None = None
) -> tuple[int, int]:
    """Send `size` bytes of body, stopping as soon as the server answers; (status, bytes sent)."""
    parts = urlsplit(url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    sent_headers = {"Host": parts.netloc, "Content-Type": "application/json", **(headers or {})}
    head = f"{method} {path} HTTP/1.1\r\n{framing}\r\n"
    extra = "".join(f"{name}: {value}\r\n" for name, value in sent_headers.items())
    piece = b"x" * 65536
    sent = 0
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(f"{head}{extra}\r\n".encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < size and not select.select([sock], [], [], 0)[0]:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            if chunked and sent >= size:
                sock.sendall(b"0\r\n\r\n")
        answer = sock.recv(65536)
    status = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    assert status, answer[:200]
    return int(status.group(1)), sent


def test_oversize_bodies_are_refused_as_they_arrive_on_every_path(tmp_path: Path, platform_cache: Path) -> None:
    body_size = 20 << 20
    roster = Roster(SEED, SIZE)
    with PlatformProcess(**options(platform_cache, extra_args=["--workers", "1"])) as proc:
        url = proc.base_url
        pupil, _ = login(url, roster, "student", pupil_of_class(roster, 1))
        homework_id = pupil.get("/api/homework").json()["homework"][0]["id"]
        submissions = f"/api/homework/{homework_id}/submissions"
        cookie = {"Cookie": f"ent_session={pupil.cookies['ent_session']}"}
        worker = worker_pid(proc.pid or 0)
        # Warm up the paths taken below, so the high-water mark measures bodies, not first-time imports.
        assert pupil.post(submissions, body={"text": "avant"}).status == 201
        assert stream_body(url, "POST", submissions, 2 * MAX_BODY_BYTES, chunked=True, headers=cookie)[0] == 413
        peak_before = peak_rss_bytes(worker)

        attempts = [
            ("POST", submissions, True, cookie),  # chunked: no Content-Length to check up front
            ("POST", "/admin/capacity", False, {}),  # announced, to an operators' path, without a token
            ("POST", "/admin/capacity", True, {}),
            ("GET", "/metrics", False, {}),  # a path that never reads a body
            ("POST", "/cas/login", True, {"Content-Type": "application/x-www-form-urlencoded"}),
        ]
        for method, path, chunked, headers in attempts:
            status, sent = stream_body(url, method, path, body_size, chunked=chunked, headers=headers)
            assert status == 413, (method, path, chunked)
            assert sent < body_size, (method, path, chunked)  # the server stopped us well before the end

        grown = peak_rss_bytes(worker) - peak_before
        assert grown < body_size // 4, f"worker peak RSS grew by {grown >> 20} MB"
        # The worker is fine, and a body within the limit is still taken.
        assert pupil.post(submissions, body={"text": "x" * 4000}).status == 201
        assert Client(url).get("/healthz").status == 200
        scrape = Client(url).get("/metrics").text
        assert metric_value(scrape, "schoolsurge_http_requests_total", 'route="/admin/capacity",status="413"') == 2
        assert "Traceback" not in proc.log_path.read_text()  # the app, cut off mid-body, stopped quietly


# ---- 4. a database the server cannot write is refused at start ---------------------------------------------


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make `path` (a file or a folder) unwritable, even for root: tests run as root here, and root ignores
    permission bits, but not the immutable attribute (chattr +i). Other users lose the write bits instead."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    made = shutil.which("chattr") and subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    if not made:
        pytest.skip("cannot make a file unwritable for root here (chattr +i unsupported)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def refusal_of(proc: PlatformProcess) -> str:
    """Start `proc`, which must be refused; the log it left."""
    try:
        with pytest.raises(PlatformStartError, match="exited with code 1 before it was ready"):
            proc.start()
    finally:
        proc.stop()  # had it started after all
    return proc.log_path.read_text()


def test_a_database_that_cannot_be_written_is_refused_at_start(tmp_path: Path, platform_cache: Path) -> None:
    db, log = tmp_path / "data" / "platform.sqlite3", tmp_path / "platform.log"
    PlatformProcess(**options(platform_cache, db=db)).start().stop()  # a database of the right seed, kept
    with unwritable(db):
        text = refusal_of(PlatformProcess(**options(platform_cache, db=db, log_path=log)))
    assert f"schoolsurge target: cannot write the database {db} (attempt to write a readonly database)" in text
    assert "Traceback" not in text and "listening on" not in text  # one clear line, and never bound


def test_a_database_folder_that_cannot_be_written_is_refused_at_start(tmp_path: Path, platform_cache: Path) -> None:
    folder, log = tmp_path / "data", tmp_path / "platform.log"
    folder.mkdir()
    with unwritable(folder):
        text = refusal_of(PlatformProcess(**options(platform_cache, db=folder / "platform.sqlite3", log_path=log)))
    assert f"schoolsurge target: cannot create files in {folder} (" in text and "writable folder" in text
    assert "Traceback" not in text and "listening on" not in text


# ---- 5. low-severity items ---------------------------------------------------------------------------------


def test_the_admin_token_never_reaches_the_log(platform_process: PlatformProcess) -> None:
    log = platform_process.log_path.read_text()
    assert f"admin token (Authorization: Bearer ...) written to {platform_process.db}.admin-token" in log
    assert platform_process.admin_token not in log  # the log is copied into run directories


def test_metrics_can_require_a_bearer_token(platform_cache: Path) -> None:
    token = "metrics-" + "k" * 24
    with PlatformProcess(**options(platform_cache, extra_args=["--metrics-token", token])) as proc:
        client = Client(proc.base_url)
        anonymous = client.get("/metrics")
        assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"Authorization": "Bearer not-it"}).status == 403
        for accepted in (token, proc.admin_token):
            reply = client.get("/metrics", headers={"Authorization": f"Bearer {accepted}"})
            assert reply.status == 200 and "schoolsurge_workers" in reply.text
        assert client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["security"] == [{"HTTPBearer": []}]
        assert token not in proc.log_path.read_text()
    assert resolve_access(parse_target_args([]), {"SCHOOLSURGE_METRICS_TOKEN": token}).metrics_token == token
    with pytest.raises(ValueError, match="at least 16 characters"):
        resolve_access(parse_target_args(["--metrics-token", "short"]), {})


def test_default_metrics_stay_open(platform_url: str) -> None:
    assert Client(platform_url).get("/metrics").status == 200


def test_ids_not_yours_answer_exactly_like_ids_that_do_not_exist(
    registry_platform: PlatformProcess,
) -> None:
    """Otherwise a 403 for somebody else's id and a 404 for a free one would map what exists."""
    url, roster = registry_platform.base_url, Roster(SEED, SIZE)
    mine, theirs, nobody = 1, 3, 999_999
    pupil, _ = login(url, roster, "student", pupil_of_class(roster, mine))
    outsider, _ = login(url, roster, "student", pupil_of_class(roster, theirs))
    their_homework = outsider.get("/api/homework").json()["homework"][0]["id"]
    owner_idx = roster.main_class_of_teacher(theirs)
    owner, _ = login(url, roster, "teacher", owner_idx)
    their_vc = owner.post("/api/virtual-classes", body={"class_id": theirs, "title": "Histoire"}).json()["id"]
    colleague, _ = login(url, roster, "teacher", next(t for t in range(roster.teachers) if t != owner_idx))
    untaught = next(c for c in range(roster.classes) if c not in roster.classes_of_teacher(owner_idx))
    parent_idx = roster.parent_of_pupil(pupil_of_class(roster, mine))
    parent, _ = login(url, roster, "parent", parent_idx)
    stranger = next(p for p in range(roster.pupils) if p not in roster.families[parent_idx])

    probes = [
        (pupil, "POST", "/api/homework/{}/submissions", {"text": "x"}, their_homework),
        (pupil, "GET", "/api/homework/{}/submissions", None, their_homework),
        (pupil, "POST", "/api/virtual-classes/{}/join", None, their_vc),
        (pupil, "POST", "/api/virtual-classes/{}/heartbeat", None, their_vc),
        (pupil, "POST", "/api/virtual-classes/{}/leave", None, their_vc),
        (colleague, "POST", "/api/virtual-classes/{}/open", None, their_vc),
        (colleague, "GET", "/api/virtual-classes/{}/participants", None, their_vc),
        (owner, "POST", "/api/classes/{}/homework", {"subject": "x", "due": "2021-04-08", "text": "x"}, untaught),
        (parent, "POST", "/api/children/{}/select", None, stranger),
        (parent, "GET", "/api/timetable?child={}", None, stranger),
        (parent, "GET", "/api/homework?child={}", None, stranger),
    ]
    for client, method, path, body, existing in probes:
        not_yours = client.request(method, path.format(existing), body=body)
        missing = client.request(method, path.format(nobody), body=body)
        assert not_yours.status == missing.status == 404, (method, path, not_yours.status, missing.status)
        assert not_yours.json() == missing.json(), (method, path)
    for class_id in (untaught, nobody):
        reply = owner.post("/api/virtual-classes", body={"class_id": class_id, "title": "x"})
        assert (reply.status, reply.json()) == (404, {"detail": "no such class"})


def test_a_database_of_an_earlier_version_gets_the_new_login_tables_and_keeps_its_data(
    tmp_path: Path, platform_cache: Path
) -> None:
    db, roster = tmp_path / "old.sqlite3", Roster(SEED, SIZE)
    PlatformProcess(**options(platform_cache, db=db)).start().stop()
    conn = sqlite3.connect(db)
    conn.executescript(
        "DROP TABLE login_failures; CREATE TABLE login_failures (username TEXT NOT NULL, at REAL NOT NULL);"
        # Login forms before they were bound to a browser.
        "DROP TABLE login_flows; CREATE TABLE login_flows (token TEXT PRIMARY KEY, created_at REAL NOT NULL);"
        "INSERT INTO homework (class_id, subject, due, text) VALUES (0, 'kept', '2021-04-09', 'kept');"
    )
    conn.close()
    with PlatformProcess(**options(platform_cache, db=db)) as proc:
        username, password = roster.credentials("student", 2)
        client = Client(proc.base_url)
        assert post_credentials(client, username, "guess").status == 401  # recorded, with its address
        assert post_credentials(client, username, password).status == 302
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM homework WHERE subject = 'kept'").fetchone() == (1,)
    conn.close()


# ---- 6. wrong passwords slow each account down, whatever the addresses (issue #20, item 9) -------------------

HTTPS_ALIAS = "https://ent.example"  # the ENT's public URL behind a TLS proxy
LONGEST_WAIT = 2.0  # seconds, the https_platform's --throttle-max-delay: slow-downs waited out quickly
ACCOUNT_ALLOWED = Settings().account_throttle_failures  # wrong passwords for one account before it slows down
ADDRESS_ALLOWED = Settings().throttle_failures  # ... from one address


@pytest.fixture(scope="module")
def https_platform(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    """Two workers, reached over https at its public URL (a TLS proxy in front), slow-downs of at most 2 s and
    a window of an hour (nothing ages out during a test). Its own, so its accounts' slow-downs touch no other
    test."""
    root = tmp_path_factory.mktemp("https")
    args = ["--profile", "resized", "--public-url", HTTPS_ALIAS]
    args += ["--throttle-max-delay", str(LONGEST_WAIT), "--throttle-window", "3600"]
    with PlatformProcess(**options(platform_cache, log_path=root / "log", extra_args=args)) as proc:
        yield proc


def password_checks(url: str) -> float:
    """Passwords hashed so far by the platform (every worker)."""
    return metric_value(Client(url).get("/metrics").text, "schoolsurge_password_hash_seconds_count")


def outcome(reply: Reply) -> str:
    """ "checked" (the form again, wrong credentials), "slowed" (429) or, unexpected, the status and body."""
    if reply.status == 401 and "invalid username or password" in reply.text:
        return "checked"
    if reply.status == 429 and int(reply.headers["Retry-After"]) >= 1:
        return "slowed"
    return f"{reply.status} {reply.text[:200]}"


def wrong_password_burst(
    url: str, username: str, senders: list[tuple[str | None, dict[str, str]]], guesses: int
) -> tuple[Counter[str], float]:
    """Each sender (source address, headers), in a thread of its own, guesses `guesses` wrong passwords in a
    row, all senders at once; (outcomes, seconds the whole burst took)."""
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def guess_from(source: str | None, headers: dict[str, str]) -> None:
        client = Client(url, source_address=source)
        for _ in range(guesses):
            result = outcome(post_credentials(client, username, "not-the-password", headers=headers))
            with lock:
                outcomes[result] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(len(senders)) as pool:
        for done in [pool.submit(guess_from, source, headers) for source, headers in senders]:
            done.result()
    return outcomes, time.monotonic() - started


def assert_slowed_per_account(url: str, username: str, senders: list[tuple[str | None, dict[str, str]]]) -> None:
    """Ten senders, six wrong passwords each, all at once: checked, the account's allowance and then one per
    wait, whoever sends them."""
    hashed_before = password_checks(url)
    outcomes, elapsed = wrong_password_burst(url, username, senders, guesses=6)
    assert set(outcomes) <= {"checked", "slowed"}, outcomes
    # Per (address, account) only, 5 of each sender's 6 were checked: 50 of 60.
    assert ACCOUNT_ALLOWED <= outcomes["checked"] <= slow_down_checks(elapsed, ACCOUNT_ALLOWED, LONGEST_WAIT)
    assert password_checks(url) - hashed_before == outcomes["checked"]  # a slowed attempt costs no hashing


def test_wrong_passwords_from_many_addresses_slow_the_account_down(https_platform: PlatformProcess) -> None:
    url = https_platform.base_url
    username, password = Roster(SEED, SIZE).credentials("student", 11)
    senders: list[tuple[str | None, dict[str, str]]] = [(f"127.0.0.{i}", {}) for i in range(2, 12)]
    assert_slowed_per_account(url, username, senders)
    reply, _ = log_in_when_allowed(Client(url, source_address="127.0.0.12"), username, password)
    assert reply.status == 302


def test_wrong_passwords_through_a_proxy_slow_the_account_down(https_platform: PlatformProcess) -> None:
    """A proxy on loopback passes each client's address on in X-Forwarded-For, which the platform trusts from
    127.0.0.1 (uvicorn's FORWARDED_ALLOW_IPS): ten clients behind it, or one attacker writing the header."""
    url = https_platform.base_url
    username, password = Roster(SEED, SIZE).credentials("student", 12)
    senders: list[tuple[str | None, dict[str, str]]] = [
        (None, {"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(10)
    ]
    assert_slowed_per_account(url, username, senders)
    reply, _ = log_in_when_allowed(Client(url), username, password, headers={"X-Forwarded-For": "203.0.113.99"})
    assert reply.status == 302


def test_one_address_is_slowed_down_never_locked_out(https_platform: PlatformProcess) -> None:
    """Behind a proxy that does not pass addresses on, everyone shares its address: guesses from it slow that
    address down, and whoever shares it still gets in with the right password once the wait is over."""
    url = https_platform.base_url
    username, password = Roster(SEED, SIZE).credentials("student", 13)
    attacker, elsewhere = Client(url), Client(url, source_address="127.0.0.2")
    started = time.monotonic()
    for _ in range(ADDRESS_ALLOWED):
        assert post_credentials(attacker, username, "guess").status == 401
    # Another address is not slowed down by them: the account as a whole is below its allowance.
    assert post_credentials(elsewhere, username, "typo").status == 401
    assert post_credentials(elsewhere, username, password).status == 302
    # The guessing address goes on: past its allowance, one check per wait.
    outcomes, _ = wrong_password_burst(url, username, [(None, {})], guesses=10)
    checks_allowed = slow_down_checks(time.monotonic() - started, 0, LONGEST_WAIT)
    assert set(outcomes) <= {"checked", "slowed"} and outcomes["checked"] <= checks_allowed, outcomes
    # Whoever shares it gets in with the right password after the wait: a slow-down, not a lock.
    reply, _ = log_in_when_allowed(attacker, username, password, deadline_s=30)
    assert reply.status == 302


# ---- 7. login CSRF, framing, Secure cookies (issue #20, item 12) ---------------------------------------------


def test_a_login_form_works_only_in_the_browser_it_was_given_to(platform_url: str, platform_roster: Roster) -> None:
    """Login CSRF: an attacker's own form, posted from the victim's browser, would log the victim in as the
    attacker. The execution token is bound to the browser that got the form (its login-flow cookie)."""
    attacker, victim = Client(platform_url), Client(platform_url)
    username, password = platform_roster.credentials("parent", 4)  # the attacker's own account
    hashed_before = password_checks(platform_url)
    login_form(victim)  # the victim's browser has a login flow of its own
    for browser in (victim, Client(platform_url)):  # with it, and with no cookie at all
        reply = post_credentials(browser, username, password, login_form(attacker))
        assert reply.status == 401 and "another browser" in reply.json()["detail"], reply.text
    # A browser is shown the form again (CAS 3.0: back to /login), bound to itself this time.
    page = victim.post(
        "/cas/login",
        form={"username": username, "password": password, "execution": login_form(attacker)},
        headers={"Accept": "text/html"},
    )
    assert page.status == 401 and page.headers["Content-Type"].startswith("text/html")
    assert "opened in another browser" in page.text and "cas_login_flow" in (page.headers["Set-Cookie"] or "")
    assert password_checks(platform_url) == hashed_before  # refused before any hashing
    fresh = re.search(r'name="execution" value="([^"]+)"', page.text)
    assert fresh is not None
    assert post_credentials(victim, username, password, fresh.group(1)).status == 302
    # The token is used up by a post from the wrong browser: its owner cannot use it any more either.
    planted = login_form(attacker)
    assert post_credentials(victim, username, password, planted).status == 401
    assert post_credentials(attacker, username, password, planted).status == 401
    assert post_credentials(attacker, username, password).status == 302  # a form of its own works


def test_html_pages_may_not_be_framed(platform_url: str, platform_roster: Roster) -> None:
    client = Client(platform_url)
    username, password = platform_roster.credentials("teacher", 6)
    html = {"Accept": "text/html"}
    evil = urlencode({"service": "http://evil.example/ent/auth/callback"})
    no_service = {"username": username, "password": password, "_eventId": "submit"}
    pages = {
        "login form": client.get(f"/cas/login?{urlencode({'service': service_url(platform_url)})}"),
        "wrong password": post_credentials(client, username, "typo"),
        "stale form": client.post("/cas/login", form={**no_service, "execution": "made-up"}, headers=html),
        "logged in": client.post("/cas/login", form={**no_service, "execution": login_form(client)}),
        "unregistered service": client.get(f"/cas/login?{evil}", headers=html),
        "logged out": client.get("/cas/logout"),
    }
    for name, page in pages.items():
        assert page.headers["Content-Type"].startswith("text/html"), name
        assert page.headers["X-Frame-Options"] == "DENY", name
        policy = dict(d.strip().split(" ", 1) for d in (page.headers["Content-Security-Policy"] or "").split(";"))
        assert policy.get("frame-ancestors") == "'none'" and policy.get("default-src") == "'none'", (name, policy)


def cookie_attributes(reply: Reply, name: str) -> set[str]:
    """The attributes (lower case: httponly, secure, path=/, ...) of the cookie `name` the reply sets."""
    for header in reply.headers.get_all("Set-Cookie") or []:
        cookie, *attributes = (part.strip() for part in header.split(";"))
        if cookie.partition("=")[0] == name:
            return {attribute.lower() for attribute in attributes}
    raise AssertionError(f"no {name} cookie set: {reply.headers.get_all('Set-Cookie')}")


@pytest.mark.parametrize("over_https", [True, False], ids=["https public URL", "http only"])
def test_cookies_are_secure_when_the_ent_is_reached_over_https(
    over_https: bool, https_platform: PlatformProcess, platform_url: str
) -> None:
    url = https_platform.base_url if over_https else platform_url
    username, password = Roster(SEED, SIZE).credentials("teacher", 7)
    client = Client(url)
    form = client.get(f"/cas/login?{urlencode({'service': service_url(url)})}")
    logged_in = post_credentials(client, username, password)
    callback = client.get(f"{CALLBACK}?ticket={ticket_of(logged_in)}")
    logged_out = client.get("/cas/logout")
    set_cookies = {
        "login flow, set": (cookie_attributes(form, "cas_login_flow"), "path=/cas"),
        "login flow, dropped": (cookie_attributes(logged_in, "cas_login_flow"), "path=/cas"),
        "session, set": (cookie_attributes(callback, "ent_session"), "path=/"),
        "session, dropped": (cookie_attributes(logged_out, "ent_session"), "path=/"),
    }
    for name, (attributes, path) in set_cookies.items():
        assert {"httponly", "samesite=lax", path} <= attributes, (name, attributes)
        assert ("secure" in attributes) is over_https, (name, attributes)
