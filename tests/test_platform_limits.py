"""Finite capacity over real HTTP: admission control (503 + Retry-After), incidents, throttling, expiry,
room capacity, and the metrics that show them, global across worker processes."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

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
    slow_down_checks,
    ticket_of,
)
from starlette.types import Message, Receive, Scope, Send

from schoolsurge.accounts import Roster
from schoolsurge.platform.metrics import Metrics, RequestMetrics, RouteTemplates
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.settings import Settings
from schoolsurge.rundir.metrics import HTTP_REQUESTS

SHORT = 1.0  # seconds: lifetimes of the short-lived platform below


@pytest.fixture(scope="module")
def tight_platform(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    """One worker, one slot, two queue places that time out fast, and expensive logins (bcrypt cost 12,
    about 0.2 s): a handful of simultaneous logins overflows it."""
    root = tmp_path_factory.mktemp("tight")
    args = ["--workers", "1", "--max-in-flight", "1", "--queue-length", "2", "--queue-timeout", "0.1"]
    with PlatformProcess(
        seed=3, size=1, hash_cost=12, cache_dir=platform_cache, log_path=root / "log", extra_args=args
    ) as proc:
        yield proc


@pytest.fixture(scope="module")
def short_platform(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    """Lifetimes of a second, a tiny virtual-class room: expiry without long sleeps."""
    root = tmp_path_factory.mktemp("short")
    args = ["--ticket-ttl", str(SHORT), "--login-flow-ttl", str(SHORT), "--session-idle", str(SHORT)]
    args += ["--throttle-window", str(SHORT), "--throttle-failures", "2", "--room-capacity", "3"]
    with PlatformProcess(
        seed=5, size=60, hash_cost=4, cache_dir=platform_cache, log_path=root / "log", extra_args=args
    ) as proc:
        yield proc


def concurrently(count: int, action: object) -> list[Reply]:
    """Run `action(i)` in `count` threads released together; their replies in order."""
    barrier = threading.Barrier(count)
    replies: list[Reply | None] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        replies[i] = action(i)  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in replies)
    return replies  # type: ignore[return-value]


# ---- admission control ----------------------------------------------------------------------------------


def test_beyond_slots_and_queue_requests_are_shed_with_retry_after(tight_platform: PlatformProcess) -> None:
    url = tight_platform.base_url
    before = Client(url).get("/metrics").text
    # Forms first (cheap), then the expensive credential checks all at once.
    clients = [Client(url) for _ in range(10)]
    executions = [login_form(c) for c in clients]
    replies = concurrently(10, lambda i: post_credentials(clients[i], f"nobody.{i}", "wrong", executions[i]))
    statuses = Counter(r.status for r in replies)
    assert statuses[401] >= 1  # at least the one holding the slot was checked (and refused)
    assert statuses[503] >= 1 and set(statuses) <= {401, 503}
    shed = [r for r in replies if r.status == 503]
    assert all(r.headers["Retry-After"] == "1" and r.json()["detail"].startswith("overloaded") for r in shed)

    after = Client(url).get("/metrics").text

    def delta(name: str, labels: str = "") -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    shed_total = delta("schoolsurge_requests_shed_total", 'reason="queue_full"') + delta(
        "schoolsurge_requests_shed_total", 'reason="queue_timeout"'
    )
    assert shed_total == statuses[503]
    assert delta("schoolsurge_http_requests_total", 'route="/cas/login",status="503"') == statuses[503]
    assert delta("schoolsurge_logins_total", 'outcome="failure"') == statuses[401]
    assert delta("schoolsurge_password_hash_seconds_count") == statuses[401]
    assert delta("schoolsurge_password_hash_seconds_sum") > 0.05 * statuses[401]  # cost 12 is slow on purpose
    # Nothing is left in flight or queued, and the operators' endpoints never queue.
    assert metric_value(after, "schoolsurge_in_flight_requests") == 0
    assert metric_value(after, "schoolsurge_admission_queue_depth") == 0
    assert metric_value(after, "schoolsurge_in_flight_limit") == 1
    assert metric_value(after, "schoolsurge_queue_limit") == 2
    assert Client(url).get("/healthz").status == 200


def test_a_queued_request_waits_for_a_slot_within_its_timeout(tmp_path: Path, platform_cache: Path) -> None:
    args = ["--workers", "1", "--max-in-flight", "1", "--queue-length", "4", "--queue-timeout", "30"]
    with PlatformProcess(seed=3, size=1, hash_cost=12, cache_dir=platform_cache, extra_args=args) as proc:
        clients = [Client(proc.base_url) for _ in range(3)]
        executions = [login_form(c) for c in clients]
        replies = concurrently(3, lambda i: post_credentials(clients[i], f"nobody.{i}", "wrong", executions[i]))
    # One slot, a queue of four with a long timeout: everybody is served in turn, nobody is shed.
    assert [r.status for r in replies] == [401, 401, 401]


# ---- incidents -----------------------------------------------------------------------------------------


def test_admin_endpoint_needs_the_token_written_next_to_the_database(platform_process: PlatformProcess) -> None:
    token_file = Path(f"{platform_process.db}.admin-token")
    assert token_file.read_text().strip() == platform_process.admin_token
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    client = Client(platform_process.base_url)
    reply = client.get("/admin/capacity")
    assert reply.status == 401 and reply.headers["WWW-Authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer not-the-token"}
    assert client.post("/admin/capacity", body={"fraction_lost": 1}, headers=wrong).status == 403
    right = {"Authorization": f"Bearer {platform_process.admin_token}"}
    reply = client.get("/admin/capacity", headers=right)
    assert reply.status == 200 and reply.json()["fraction_lost"] == 0
    for bad in ({"fraction_lost": 1.5}, {"fraction_lost": -0.1}, {}, {"fraction_lost": "half"}):
        assert client.post("/admin/capacity", body=bad, headers=right).status == 422


def test_incident_removes_capacity_on_every_worker_and_restore_brings_it_back(
    platform_process: PlatformProcess, platform_roster: Roster
) -> None:
    url, token = platform_process.base_url, platform_process.admin_token
    admin = Client(url)
    right = {"Authorization": f"Bearer {token}"}
    pupil, _ = login(url, platform_roster, "student", 7)
    try:
        reply = admin.post("/admin/capacity", body={"fraction_lost": 0.4}, headers=right)
        assert reply.status == 200
        capacity = reply.json()
        assert capacity["workers"] == 2 and capacity["fraction_lost"] == 0.4
        per_worker = capacity["max_in_flight_per_worker"]
        assert capacity["in_flight_limit_per_worker"] == round(per_worker * 0.6)
        assert capacity["queue_limit_per_worker"] == round(capacity["queue_length_per_worker"] * 0.6)

        # A total loss: every worker sheds at once (each sees the change within 0.1 s), operators still get in.
        admin.post("/admin/capacity", body={"fraction_lost": 1.0}, headers=right)
        time.sleep(0.3)
        replies = [pupil.get("/api/dashboard") for _ in range(8)]
        assert {r.status for r in replies} == {503}
        assert all(r.headers["Retry-After"] == "1" for r in replies)
        assert admin.get("/healthz").status == 200
        scrape = admin.get("/metrics").text
        assert metric_value(scrape, "schoolsurge_capacity_fraction_lost") == 1.0
        assert metric_value(scrape, "schoolsurge_in_flight_limit") == 0
    finally:
        restored = admin.post("/admin/capacity", body={"fraction_lost": 0}, headers=right)
    assert restored.status == 200 and restored.json()["in_flight_limit_per_worker"] == per_worker
    time.sleep(0.3)
    assert {pupil.get("/api/dashboard").status for _ in range(8)} == {200}


# ---- metrics -------------------------------------------------------------------------------------------


def test_a_request_is_counted_before_the_end_of_its_answer_leaves() -> None:
    """A client that has its whole answer and then reads the metrics finds the request counted: the count was
    taken after the answer was sent, and a test that read /metrics right after its 20th answer found 19 beside
    four test shards. The real middleware and instruments, with an app that answers and a `send` that looks at
    the count as the last of the answer leaves."""
    metrics = Metrics()
    counted_as_it_left: list[float | None] = []

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"o", "more_body": True})
        await send({"type": "http.response.body", "body": b"k"})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            labels = {"route": "unmatched", "status": "200"}
            counted_as_it_left.append(metrics.registry.get_sample_value(f"{HTTP_REQUESTS}_total", labels))

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    middleware = RequestMetrics(answer, metrics, RouteTemplates([]))
    asyncio.run(middleware({"type": "http", "path": "/anything", "method": "GET"}, receive, send))
    assert counted_as_it_left == [None, 1.0], "not counted before the first part, counted before the last"


def test_metrics_are_global_across_workers(platform_url: str, platform_roster: Roster) -> None:
    scrape = Client(platform_url)
    before = scrape.get("/metrics").text
    teacher, _ = login(platform_url, platform_roster, "teacher", 1)
    post_credentials(Client(platform_url), "prof.0000004", "wrong")
    main_class = platform_roster.main_class_of_teacher(1)
    vc = teacher.post("/api/virtual-classes", body={"class_id": main_class, "title": "Français"}).json()
    teacher.post(f"/api/virtual-classes/{vc['id']}/open")
    pupil, _ = login(platform_url, platform_roster, "student", pupil_of_class(platform_roster, main_class))
    assert pupil.post(vc["join_url"]).status == 200
    for _ in range(20):  # a new connection each: spread over both workers
        assert Client(platform_url).get("/healthz").status == 200

    reply = scrape.get("/metrics")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/plain")
    after = reply.text

    def delta(name: str, labels: str = "") -> float:
        return metric_value(after, name, labels) - metric_value(before, name, labels)

    assert delta("schoolsurge_http_requests_total", 'route="/healthz",status="200"') == 20
    assert delta("schoolsurge_logins_total", 'outcome="success"') == 2
    assert delta("schoolsurge_logins_total", 'outcome="failure"') == 1
    assert delta("schoolsurge_password_hash_seconds_count") == 3
    assert delta("schoolsurge_virtual_classes_created_total") == 1
    assert delta("schoolsurge_virtual_class_joins_total") == 1
    assert delta("schoolsurge_http_requests_total", 'route="/api/virtual-classes/{id}/join",status="200"') == 1
    assert delta("schoolsurge_http_requests_total", 'route="/cas/login",status="302"') == 2
    assert metric_value(after, "schoolsurge_active_sessions") >= 2
    assert metric_value(after, "schoolsurge_active_virtual_classes", 'status="open"') >= 1
    assert metric_value(after, "schoolsurge_workers") == 2
    for name in ("schoolsurge_in_flight_requests", "schoolsurge_admission_queue_depth"):
        assert f"# TYPE {name} gauge" in after
    assert 'schoolsurge_http_request_duration_seconds_count{route="/healthz"}' in after
    # Route labels are templates, never raw ids.
    assert f"/api/virtual-classes/{vc['id']}/" not in after


# ---- throttling ----------------------------------------------------------------------------------------


def test_repeated_wrong_passwords_slow_that_account_down_only(platform_url: str, platform_roster: Roster) -> None:
    victim, password = platform_roster.credentials("student", platform_roster.pupils - 1)
    neighbour, neighbour_password = platform_roster.credentials("student", platform_roster.pupils - 2)
    client = Client(platform_url)
    started = time.monotonic()
    for _ in range(5):
        assert post_credentials(client, victim, "guess").status == 401
    # Then slowed down: one check per wait (1 s, 2 s, 4 s...), the others refused before any hashing.
    replies = [post_credentials(client, victim, "guess") for _ in range(20)]
    checks_allowed = slow_down_checks(time.monotonic() - started, 0, Settings().throttle_max_delay)
    slowed = [reply for reply in replies if reply.status == 429]
    assert len(slowed) >= len(replies) - checks_allowed
    for reply in slowed:
        assert 1 <= int(reply.headers["Retry-After"]) <= Settings().throttle_max_delay
        assert "too many wrong passwords for this account" in reply.json()["detail"]
    assert post_credentials(client, neighbour, neighbour_password).status == 302  # another account: not slowed
    reply, _ = log_in_when_allowed(client, victim, password, deadline_s=120)
    assert reply.status == 302  # and never locked


def test_legitimate_users_are_never_locked_out(platform_url: str, platform_roster: Roster) -> None:
    username, password = platform_roster.credentials("teacher", 2)
    client = Client(platform_url)
    # The surge: the same person logging in again and again, as after every 503 or expired session.
    for _ in range(12):
        assert post_credentials(client, username, password).status == 302
    # A few typos, then the right password, resets the count: typing errors never add up to a lock.
    for _ in range(3):
        for _ in range(4):
            assert post_credentials(client, username, "typo").status == 401
        assert post_credentials(client, username, password).status == 302


def test_wrong_passwords_count_for_the_window_only(short_platform: PlatformProcess) -> None:
    url, roster = short_platform.base_url, Roster(5, 60)
    username, password = roster.credentials("parent", 1)
    client = Client(url)
    for _ in range(2):
        assert post_credentials(client, username, "guess").status == 401
    time.sleep(SHORT + 0.2)  # the window is over: those two no longer count
    for _ in range(2):
        assert post_credentials(client, username, "guess").status == 401
    reply, _ = log_in_when_allowed(client, username, password, deadline_s=30)
    assert reply.status == 302


# ---- expiry -------------------------------------------------------------------------------------------


def test_execution_tokens_tickets_and_sessions_expire(short_platform: PlatformProcess) -> None:
    url, roster = short_platform.base_url, Roster(5, 60)
    username, password = roster.credentials("student", 3)
    client = Client(url)
    stale_execution = login_form(client)
    stale_ticket = ticket_of(post_credentials(client, username, password))
    session, _ = login(url, roster, "student", 3)
    assert session.get("/api/dashboard").status == 200
    time.sleep(SHORT + 0.2)
    reply = post_credentials(client, username, password, stale_execution)
    assert reply.status == 401 and "expired" in reply.json()["detail"]
    assert client.get(f"{CALLBACK}?ticket={stale_ticket}").status == 401
    reply = session.get("/api/dashboard")
    assert reply.status == 401 and "expired" in reply.json()["detail"]


def test_virtual_class_room_capacity(short_platform: PlatformProcess) -> None:
    url, roster = short_platform.base_url, Roster(5, 60)
    teacher, _ = login(url, roster, "teacher", 2)
    class_id = roster.main_class_of_teacher(2)
    vc = teacher.post("/api/virtual-classes", body={"class_id": class_id, "title": "Anglais"}).json()
    teacher.post(f"/api/virtual-classes/{vc['id']}/open")
    pupils = [login(url, roster, "student", pupil_of_class(roster, class_id, n))[0] for n in range(3)]
    # Three people fit: the teacher and two pupils.
    assert [p.post(vc["join_url"]).status for p in pupils[:2]] == [200, 200]
    reply = pupils[2].post(vc["join_url"])
    assert reply.status == 409 and "full" in reply.json()["detail"]
    assert pupils[0].post(vc["join_url"]).status == 200  # someone already in may rejoin
    pupils[0].post(f"/api/virtual-classes/{vc['id']}/leave")
    assert pupils[2].post(vc["join_url"]).status == 200  # a place freed
