"""A hostile target against the suite's outgoing HTTP (engine/http.py), on real loopback servers: redirects to
another origin or off the machine, endless bodies, garbage instead of HTTP. The admin token and a target's
credentials never leave their origin, no hop goes off the machine, no body is read past its limit, and a
garbage /metrics leaves the run going and its results written."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import logging
import socket
import threading
import time
import zlib
from argparse import Namespace
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import brotli
import gevent
import pytest
import yaml
from conftest import SHORT_SESSION_MINUTES, smoke_half_hour
from locust.env import Environment

from schoolsurge.clients import ClientContext, ReferencePlatformClient, StepFailed
from schoolsurge.engine import Engine, PoolShape, SurgeAgent, build_context, install
from schoolsurge.engine.http import GuardedOpener, ResponseTooLarge
from schoolsurge.engine.requests import failure_kind
from schoolsurge.rundir import LOCUST_LOG, MANIFEST, SESSIONS_CSV, TARGET_METRICS, TARGET_METRICS_SERIES, Counter
from schoolsurge.runner import RunRequest, run

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
FAST = 240  # smoke's hour in 15 s
TOKEN = "admin-token-that-must-stay-home"
ENDLESS_BYTES = 64 << 20  # what an endless body would send if read to its end
WAIT_S = 60


# ---- loopback servers that answer by path and record what they received ------------------------------------

Answer = Callable[[http.server.BaseHTTPRequestHandler], None]


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


@dataclass
class Server:
    url: str
    received: list[Received] = field(default_factory=list)
    bytes_sent: list[int] = field(default_factory=list)  # by each endless answer, once its connection ended

    def headers_seen(self, name: str) -> list[str]:
        return [request.headers[name] for request in self.received if name in request.headers]


@contextlib.contextmanager
def serve(routes: dict[str, Answer], host: str = "127.0.0.1") -> Iterator[Server]:
    """A real HTTP server on an ephemeral port; a path not in `routes` answers 200 "ok"."""
    server_record: list[Server] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            server_record[0].received.append(Received(self.command, self.path, headers))
            routes.get(self.path.split("?", 1)[0], ok)(self)

        do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
    httpd.daemon_threads = True
    server_record.append(Server(f"http://{host}:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_record[0]
    finally:
        httpd.shutdown()
        httpd.server_close()


def ok(handler: http.server.BaseHTTPRequestHandler, body: bytes = b"ok", headers: dict[str, str] | None = None) -> None:
    handler.send_response(200)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str, status: int = 302, headers: dict[str, str] | None = None) -> Answer:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def endless(sent: list[int], chunked: bool) -> Answer:
    """ENDLESS_BYTES made on the fly, chunked or announced by Content-Length; appends to `sent` how many went out
    before the client closed the connection."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(ENDLESS_BYTES))
        handler.end_headers()
        block, written = b"[" * (64 << 10), 0
        try:
            while written < ENDLESS_BYTES:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
                written += len(block)
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client closed the connection: it stopped reading
            handler.close_connection = True
        finally:
            sent.append(written)

    return answer


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        gevent.sleep(0.05)  # the engine's greenlets and the opener run while this one waits


@contextlib.contextmanager
def installed_engine(host: str, run_dir: Path, scenario: Path = SMOKE, **options: object) -> Iterator[Engine]:
    """The engine on a real LocalRunner, as the locustfile installs it, its test not started."""
    environment = Environment(user_classes=[SurgeAgent], shape_class=PoolShape(), host=host)
    environment.create_local_runner()
    engine = install(
        environment, build_context(Namespace(scenario=str(scenario), speed=FAST, run_dir=str(run_dir), **options))
    )
    try:
        yield engine
    finally:
        engine.close()
        environment.runner.quit()


# ---- the scrape and the admin call: redirects --------------------------------------------------------------


def test_a_scrape_redirected_to_another_origin_never_carries_the_admin_token(tmp_path: Path) -> None:
    with serve({}) as capture, serve({"/metrics": redirect(f"{capture.url}/stolen")}) as target:
        with installed_engine(target.url, tmp_path / "run", admin_token=TOKEN) as engine:
            engine.results.target_metrics.scrape()
        assert target.headers_seen("authorization") == [f"Bearer {TOKEN}"] * len(target.received)
        assert [request.path for request in capture.received][:1] == ["/stolen"], "the redirect was followed"
        assert capture.headers_seen("authorization") == [], "the admin token went to another origin"


def test_a_scrape_redirected_off_the_machine_is_refused_before_any_connection(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="schoolsurge.engine.target_metrics")
    with (
        serve({"/metrics": redirect("http://192.0.2.1:9/x")}) as target,
        installed_engine(target.url, tmp_path / "run", admin_token=TOKEN) as engine,
    ):
        assert engine.results.target_metrics.scrape() is None
    refusals = [r.getMessage() for r in caplog.records if "192.0.2.1 is not a loopback address" in r.getMessage()]
    assert refusals, "the guard refused the redirect's host: " + " | ".join(r.getMessage() for r in caplog.records)


def test_the_admin_call_of_an_incident_follows_no_redirect_and_keeps_its_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = yaml.safe_load(SMOKE.read_text())
    scenario["incidents"] = [{"kind": "capacity-loss", "at": "07:30", "fraction": 0.5}]  # at run second 0
    variant = tmp_path / "incident.yaml"
    variant.write_text(yaml.safe_dump(scenario, sort_keys=False))
    caplog.set_level(logging.INFO, logger="schoolsurge.engine.incidents")
    with serve({}) as capture, serve({"/admin/capacity": redirect(f"{capture.url}/stolen")}) as target:
        with installed_engine(target.url, tmp_path / "run", variant, admin_token=TOKEN) as engine:
            engine.environment.events.test_start.fire(environment=engine.environment)
            wait_for(lambda: any("capacity lost" in r.getMessage() for r in caplog.records), "the incident's call")
        admin_calls = [
            (r.method, r.headers.get("authorization")) for r in target.received if r.path == "/admin/capacity"
        ]
        assert admin_calls == [("POST", f"Bearer {TOKEN}")]
        assert capture.received == [], "a redirected admin call went on, with the admin token"
    outcome = next(r.getMessage() for r in caplog.records if "capacity lost" in r.getMessage())
    assert "failed: HTTP 302 (redirect not followed)" in outcome


# ---- people's requests: credentials stay on their origin ----------------------------------------------------


def test_a_person_s_credentials_never_go_to_another_origin() -> None:
    with serve({}) as capture, serve({}) as other_port:
        routes = {"/away": redirect(f"{capture.url}/x"), "/next-door": redirect(f"{other_port.url}/x")}
        with serve(routes) as target:
            credentials, host = "pupil:s3cret", target.url.removeprefix("http://")
            connection = GuardedOpener(None).new_connection(Environment(host=f"http://{credentials}@{host}"))
            for path in ("/away", "/next-door", "/home", f"{capture.url}/absolute"):
                assert connection.get(path, name="step").status_code == 200
    assert len(target.headers_seen("authorization")) == 3, "the target's own requests carry its credentials"
    assert [request.path for request in capture.received] == ["/x", "/absolute"]
    assert capture.headers_seen("authorization") == [], "the target's credentials went to another origin"
    assert other_port.headers_seen("authorization") == [], "another port is another origin"


# Cookies are scoped by host (RFC 6265), not by origin: a capture server on another loopback address.
def test_a_cookie_of_the_target_never_goes_to_another_host() -> None:
    with serve({}, host="127.0.0.2") as capture:
        cookie = {"Set-Cookie": "ent_session=secret; Path=/"}
        with serve({"/away": redirect(f"{capture.url}/x", headers=cookie)}) as target:
            connection = GuardedOpener(None).new_connection(Environment(host=target.url))
            connection.get("/away", name="step")
            connection.get(f"{capture.url}/again", name="step")
            connection.get("/home", name="step")
    assert [request.path for request in capture.received] == ["/x", "/again"]
    assert capture.headers_seen("cookie") == []
    assert target.headers_seen("cookie") == ["ent_session=secret"], "the cookie went back to its own host"


# ---- bodies: read to a limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_an_endless_page_is_a_failed_step_of_kind_other_and_is_not_read_to_its_end(chunked: bool) -> None:
    sent: list[int] = []
    reported: list[tuple[object, BaseException | None]] = []
    with serve({"/api/dashboard": endless(sent, chunked)}) as target:
        environment = Environment(host=target.url)
        environment.events.request.add_listener(
            lambda response=None, exception=None, **_: reported.append((response, exception))
        )
        client = ReferencePlatformClient(ClientContext(http=GuardedOpener(None).new_connection(environment)))
        with pytest.raises(StepFailed):
            client.dashboard()
        wait_for(lambda: sent != [], "the server to see its connection closed")
    [(response, exception)] = reported
    assert isinstance(exception, ResponseTooLarge)
    assert str(exception) == "response body over 10 MiB (--max-body-bytes)"
    assert failure_kind(response, exception) is Counter.FAILURES_OTHER
    assert sent[0] < ENDLESS_BYTES // 2, f"{sent[0]} bytes sent before the client closed: it read on"


BOMB = b"0" * (64 << 20)  # 64 MiB of zeros: about 64 KB gzip-compressed, 50 bytes br-compressed


@pytest.mark.parametrize(
    ("encoding", "body", "expected"),
    [
        ("gzip", gzip.compress(b'{"page": 1}'), '{"page": 1}'),
        ("deflate", zlib.compress(b'{"page": 1}'), '{"page": 1}'),
        ("br", brotli.compress(b'{"page": 1}'), '{"page": 1}'),
        ("gzip", gzip.compress(BOMB, compresslevel=9), "response body over 10 MiB (--max-body-bytes)"),
        ("br", brotli.compress(BOMB), "response body over 10 MiB (--max-body-bytes)"),
        ("gzip", b"not gzip at all", "response body not gzip as announced"),
        ("br", b"not br at all", "response body not br as announced"),
    ],
    ids=["gzip", "deflate", "br", "gzip-bomb", "br-bomb", "not-gzip", "not-br"],
)
def test_a_compressed_page_is_read_to_the_same_limit_once_decompressed(
    encoding: str, body: bytes, expected: str
) -> None:
    reported: list[BaseException | None] = []
    answer = {"/page": lambda handler: ok(handler, body, {"Content-Encoding": encoding})}
    with serve(answer) as target:
        environment = Environment(host=target.url)
        environment.events.request.add_listener(lambda exception=None, **_: reported.append(exception))
        connection = GuardedOpener(None).new_connection(environment)
        with connection.get("/page", name="page", catch_response=True) as response:
            text = response.text
            if text != '{"page": 1}':
                response.failure("not the page")  # as a client does with what it cannot use
    if expected.startswith("{"):
        assert text == expected and reported == [None]
    else:
        [exception] = reported
        assert str(exception).startswith(expected) and text == ""


def test_an_endless_metrics_page_is_a_failed_scrape_with_a_short_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="schoolsurge.engine.target_metrics")
    sent: list[int] = []
    with (
        serve({"/metrics": endless(sent, chunked=True)}) as target,
        installed_engine(target.url, tmp_path / "run") as engine,
    ):
        assert engine.results.target_metrics.scrape() is None
        wait_for(lambda: sent != [], "the server to see its connection closed")
    assert all(written < ENDLESS_BYTES // 2 for written in sent)
    messages = [r.getMessage() for r in caplog.records]
    assert any("response body over 4 MiB (scrape limit)" in message for message in messages), messages


def test_a_metrics_page_that_is_not_prometheus_text_is_logged_as_a_short_excerpt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="schoolsurge.engine.target_metrics")
    line = b"x{" * (1 << 20)  # one 2 MB line of garbage, under the scrape's limit
    with (
        serve({"/metrics": lambda handler: ok(handler, line)}) as target,
        installed_engine(target.url, tmp_path / "run") as engine,
    ):
        assert engine.results.target_metrics.scrape() is None, "not kept as the target's exposition"
    messages = [r.getMessage() for r in caplog.records if r.name == "schoolsurge.engine.target_metrics"]
    assert any("not Prometheus text" in message for message in messages)
    assert max(len(message) for message in messages) < 1000


def test_a_target_whose_metrics_are_an_html_page_is_probed_once_named_in_one_line_and_not_scraped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="schoolsurge.engine.target_metrics")
    page = b"<!DOCTYPE html>\n<html><body>Mon ENT</body></html>\n"
    run_dir = tmp_path / "run"
    with (
        serve({"/metrics": lambda handler: ok(handler, page, {"Content-Type": "text/html"})}) as target,
        installed_engine(target.url, run_dir) as engine,
    ):
        metrics = engine.results.target_metrics
        wait_for(lambda: metrics.stopped, "the probe at the start to give up on the target's metrics")
        assert metrics.scrape() is None and metrics.scrape(final=True) is None
        engine.results._scrape_target_metrics()  # the end of the run's: nothing to keep
    assert [request.path for request in target.received] == ["/metrics"], "probed once, then never scraped again"
    assert not (run_dir / TARGET_METRICS).exists(), "an HTML page is not kept as the target's exposition"
    assert not (run_dir / TARGET_METRICS_SERIES).exists() or not (run_dir / TARGET_METRICS_SERIES).read_text()
    [line] = [r.getMessage() for r in caplog.records if r.name == "schoolsurge.engine.target_metrics"]
    assert f"{target.url}/metrics answered, but not Prometheus text" in line
    assert line.endswith("give their Prometheus endpoint with --target-metrics URL, or --target-metrics off")


# ---- garbage instead of HTTP ---------------------------------------------------------------------------------


@contextlib.contextmanager
def garbage_server() -> Iterator[str]:
    """A raw socket server answering every connection with a line that is not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def answer_forever() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.settimeout(2)
                with contextlib.suppress(OSError):
                    connection.recv(65536)
                    connection.sendall(b"HELLO\r\n\r\n")

    thread = threading.Thread(target=answer_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_a_garbage_metrics_endpoint_leaves_the_run_going_and_its_results_written(tmp_path: Path) -> None:
    with garbage_server() as metrics_url:
        outcome = run(
            RunRequest(
                # a run that goes on, not a long one
                scenario_path=smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES),
                target=None,
                speed=FAST,
                reports_dir=tmp_path / "reports",
                monitoring_arguments=["--target-metrics", metrics_url],
            )
        )
    manifest = json.loads((outcome.run_dir / MANIFEST).read_text())
    assert manifest["status"] == "completed" and not outcome.interrupted
    assert outcome.report is not None and outcome.report.exists()
    assert (outcome.run_dir / SESSIONS_CSV).exists()
    assert not (outcome.run_dir / TARGET_METRICS_SERIES).exists(), "no scrape recorded: none was Prometheus text"
    assert not (outcome.run_dir / TARGET_METRICS).exists()
    log = (outcome.run_dir / LOCUST_LOG).read_text()
    # The probe at the start got no answer it could use: one line names the option, and the run scraped no more.
    assert log.count("the target's metrics are not scraped this run; give their Prometheus endpoint") == 1, log
