"""Shared fixtures and HTTP helpers: real reference platforms on ephemeral loopback ports, no mocks.

Test modules import the helpers with `from conftest import Client, login, ...`. A test asserting how a real run
went (held or broke, SLOs, served share, plan agreement) calls `assert_measured_the_platform(run_dir)` first: on a
machine too busy for the run, it fails saying so (machine-bound, generator-bound) rather than judging the platform.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import time
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml

from schoolsurge.accounts import Roster
from schoolsurge.child_process import HELD_SIGNALS
from schoolsurge.cli import main
from schoolsurge.models.sweep import SweepSettings
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.report.outcome.health import GENERATOR_BOUND, MACHINE_BOUND
from schoolsurge.rundir import MANIFEST
from schoolsurge.runner import RunOutcome, RunRequest, run

# Small and cheap: about 100 accounts at bcrypt cost 4 seed in well under a second.
PLATFORM_SEED = 2021
PLATFORM_SIZE = 60
PLATFORM_HASH_COST = 4
CALLBACK = "/ent/auth/callback"
SMOKE = Path(__file__).resolve().parent.parent / "scenarios" / "smoke.yaml"
SMOKE_SPEED = 240  # twice the smoke scenario's: 15 s of load is enough for every persona to log in and act
UNDERSIZED_DRAIN_LIMIT_S = 2.0  # smoke_pair's undersized run: its retries past the window are cut short
HALF_HOUR = ("07:30", "08:00")  # smoke_half_hour's window
HALF_HOUR_SCALE = 1.5e-5  # 3/4 of smoke's: its first half hour is denser than the hour, the load no higher
# Sessions of a few minutes on average (1 s at SMOKE_SPEED): a run that tests what it leaves, not how long its
# people stay, ends about 2 s after its window rather than 4-5 s with 10-minute sessions.
SHORT_SESSION_MINUTES = 4
# A run that measured the machine (its platform starved, its generator late) is made again once before a test
# fails with that reason: the other shards' runs share 2 cores with it, and their load comes in bursts.
BUSY_MACHINE_ATTEMPTS = 2


@pytest.fixture(scope="session")
def platform_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seed cache for every platform the tests start, so each (seed, size, cost) is seeded once."""
    return tmp_path_factory.mktemp("seed-cache")


@pytest.fixture(scope="session")
def platform_process(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    """The shared platform: profile `resized` (two worker processes), so every test also crosses processes."""
    root = tmp_path_factory.mktemp("platform")
    with PlatformProcess(
        seed=PLATFORM_SEED,
        size=PLATFORM_SIZE,
        hash_cost=PLATFORM_HASH_COST,
        profile="resized",
        cache_dir=platform_cache,
        db=root / "platform.sqlite3",
        log_path=root / "platform.log",
        startup_timeout=60,
    ) as proc:
        yield proc


@pytest.fixture(scope="session")
def platform_url(platform_process: PlatformProcess) -> str:
    """Base URL (e.g. http://127.0.0.1:41234) of the running reference platform."""
    return platform_process.base_url


@pytest.fixture(scope="session")
def platform_roster() -> Roster:
    """The roster the platform_url platform was seeded from (credentials and relations)."""
    return Roster(PLATFORM_SEED, PLATFORM_SIZE)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutcome:
    """One healthy `schoolsurge run` of the smoke scenario on the embedded platform, shared by every module that
    only reads its run directory (a test that changes it works on a copy); its JUnit file is `smoke_junit`.
    tests/shards.py deals those modules to one shard (SHARED_RUN), so that the suite makes this run once. Its
    profile is the smoke scenario's, resized: `smoke_pair` sets an undersized run beside it, `smoke_sweep` a sweep."""
    reports = tmp_path_factory.mktemp("smoke-run")
    return run_measuring_the_platform(
        RunRequest(
            scenario_path=SMOKE, target=None, speed=SMOKE_SPEED, reports_dir=reports, junit=reports / "smoke.xml"
        )
    )


@pytest.fixture(scope="session")
def smoke_junit(smoke_run: RunOutcome) -> Path:
    """The JUnit XML file the shared smoke run wrote (`--junit`)."""
    return smoke_run.run_dir.parent / "smoke.xml"


@dataclass(frozen=True)
class SmokeRuns:
    reports: Path
    resized: Path
    undersized: Path


@pytest.fixture(scope="session")
def smoke_pair(smoke_run: RunOutcome, tmp_path_factory: pytest.TempPathFactory) -> SmokeRuns:
    """Two smoke runs side by side in one reports folder: the shared one (the scenario's profile, resized) and one
    on the undersized 2021 profile, started after it. Read only: a test that writes copies them first."""
    reports = tmp_path_factory.mktemp("smoke-pair")
    resized = reports / smoke_run.run_dir.name
    shutil.copytree(smoke_run.run_dir, resized)
    # Ended 2 s after its window: the people an undersized platform keeps retrying past it change no figure read.
    request = RunRequest(
        scenario_path=SMOKE,
        target=None,
        speed=SMOKE_SPEED,
        reports_dir=reports,
        profile="undersized-2021",
        drain_limit_s=UNDERSIZED_DRAIN_LIMIT_S,
    )
    undersized = run_measuring_the_platform(request)
    assert undersized.report is not None and not undersized.interrupted
    return SmokeRuns(reports, resized, undersized.run_dir)


def smoke_half_hour(directory: Path, session_minutes: float | None = None) -> Path:
    """The smoke scenario cut to its first half hour (HALF_HOUR: its teachers and most of its secondary pupils,
    about 50 people at HALF_HOUR_SCALE; its primary families come later and are left out), written in `directory`:
    7.5 s of load at SMOKE_SPEED, for a run whose test needs people, not the whole hour. `session_minutes`: every
    session that long on average (exponential), so that a run whose people stay ends soon after its window."""
    scenario = yaml.safe_load(SMOKE.read_text(encoding="utf-8"))
    scenario["window"] = dict(zip(("start", "end"), HALF_HOUR, strict=True))
    scenario["run"]["scale"] = HALF_HOUR_SCALE
    scenario["groups"] = [group for group in scenario["groups"] if group["persona"] != "parent"]
    if session_minutes is not None:
        for group in scenario["groups"]:
            group["session"] = {"distribution": "exponential", "mean_minutes": session_minutes}
    path = directory / "smoke-half-hour.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real two-step capacity sweep of the smoke scenario, unsettled and without refinement (what is read of it
    is per step), in a folder of its own (the smoke pair's is listed by test_index). Read only: a sweep beside
    runs (test_compare), its operational laws (test_platform_side)."""
    settings = SweepSettings(steps=2, measure_s=4.0, settle_sessions=0.0, refine_steps=0)
    reports = tmp_path_factory.mktemp("smoke-sweep")
    outcome = run_measuring_the_platform(
        RunRequest(scenario_path=SMOKE, target=None, speed=SMOKE_SPEED, reports_dir=reports, sweep=settings)
    )
    assert outcome.run_dir is not None and (outcome.run_dir / "capacity.csv").exists()
    return outcome.run_dir


# ---- HTTP helpers -----------------------------------------------------------------------------------------


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
    """A tiny HTTP client that keeps the ent_session cookie and never follows redirects. A new connection per
    request, so consecutive requests land on any of the platform's worker processes."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)
    source_address: str | None = None  # connect from this local address (e.g. 127.0.0.2), else any

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        parts = urlsplit(self.base_url)
        source = (self.source_address, 0) if self.source_address else None
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30, source_address=source)
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        payload = raw
        if form is not None:
            payload = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            payload = json.dumps(body).encode()
        if payload is not None and "Content-Type" not in sent:
            sent["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=payload, headers=sent)
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

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)


def service_url(base_url: str) -> str:
    return f"{base_url}{CALLBACK}"


def login_form(client: Client) -> str:
    """GET the CAS form; returns its execution token."""
    reply = client.get(f"/cas/login?{urlencode({'service': service_url(client.base_url)})}")
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/html")
    match = re.search(r'<input type="hidden" name="execution" value="([^"]+)">', reply.text)
    assert match, reply.text
    return match.group(1)


def post_credentials(
    client: Client,
    username: str,
    password: str,
    execution: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST credentials on `execution`, else on a login form fetched now (in this client: its login flow)."""
    execution = execution or login_form(client)
    form = {"username": username, "password": password, "execution": execution}
    return client.post("/cas/login", form={**form, "service": service_url(client.base_url)}, headers=headers)


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


def pupil_of_class(roster: Roster, class_id: int, nth: int = 0) -> int:
    return roster.pupils_of_class(class_id)[nth]


def slow_down_checks(elapsed: float, allowed: int, longest_wait: float) -> int:
    """The most password checks the platform's slow-down lets through for one account (or one address and
    account) in `elapsed` seconds: `allowed` at once, then one after each wait, 1 s doubled each time, at most
    `longest_wait` (sso.slow_down_wait). An upper bound whatever the machine's speed: more time, more checks."""
    checks, waited, wait = allowed, 0.0, 1.0
    while waited + wait <= elapsed:
        checks, waited, wait = checks + 1, waited + wait, min(2 * wait, longest_wait)
    return checks


def log_in_when_allowed(
    client: Client, username: str, password: str, deadline_s: float = 60.0, headers: dict[str, str] | None = None
) -> tuple[Reply, int]:
    """Log in with the right password, waiting out each 429's Retry-After as a person would, until the login
    goes through or `deadline_s` would pass; (the last reply, how many 429s came first)."""
    deadline, slowed = time.monotonic() + deadline_s, 0
    while True:
        reply = post_credentials(client, username, password, headers=headers)
        if reply.status != 429:
            return reply, slowed
        wait = int(reply.headers["Retry-After"])
        if time.monotonic() + wait > deadline:
            return reply, slowed
        slowed += 1
        time.sleep(wait)  # the wait the platform asks for, not a synchronisation


# ---- runs ------------------------------------------------------------------------------------------------


def run_with_test_client(
    client: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *options: str,
) -> tuple[int, str, Path]:
    """`schoolsurge run` of smoke's first half hour (`smoke_half_hour`, 10-minute sessions: the run ends soon after
    its window) at SMOKE_SPEED through a client of tests/clients_under_test.py, with more run `options`: its exit
    status, console output and run directory."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent))  # Locust runs in a process of its own
    reports = tmp_path / "reports"
    scenario = smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES)
    arguments = ["run", str(scenario), "--speed", str(SMOKE_SPEED), "--reports-dir", str(reports)]
    code = main([*arguments, "--client", f"clients_under_test:{client}", *options])
    out = capsys.readouterr().out
    return code, out, next(path.parent for path in reports.glob(f"*/{MANIFEST}"))


def junit_cases(junit: Path) -> dict[str, ElementTree.Element]:
    """The test cases of a JUnit XML file a run wrote (`--junit`), by name."""
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    return {case.get("name", ""): case for case in suite.iter("testcase")}


def run_measuring_the_platform(request: RunRequest) -> RunOutcome:
    """`run(request)`, made again (up to BUSY_MACHINE_ATTEMPTS in all) while the run says that it measured the
    machine, not the platform (machine-bound or generator-bound): a busy moment of the machine is not the code's
    outcome. Each run given up is moved out of the reports folder (to a sibling ending in "-busy") and named in a
    warning of the test session's summary; a test still calls `assert_measured_the_platform` on the one returned,
    which fails with its reason when every attempt measured the machine."""
    for _ in range(BUSY_MACHINE_ATTEMPTS - 1):
        outcome = run(request)
        reason = outcome.invalid_reason or ""
        if not reason.startswith((MACHINE_BOUND, GENERATOR_BOUND)):
            return outcome
        busy = request.reports_dir.parent / f"{request.reports_dir.name}-busy"
        busy.mkdir(exist_ok=True)
        kept = shutil.move(outcome.run_dir, busy / outcome.run_dir.name)
        warnings.warn(f"a busy machine: the run now in {kept} measured it ({reason}); made again", stacklevel=2)
    return run(request)


def assert_measured_the_platform(run_dir: Path) -> None:
    """Call before asserting how a real run went (held or broke, SLOs, served share, plan agreement): a run that
    measured the machine (the platform starved, its machine-level gate shed) or the generator fails the test with
    that reason, rather than passing or failing on a verdict about the platform it never measured."""
    manifest = json.loads((run_dir / MANIFEST).read_text())
    if manifest.get("valid") is False:
        pytest.fail(
            f"the run in {run_dir} did not measure the platform: {manifest.get('invalid_reason')} (a busy machine: "
            "run the test again with CPU to spare)",
            pytrace=False,
        )


# ---- processes -------------------------------------------------------------------------------------------


def signals_as_from_a_terminal(ignored: tuple[signal.Signals, ...] = ()) -> None:
    """A child's preexec_fn: the stop signals as a terminal's foreground command has them, but for `ignored` (what
    `nohup` ignores). A suite started in a script's background (or under nohup) hands its children Ctrl-C (or a
    closed terminal) ignored, and a run keeps a signal it was started with ignored, so a test that sends one sets
    them first."""
    for stop_signal in HELD_SIGNALS:  # Ctrl-C, SIGTERM, SIGHUP
        signal.signal(stop_signal, signal.SIG_IGN if stop_signal in ignored else signal.SIG_DFL)


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children in sessions of their own included), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []
