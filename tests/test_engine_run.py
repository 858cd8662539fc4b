"""The open-arrival engine on real Locust runners against the real reference platform on loopback."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gevent
import pandas as pd
import pytest
import yaml
from conftest import SHORT_SESSION_MINUTES, smoke_half_hour
from locust.env import Environment
from locust.stats import StatsEntry

from schoolsurge.cli import main
from schoolsurge.engine import Engine, PoolShape, SurgeAgent, build_context, install
from schoolsurge.engine.progress import people_and_bots, progress_line
from schoolsurge.models.replay import Replay
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.rundir import LOGIN_FLOW_TYPE
from schoolsurge.rundir.histograms import merged, read_histograms
from schoolsurge.runner import free_loopback_port
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
FAST = 240  # smoke's hour in 15 s


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> PlatformProcess:
    with smoke_platform(tmp_path_factory.mktemp("platform")) as process:
        yield process


def smoke_platform(directory: Path) -> PlatformProcess:
    """The reference platform with the smoke scenario's accounts, cheap hashing and room to spare."""
    scenario = load_scenario(SMOKE)
    pupils = Replay(scenario, scenario.run.scale, FAST).platform_pupils
    return PlatformProcess(
        seed=scenario.run.seed,
        size=pupils,
        hash_cost=4,
        db=directory / "db.sqlite3",
        profile="resized",
        log_path=directory / "platform.log",
    )


def run_in_process(
    scenario: Path,
    url: str,
    run_dir: Path,
    speed: float = FAST,
    accounts: Path | None = None,
    during: object = None,
    admin_token: str | None = None,
    watch: Callable[[Engine], None] | None = None,
) -> Engine:
    """One whole replay on a LocalRunner in this process; `during(run_s)` and `watch(engine)` are called about
    every 0.2 s."""
    options = Namespace(
        scenario=str(scenario),
        speed=speed,
        run_dir=str(run_dir),
        accounts=str(accounts) if accounts else None,
        admin_token=admin_token,
    )
    context = build_context(options)
    environment = Environment(user_classes=[SurgeAgent], shape_class=PoolShape(), host=url)
    environment.create_local_runner()
    engine = install(environment, context)
    environment.runner.start_shape()
    started = time.monotonic()
    limit = context.replay.duration_s + 90
    while environment.runner.state != "stopped" and time.monotonic() - started < limit:
        gevent.sleep(0.2)
        if during is not None:
            during(time.monotonic() - started)
        if watch is not None:
            watch(engine)
    environment.runner.quit()
    engine.close()
    return engine


def _variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(SMOKE.read_text())
    change(data)
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass(frozen=True)
class SmokeInProcess:
    engine: Engine
    run_dir: Path
    # the sample (about every 0.2 s) with the most people paused beyond the agents running a step: people in a
    # session, paused, agents, agents running someone's step
    most_paused: dict[str, int]


@pytest.fixture(scope="module")
def smoke_in_process(platform: PlatformProcess, tmp_path_factory: pytest.TempPathFactory) -> SmokeInProcess:
    """One replay of smoke in this process, read (never changed) by the tests of a responsive platform."""
    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    most_paused = {"people": 0, "paused": 0, "agents": 0, "agents_in_a_step": 0}

    def watch(engine: Engine) -> None:
        stepper, agents = engine.share.stepper, engine.environment.runner.user_count
        in_a_step = agents - stepper.free_agents
        if stepper.paused - in_a_step > most_paused["paused"] - most_paused["agents_in_a_step"]:
            most_paused.update(
                people=engine.share.active_sessions, paused=stepper.paused, agents=agents, agents_in_a_step=in_a_step
            )

    return SmokeInProcess(run_in_process(SMOKE, platform.base_url, run_dir, watch=watch), run_dir, most_paused)


def test_arrivals_start_on_time_against_a_responsive_platform(smoke_in_process: SmokeInProcess) -> None:
    engine = smoke_in_process.engine
    ledger = engine.ledger()
    scheduled = ledger.total("scheduled")
    assert scheduled == len(engine.share.schedule) > 50
    assert ledger.total("started") == scheduled and ledger.total("dropped") == 0
    assert ledger.total("late") <= scheduled * 0.02, "a free agent was there for (almost) every arrival"
    assert ledger.total("logins_succeeded") == scheduled and ledger.total("abandoned") == 0
    with (smoke_in_process.run_dir / "sessions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(r["started"]) for r in rows) == scheduled
    assert max(int(r["in_virtual_class"]) for r in rows) > 0, "pupils joined their teachers' virtual classes"


def test_people_in_a_pause_hold_no_agent(smoke_in_process: SmokeInProcess) -> None:
    """A person in a session spends most of it paused (reading a page, between two heartbeats), as a record on
    the process's timer heap, not in an agent's greenlet: at some moment more people are paused than agents are
    running a step. Were a paused person holding an agent, that agent would never be free, and the agents not
    free would be at least the people paused at every moment. Not a count of the pool: a busy machine slows the
    steps, arrivals wait for an agent and the pool grows (by design), so the pool can pass the people (37 agents
    for 33 people in CI), and most people can be waiting for an agent rather than paused (14 of 33 paused, 9
    agents running steps, beside four test shards and a profiler)."""
    most_paused = smoke_in_process.most_paused
    assert most_paused["paused"] > most_paused["agents_in_a_step"] >= 0, most_paused


def test_sessions_csv_counts_requests_and_latency_as_locust_does(smoke_in_process: SmokeInProcess) -> None:
    """The run's outputs, whatever the engine saves on each request: sessions.csv counts every person and every
    people's HTTP request that Locust's own statistics count in the same run, and its latency percentiles
    (time_to_login.jsonl's request histograms, merged) are Locust's within their rounding."""
    engine, run_dir = smoke_in_process.engine, smoke_in_process.run_dir
    with (run_dir / "sessions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    counters = [name for name in rows[0] if name not in ("second", "clock") and not name.endswith("_ms")]
    totals = {name: sum(int(r[name]) for r in rows) for name in counters}
    scheduled = len(engine.share.schedule)
    assert totals["scheduled"] == totals["started"] == totals["logins_succeeded"] == scheduled > 50
    assert totals["dropped"] == totals["lost"] == totals["abandoned"] == 0
    stats = engine.environment.stats
    people = [entry for (name, kind), entry in stats.entries.items() if kind != LOGIN_FLOW_TYPE]
    flows = [entry for (name, kind), entry in stats.entries.items() if kind == LOGIN_FLOW_TYPE]
    assert sum(entry.num_requests for entry in flows) == scheduled  # one login flow each
    assert totals["requests"] == sum(entry.num_requests for entry in people) > 10 * scheduled
    failures = sum(totals[name] for name in totals if name.startswith("failures_"))
    assert failures == sum(entry.num_failures for entry in people)
    latency = merged(read_histograms(run_dir / "time_to_login.jsonl", "request_latency").values())
    assert latency.get_total_count() == totals["requests"]
    together = StatsEntry(stats, "people", "")
    for entry in people:
        together.extend(entry)
    for percentile in (50, 95, 99):
        # The same rank in both: Locust's own percentile takes the request after HdrHistogram's, two values that
        # lie far apart in a sparse tail (61 against 69 ms at p99 on a busy machine), whatever was measured.
        rank = max(1, int(percentile * together.num_requests / 100 + 0.5))  # HdrHistogram's rank
        theirs = value_at_rank(together.response_times, rank)
        ours = latency.get_value_at_percentile(percentile)
        # Locust keeps response times to 2 significant digits (above 100 ms), HdrHistogram to 3; ours are whole ms.
        assert abs(ours - theirs) <= max(2, 0.05 * theirs), (percentile, ours, theirs)


def value_at_rank(response_times: dict[int, int], rank: int) -> int:
    """The rank-th smallest of Locust's response times (a StatsEntry's {rounded ms: requests})."""
    seen = 0
    for milliseconds in sorted(response_times):
        seen += response_times[milliseconds]
        if seen >= rank:
            return milliseconds
    raise AssertionError(f"rank {rank} past Locust's {seen} response times")


def test_a_stalled_platform_does_not_slow_arrivals_and_shows_in_time_to_login(tmp_path: Path) -> None:
    stall = {"from": 5.0, "to": 8.0, "stopped": False, "resumed": False}
    with smoke_platform(tmp_path) as process:

        def stop_and_resume(run_s: float) -> None:
            # The whole platform stops answering for three seconds (its processes are frozen, sockets stay open).
            if run_s >= stall["from"] and not stall["stopped"]:
                os.killpg(process.pid, signal.SIGSTOP)
                stall["stopped"] = True
            if run_s >= stall["to"] and not stall["resumed"]:
                os.killpg(process.pid, signal.SIGCONT)
                stall["resumed"] = True

        # Smoke's first half hour, its sessions short: 7.5 s of load around the stall, and no long drain after.
        scenario = smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES)
        engine = run_in_process(scenario, process.base_url, tmp_path / "run", during=stop_and_resume)
    assert stall["stopped"] and stall["resumed"]
    ledger = engine.ledger()
    frozen = [s for s in range(5, 8) if s in ledger.seconds]
    assert sum(ledger.seconds[s].counters.get("scheduled", 0) for s in frozen) > 0
    # Arrivals due as the platform froze started before it came back: agents to spare, and the pool grew.
    for second in frozen:
        counters = ledger.seconds[second].counters
        assert counters.get("started", 0) == counters.get("scheduled", 0), second
    assert ledger.seconds[frozen[0]].start_delay_max_ms < (stall["to"] - frozen[0] - 1) * 1000
    assert ledger.total("dropped") == 0
    # People who arrived as the platform froze waited for it: their time to log in includes the stall.
    first_frozen = ledger.seconds[frozen[0]].time_to_login
    assert first_frozen is not None and first_frozen.get_max_value() >= 2000
    calm = ledger.seconds.get(1)
    assert calm is None or calm.time_to_login is None or calm.time_to_login.get_max_value() < 2000


def test_retries_and_abandonment_follow_the_policy(platform: PlatformProcess, tmp_path: Path) -> None:
    accounts = tmp_path / "wrong.csv"
    accounts.write_text(
        "role,username,password\n"
        + "".join(f"{role},{role}.x{i},wrong\n" for role in ("student", "teacher", "parent") for i in range(50))
    )

    def impatient(data: dict) -> None:
        # 6 s of run at speed 10, about 70 people: 12 arrivals a run second, and every policy's step in 8 s more
        data["window"] = {"start": "07:59", "end": "08:00"}
        data["run"]["scale"] = 2e-5
        data["groups"] = data["groups"][:2]  # the groups that log in around 08:00
        for group in data["groups"]:
            # A reload every 20 scenario seconds (2 s of run), patience 75 s: attempts at 0, 20, 40, 60, then
            # the next would come at 80 > 75 and the person gives up. Each attempt may take up to 5 s of
            # scenario time (0.5 s of run) before that count changes.
            group["retry"] = {
                "backoff": "impatient-reload",
                "base_seconds": 20,
                "cap_seconds": 20,
                "max_retries": 20,
                "patience_seconds": 75,
            }

    engine = run_in_process(
        _variant(tmp_path, impatient), platform.base_url, tmp_path / "run", speed=10, accounts=accounts
    )
    ledger = engine.ledger()
    people = ledger.total("started")
    assert people > 10
    assert ledger.total("logins_succeeded") == 0
    assert ledger.total("abandoned") == people
    assert ledger.total("login_attempts") == 4 * people
    assert ledger.total("logins_failed") == 4 * people


def _sessions_totals(run_dir: Path) -> dict[str, int]:
    with (run_dir / "sessions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    names = ("scheduled", "started", "dropped", "logins_succeeded", "abandoned")
    return {name: sum(int(r[name]) for r in rows) for name in names}


def _locust_headless(url: str, run_dir: Path, processes: int) -> None:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "locustfiles" / "surge.py"),
        "--headless",
        "--only-summary",
        "-H",
        url,
        "--scenario",
        str(SMOKE),
        "--speed",
        str(FAST),
        "--run-dir",
        str(run_dir),
        "--exit-code-on-error",
        "0",
    ]
    if processes > 1:  # a master port of its own: other distributed runs may be on Locust's 5557
        port = str(free_loopback_port())
        command += ["--processes", str(processes), "--master-bind-port", port, "--master-port", port]
    run_dir.mkdir(parents=True)
    subprocess.run(command, cwd=ROOT, check=True, timeout=120, capture_output=True)


@pytest.mark.long  # two whole plain-Locust runs, one with a master and two worker processes
def test_two_worker_processes_replay_the_same_people_as_one(platform: PlatformProcess, tmp_path: Path) -> None:
    _locust_headless(platform.base_url, tmp_path / "one", processes=1)
    _locust_headless(platform.base_url, tmp_path / "two", processes=2)
    one, two = _sessions_totals(tmp_path / "one"), _sessions_totals(tmp_path / "two")
    assert one["scheduled"] > 50
    assert one == two
    assert two["started"] == two["scheduled"] == two["logins_succeeded"]
    for run_dir, processes in ((tmp_path / "one", 1), (tmp_path / "two", 2)):
        _assert_complete_run_directory(run_dir)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["processes"] == processes and manifest["locust_exit_code"] == 0, manifest


def _assert_complete_run_directory(run_dir: Path) -> None:
    """What `schoolsurge run` leaves, left by a plain `locust -f` run on its own."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["scenario"] == "smoke" and "ended_at" in manifest
    for name in ("scenario.yaml", "timeline.json", "locust_stats.csv", "locust_stats_history.csv", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    history = pd.read_csv(run_dir / "locust_stats_history.csv")
    assert history["Name"].nunique() > 3, "full history: a row per request name"
    assert main(["report", str(run_dir)]) == 0


def test_a_plain_locust_run_leaves_a_complete_run_directory_of_its_own(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    # what a run leaves, not how long it lasts
    scenario = smoke_half_hour(tmp_path, session_minutes=SHORT_SESSION_MINUTES)
    command = [sys.executable, "-m", "locust", "-f", str(ROOT / "locustfiles" / "surge.py"), "--headless"]
    command += ["--only-summary", "-H", platform.base_url, "--scenario", str(scenario), "--speed", str(FAST)]
    command += ["--exit-code-on-error", "0"]  # a failed request is measured, not a failed run
    finished = subprocess.run(command, cwd=tmp_path, timeout=120, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
    (run_dir,) = (tmp_path / "reports").glob("*-smoke-locust")
    _assert_complete_run_directory(run_dir)
    assert "Held the peak:" in finished.stdout and f"Report: {run_dir.relative_to(tmp_path)}" in finished.stdout


def _admin_capacity(process: PlatformProcess) -> float:
    request = urllib.request.Request(
        f"{process.base_url}/admin/capacity", headers={"Authorization": f"Bearer {process.admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return float(json.loads(response.read())["fraction_lost"])


def test_incidents_bots_counted_apart_and_capacity_taken_and_given_back(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    def with_incidents(data: dict) -> None:
        data["incidents"] = [
            {"kind": "bot-flood", "start": "07:40", "end": "08:20", "national_rate_per_s": 5000},
            {"kind": "capacity-loss", "at": "07:50", "restored_at": "08:10", "fraction": 0.5},
        ]

    seen: set[float] = set()
    progress: list[str | None] = []
    engine = run_in_process(
        _variant(tmp_path, with_incidents),
        platform.base_url,
        tmp_path / "run",
        during=lambda run_s: seen.add(_admin_capacity(platform)),
        admin_token=platform.admin_token,
        watch=lambda engine: progress.append(progress_line(engine)),
    )
    assert 0.5 in seen, "half the capacity was taken out during the incident"
    assert _admin_capacity(platform) == 0.0, "and given back when the scenario said"
    ledger = engine.ledger()
    # 5,000 attempts/s nationally x load fraction (2e-5 x 240) over 40 scenario minutes (10 s of run).
    expected = 5000 * 2e-5 * FAST * 10
    assert 0.7 * expected <= ledger.total("bot_login_attempts") <= 1.3 * expected
    assert ledger.total("logins_succeeded") == ledger.total("started"), "people still logged in"
    stats = engine.environment.stats
    bot_posts = stats.get("bot sso: submit credentials", "POST")
    assert bot_posts.num_requests > 0 and bot_posts.num_failures == bot_posts.num_requests
    assert stats.get("sso: submit credentials", "POST").num_failures == 0, "bots are not counted as people"
    # The progress line says people's requests and failures apart from the bots' (refused: the defence working).
    people, bots = people_and_bots(stats)
    assert bots.requests >= bot_posts.num_requests and bots.failures >= bot_posts.num_failures
    assert people.requests > 0 and people.failed_percent < bots.failed_percent
    apart = re.compile(r"people +[\d.]+ req/s, +([\d.]+)% failed \| bots +[\d.]+ req/s, +([\d.]+)% failed")
    shown = [match for line in progress if line and (match := apart.search(line))]
    assert shown, progress[-3:]
    assert all(float(people_pct) < float(bots_pct) for people_pct, bots_pct in (m.groups() for m in shown[-3:]))
