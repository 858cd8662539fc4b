"""The platform-client contract: the documented one-page client and the CAS client run real surges (smoke's first
half hour) through `schoolsurge run --client`; clients are checked when loaded; every URL passes the loopback
guard."""

from __future__ import annotations

import http.server
import re
import threading
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHORT_SESSION_MINUTES, smoke_half_hour
from locust.env import Environment

from schoolsurge.cli import EXIT_USAGE, main
from schoolsurge.clients import Dashboard, PlatformClient, login_form
from schoolsurge.clients.base import body_bytes
from schoolsurge.clients.cas import parse_validation
from schoolsurge.clients.login_form import LOGIN_PAGE_MAX_CHARS, parse_login_form
from schoolsurge.clients.options import load_client_class
from schoolsurge.engine import build_context
from schoolsurge.engine.http import GuardedOpener
from schoolsurge.errors import ClientError, UnsafeTargetError
from schoolsurge.runner import RunOutcome, RunRequest, run

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
FAST = 240


def documented_client(directory: Path) -> Path:
    """The one-page client of docs/engine.md, as a module `onepage` in `directory`."""
    text = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- one-page-client -->\s*```python\n(.*?)```\s*<!-- /one-page-client -->", text, re.S)
    assert block, "docs/engine.md shows the one-page client between its markers"
    code = block.group(1)
    assert len(code.splitlines()) <= 45, "the example stays short"
    module = directory / "onepage.py"
    module.write_text(code, encoding="utf-8")
    return module


def _stats(outcome: RunOutcome) -> pd.DataFrame:
    return pd.read_csv(outcome.run_dir / "locust_stats.csv")


def _count(stats: pd.DataFrame, name: str, column: str = "Request Count") -> int:
    rows = stats[stats["Name"] == name]
    return int(rows[column].sum())


def _sessions_total(outcome: RunOutcome, column: str) -> int:
    return int(pd.read_csv(outcome.run_dir / "sessions.csv")[column].sum())


@pytest.fixture(scope="module")
def one_page_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunOutcome]:
    directory = tmp_path_factory.mktemp("onepage")
    documented_client(directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(directory))
        patch.setenv("PYTHONPATH", str(directory))  # Locust runs in a process of its own
        yield run(
            RunRequest(
                scenario_path=smoke_half_hour(directory, session_minutes=SHORT_SESSION_MINUTES),
                target=None,
                speed=FAST,
                reports_dir=tmp_path_factory.mktemp("reports"),
                client_arguments=["--client", "onepage:OnePageClient"],
            )
        )


def test_the_documented_one_page_client_logs_people_in(one_page_run: RunOutcome) -> None:
    stats = _stats(one_page_run)
    people = _sessions_total(one_page_run, "scheduled")
    assert _count(stats, "login") - _count(stats, "login", "Failure Count") == people > 20
    assert _count(stats, "dashboard") >= people
    assert int(stats[stats["Name"] != "Aggregated"]["Failure Count"].sum()) == 0


def test_steps_the_client_does_not_offer_are_skipped_and_counted(one_page_run: RunOutcome) -> None:
    stats = _stats(one_page_run)
    names = set(stats["Name"])
    assert not names & {"timetable", "homework", "virtual class: create", "virtual class: join"}
    assert _sessions_total(one_page_run, "steps_not_supported") > 0
    assert one_page_run.slo_met


def test_the_cas_client_logs_in_through_cas_by_options_only(tmp_path: Path) -> None:
    outcome = run(
        RunRequest(
            scenario_path=smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES),
            target=None,
            speed=FAST,
            reports_dir=tmp_path / "reports",
            client_arguments=["--client", "schoolsurge.clients.cas:CasClient", "--cas-validation", "p3"],
        )
    )
    stats = _stats(outcome)
    people = _sessions_total(outcome, "scheduled")
    assert _count(stats, "sso: validate ticket") == people > 20  # CAS 3.0 back channel, once per person
    assert _count(stats, "sso: validate ticket", "Failure Count") == 0
    assert _count(stats, "sso: ticket callback") == 0, "the ENT never saw the tickets"
    assert _sessions_total(outcome, "logins_succeeded") == people


class _NoDashboard(PlatformClient):
    def login(self, username: str, password: str) -> None: ...

    def logout(self) -> None: ...


class _Complete(_NoDashboard):
    def dashboard(self) -> Dashboard:
        return Dashboard()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no-colon", "package.module:Class"),
        ("no_such_module_here:Client", "cannot import"),
        ("schoolsurge.errors:StepFailed", "not a PlatformClient subclass"),
        ("test_clients:_NoDashboard", "does not write dashboard"),
    ],
)
def test_a_client_that_cannot_be_used_is_refused_by_name(spec: str, expected: str) -> None:
    with pytest.raises(ClientError, match=expected):
        load_client_class(spec)


def test_the_contract_is_login_logout_and_one_page() -> None:
    assert load_client_class("test_clients:_Complete") is _Complete
    assert PlatformClient.__abstractmethods__ == {"login", "logout", "dashboard"}


def test_run_refuses_an_unusable_client_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(SMOKE), "--client", "nowhere:Nothing", "--reports-dir", str(tmp_path)])
    assert code == EXIT_USAGE
    assert "--client" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("value", "expected"), [("12", "at least 1024 bytes"), ("ten MB", "a number of bytes")])
def test_run_refuses_a_body_limit_that_is_not_a_size_before_anything_starts(
    value: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(SMOKE), "--max-body-bytes", value, "--reports-dir", str(tmp_path)])
    assert code == EXIT_USAGE
    assert re.search(f"--max-body-bytes: expected {expected}", capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_the_body_limit_option_reaches_the_run_s_opener() -> None:
    options = Namespace(scenario=str(SMOKE), speed=FAST, max_body_bytes=body_bytes("2048"))
    assert build_context(options).client_settings.max_body_bytes == 2048
    assert build_context(Namespace(scenario=str(SMOKE))).client_settings.max_body_bytes == 10 << 20


# ---- the loopback guard on every URL --------------------------------------------------------------------


class _RedirectAway(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(302)
        self.send_header("Location", "http://192.0.2.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirecting_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RedirectAway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_absolute_url_to_another_host_is_never_sent() -> None:
    connection = GuardedOpener(None).new_connection(Environment(host="http://127.0.0.1:9"))
    with pytest.raises(UnsafeTargetError, match="--allow-host 192.0.2.1"):
        connection.get("http://192.0.2.1:9/x", name="elsewhere")


def test_a_redirect_to_another_host_is_not_followed(redirecting_server: str) -> None:
    connection = GuardedOpener(None).new_connection(Environment(host=redirecting_server))
    with pytest.raises(UnsafeTargetError, match="192.0.2.1"):
        connection.get("/", name="redirected")
    allowed = GuardedOpener("192.0.2.2").new_connection(Environment(host=redirecting_server))
    with pytest.raises(UnsafeTargetError):  # allowing another host does not allow this one
        allowed.get("/", name="redirected")


# ---- the CAS protocol's parts, on real pages -----------------------------------------------------------------


def test_the_login_form_is_read_with_every_hidden_field() -> None:
    page = """<html><body><form id="other" action="/search"><input name="q"></form>
    <form method="post" action="login?x=1"><input type="text" name="username">
    <input type="password" name="password"><input type="hidden" name="execution" value="e1s1&amp;x">
    <input type="hidden" name="_eventId" value="submit"><input type="hidden" name="lt" value="LT-1"></form>"""
    form = parse_login_form(page, "http://127.0.0.1:8443/cas/login?service=s")
    assert form is not None and form.action == "http://127.0.0.1:8443/cas/login?x=1"
    assert form.hidden == {"execution": "e1s1&x", "_eventId": "submit", "lt": "LT-1"}
    assert parse_login_form("<html>no form</html>", "http://127.0.0.1/") is None


def test_the_login_form_reader_skips_comments_and_scripts_and_reads_every_quoting() -> None:
    page = """<!-- <form action="/old"><input type="password"></form> -->
    <script>var s = '<form action="/js"><input type=password>';</script>
    <FORM Method=post ACTION='/cas/login?a=1&amp;b=2' data-x="a>b"><input type=text name=username>
    <input type='password' name='password'><input type=hidden name=execution value=e1s1>
    <input value="x &quot;y&quot;" type="HIDDEN" name="lt" value="ignored"><input type="hidden" value="no name">
    </FORM>"""
    form = parse_login_form(page, "http://127.0.0.1:8443/cas/login")
    assert form is not None and form.action == "http://127.0.0.1:8443/cas/login?a=1&b=2"
    assert form.hidden == {"execution": "e1s1", "lt": 'x "y"'}


@pytest.mark.parametrize("unit", ["<input ", "<!--", "<script", '<form a="', "<input x='"])
def test_the_login_form_reader_is_linear_on_hostile_pages(unit: str) -> None:
    """A page of n unclosed tags took a quadratic time (0.56 s at 14 KB, 9.3 s at 56 KB): a pattern that failed at
    the page's end was tried again from every next "<", each time scanning to the end. The reader's pattern, once
    begun at a "<", runs to its end or the page's and never fails: on a hostile page it matches once, from the
    first "<" to the end, so no position is scanned twice. Checked by what it matches, not by timing it (timed:
    benchmarks/bench_login_form.py, in `make bench`)."""
    page = unit * 2000
    assert [token.span() for token in login_form._TOKENS.finditer(page)] == [(0, len(page))]
    assert parse_login_form(page, "http://127.0.0.1/") is None


def test_the_login_form_reader_reads_at_most_its_limit() -> None:
    form = '<form action="/cas/login"><input type="password" name="password"></form>'
    filler = "<p>a paragraph</p>\n" * (LOGIN_PAGE_MAX_CHARS // 19 + 1)
    assert parse_login_form(form + filler, "http://127.0.0.1/") is not None
    assert parse_login_form(filler + form, "http://127.0.0.1/") is None, "a form past the limit is not read"


def test_validation_responses_are_read_as_the_spec_writes_them() -> None:
    namespace = 'xmlns:cas="http://www.yale.edu/tp/cas"'
    success = f"<cas:serviceResponse {namespace}><cas:authenticationSuccess><cas:user>eleve.1</cas:user>"
    success += "<cas:attributes><cas:role>student</cas:role></cas:attributes></cas:authenticationSuccess>"
    assert parse_validation(success + "</cas:serviceResponse>") == ("eleve.1", None)
    failure = f'<cas:serviceResponse {namespace}><cas:authenticationFailure code="INVALID_TICKET">x'
    assert parse_validation(failure + "</cas:authenticationFailure></cas:serviceResponse>") == (None, "INVALID_TICKET")
    assert parse_validation("not xml") == (None, "not XML")
