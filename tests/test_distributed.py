"""Distributed runs on real processes: a Locust master and workers started on their own (as on several
machines), many quick starts in every ordering of connection, init and start, a worker killed (`kill -9`) or
added during a run, and the platform, the master and two workers on distinct addresses in Linux network
namespaces. Each process runs in its own session and is killed in a finally block; so are the namespaces."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from schoolsurge.models.replay import Replay
from schoolsurge.models.schedule import split_schedule
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
SURGE = ROOT / "locustfiles" / "surge.py"
SPEED = 240  # an hour in 15 s
RUN_TIMEOUT_S = 90

# A worker whose init event yields before the engine's: the master's assignment and first spawn reach it
# before the engine is installed (what a slow init, or one resolving the target's name, does).
SLOW_INIT_LOCUSTFILE = """
import os

import gevent
from locust import events
from locust.runners import WorkerRunner


@events.init.add_listener
def _yield_first(environment, **_):
    if isinstance(environment.runner, WorkerRunner):
        gevent.sleep(float(os.environ["SLOW_INIT_S"]))


from schoolsurge.locustfile import *  # noqa: E402,F403
"""


def quick_scenario(directory: Path, start: str, end: str) -> Path:
    """Smoke's people in a shorter window, with short sessions and no virtual classes: a run ends soon after
    its window (at SPEED, 20 minutes of morning take 5 s)."""
    data = yaml.safe_load(SMOKE.read_text())
    data["window"] = {"start": start, "end": end}
    for group in data["groups"]:
        group["session"] = {"distribution": "exponential", "mean_minutes": 2}
        group["virtual_class"] = 0
    path = directory / f"quick-{start.replace(':', '')}-{end.replace(':', '')}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def schedule_of(scenario: Path) -> list:
    loaded = load_scenario(scenario)
    return Replay(loaded, loaded.run.scale, SPEED).schedule(loaded.run.seed)


def platform_for_smoke(
    directory: Path, cache: Path, make: Callable[..., PlatformProcess] = PlatformProcess, **kwargs: object
) -> PlatformProcess:
    """The reference platform with the accounts of smoke's people (every quick variant has the same)."""
    scenario = load_scenario(SMOKE)
    return make(
        seed=scenario.run.seed,
        size=Replay(scenario, scenario.run.scale, SPEED).platform_pupils,
        hash_cost=4,
        profile="resized",
        cache_dir=cache,
        db=directory / "platform.sqlite3",
        log_path=directory / "platform.log",
        startup_timeout=60,
        **kwargs,
    )


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, platform_cache: Path) -> Iterator[PlatformProcess]:
    with platform_for_smoke(tmp_path_factory.mktemp("platform"), platform_cache) as process:
        yield process


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Fleet:
    """The Locust processes of one test, each in its own session (a namespace's too), logs in files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, command: Sequence[str], namespace: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        if namespace is not None:
            command = ["ip", "netns", "exec", namespace, *command]
        with (self.directory / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                list(command),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def wait(self, name: str, timeout: float = RUN_TIMEOUT_S) -> int:
        try:
            return self.processes[name].wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running after {timeout:.0f} s:\n{self.log(name)[-3000:]}")

    def kill(self, name: str) -> None:
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        for name in self.processes:
            self.kill(name)


def master_command(
    scenario: Path, url: str, run_dir: Path, port: int, bind: str = "127.0.0.1", extra: Sequence[str] = ()
) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(SURGE), "--master", "--headless", "--only-summary"]
    command += ["--expect-workers", "2", "--master-bind-host", bind, "--master-bind-port", str(port)]
    command += ["--scenario", str(scenario), "--speed", str(SPEED), "-H", url, "--run-dir", str(run_dir)]
    return command + ["--exit-code-on-error", "0", *extra]


def worker_command(
    scenario: Path, port: int, master: str = "127.0.0.1", locustfile: Path = SURGE, extra: Sequence[str] = ()
) -> list[str]:
    """A worker as on another machine: the master's scenario options, not its target (the master sends it)."""
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--worker", "--master-host", master]
    command += ["--master-port", str(port), "--scenario", str(scenario), "--speed", str(SPEED)]
    return command + list(extra)


def totals(run_dir: Path) -> dict[str, int] | None:
    try:
        with (run_dir / "sessions.csv").open() as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        return None
    return {name: sum(int(r[name]) for r in rows) for name in ("scheduled", "started", "dropped", "lost")}


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def wait_for_test_start(run_dir: Path, master: subprocess.Popen[bytes], timeout: float = 60) -> float:
    """The test's start (unix time), from timeline.json, which the master writes when it starts the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and master.poll() is None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            return float(json.loads((run_dir / "timeline.json").read_text())["test_start_unix"])
        time.sleep(0.1)
    pytest.fail("the master never started the test")


@pytest.mark.long  # a fleet run: a master and workers, each a process
def test_many_quick_starts_give_every_worker_its_part(platform: PlatformProcess, tmp_path: Path) -> None:
    """Five masters with two workers each, all started at once (so each master starts its test as soon as its
    second worker connects), the workers' init yielding 0 to 3 s before the engine is installed: whatever
    arrives first (assignment, first spawn, init), every worker takes its part and every person starts."""
    scenario = quick_scenario(tmp_path, "07:50", "08:10")
    expected = len(schedule_of(scenario))
    slow = tmp_path / "slow_init.py"
    slow.write_text(SLOW_INIT_LOCUSTFILE)
    init_yields = (None, None, 0.0, 1.0, 3.0)  # None: the plain locustfile
    ports = free_ports(len(init_yields))
    fleet = Fleet(tmp_path)
    try:
        for n, (pause, port) in enumerate(zip(init_yields, ports, strict=True)):
            fleet.start(f"master{n}", master_command(scenario, platform.base_url, tmp_path / f"run{n}", port))
            for w in (1, 2):
                locustfile, env = (SURGE, {}) if pause is None else (slow, {"SLOW_INIT_S": str(pause)})
                fleet.start(f"worker{n}-{w}", worker_command(scenario, port, locustfile=locustfile), env=env)
        # Once every person of a run has started (sessions.csv is flushed every 5 s), its workers took their parts.
        pending, deadline = set(range(len(init_yields))), time.monotonic() + RUN_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            time.sleep(0.5)
            pending -= {n for n in pending if (t := totals(tmp_path / f"run{n}")) and t["started"] == expected}
        for n in range(len(init_yields)):
            logs = "\n".join(fleet.log(name)[-1500:] for name in (f"master{n}", f"worker{n}-1", f"worker{n}-2"))
            assert totals(tmp_path / f"run{n}") == {
                "scheduled": expected,
                "started": expected,
                "dropped": 0,
                "lost": 0,
            }, logs
            for w in (1, 2):
                assert f"worker part {w}/2:" in logs, logs
            assert "EngineNotInstalledError" not in logs and "Traceback" not in logs, logs
        # The longest yield did reorder things: the assignment came before the worker could hear it.
        assert "Unknown message type received: schoolsurge:assign" in fleet.log("worker4-1")
    finally:
        fleet.close()


@pytest.mark.long  # a fleet run: a master and workers, each a process
def test_a_worker_killed_mid_run_is_counted_lost_and_the_run_goes_on(platform: PlatformProcess, tmp_path: Path) -> None:
    scenario = quick_scenario(tmp_path, "07:30", "08:30")  # 15 s
    schedule = schedule_of(scenario)
    run_dir = tmp_path / "run"
    (port,) = free_ports(1)
    fleet = Fleet(tmp_path)
    try:
        master = fleet.start("master", master_command(scenario, platform.base_url, run_dir, port))
        fleet.start("worker1", worker_command(scenario, port))
        fleet.start("worker2", worker_command(scenario, port))
        started = wait_for_test_start(run_dir, master)
        time.sleep(max(0.0, started + 4 - time.time()))
        fleet.kill("worker2")  # kill -9, a quarter into the morning
        assert fleet.wait("master") == 0, fleet.log("master")[-3000:]
        assert fleet.wait("worker1", timeout=15) == 0
    finally:
        fleet.close()
    written = manifest(run_dir)
    assert written["status"] == "completed", "the run went on to the end of its window"
    (lost,) = written["lost_workers"]
    assert f"worker part {lost['part']}:" in fleet.log("worker2"), "the killed worker is the one counted lost"
    assert written["late_workers"] == []
    counted = totals(run_dir)
    assert counted is not None
    survivor = split_schedule(schedule, 2, 2 - int(lost["part"].split("/")[0]))
    assert counted["scheduled"] == len(schedule), "the lost part stays scheduled"
    assert counted["started"] + counted["dropped"] + counted["lost"] == len(schedule), "every arrival accounted for"
    assert 0 < lost["arrivals_lost"] == counted["lost"] <= len(schedule) - len(survivor)
    assert counted["started"] >= len(survivor), "the surviving worker replayed its whole part"
    assert 4 <= lost["at_s"] <= 15 and lost["last_report_s"] <= lost["at_s"]
    report = (run_dir / "report.html").read_text()
    assert lost["worker"] in report and "was lost at run second" in report


@pytest.mark.long  # a fleet run: a master and workers, each a process
def test_a_worker_joining_late_takes_no_part_and_the_report_says_so(platform: PlatformProcess, tmp_path: Path) -> None:
    scenario = quick_scenario(tmp_path, "07:40", "08:20")  # 10 s
    expected = len(schedule_of(scenario))
    run_dir = tmp_path / "run"
    (port,) = free_ports(1)
    fleet = Fleet(tmp_path)
    try:
        master = fleet.start("master", master_command(scenario, platform.base_url, run_dir, port))
        fleet.start("worker1", worker_command(scenario, port))
        fleet.start("worker2", worker_command(scenario, port))
        wait_for_test_start(run_dir, master)
        late = fleet.start("late", worker_command(scenario, port))
        assert fleet.wait("master") == 0, fleet.log("master")[-3000:]
        assert late.wait(15) == 0, fleet.log("late")[-3000:]
    finally:
        fleet.close()
    assert "Traceback" not in fleet.log("late") and "worker part" not in fleet.log("late")
    written = manifest(run_dir)
    (joined,) = written["late_workers"]
    assert written["status"] == "completed" and written["lost_workers"] == []
    assert "took no part" in joined["note"] and joined["worker"] in (run_dir / "report.html").read_text()
    counted = totals(run_dir)
    assert counted is not None and counted["scheduled"] == expected
    # Locust moves agents to the late worker; an agent it stops on the others loses the person it was waiting
    # for, counted lost (docs/engine.md, "Distributed runs"): every arrival accounted for, nobody twice.
    assert counted["started"] + counted["dropped"] + counted["lost"] == expected
    assert counted["lost"] <= expected * 0.2


@pytest.mark.long  # a fleet run: a master and workers, each a process
def test_a_worker_started_with_another_run_refuses_its_part_and_it_is_counted_lost(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    scenario = quick_scenario(tmp_path, "07:50", "08:10")
    schedule = schedule_of(scenario)
    run_dir = tmp_path / "run"
    (port,) = free_ports(1)
    fleet = Fleet(tmp_path)
    try:
        fleet.start("master", master_command(scenario, platform.base_url, run_dir, port))
        fleet.start("worker1", worker_command(scenario, port))
        fleet.start("other", worker_command(scenario, port)[:-1] + [str(SPEED // 2)])  # another --speed
        assert fleet.wait("master") == 0, fleet.log("master")[-3000:]
        assert fleet.wait("other", timeout=15) == 0, "it quit of its own accord"
    finally:
        fleet.close()
    assert "this worker replays another run (speed 120.0 here, 240.0 on the master)" in fleet.log("other")
    (lost,) = manifest(run_dir)["lost_workers"]
    assert "it refused its part" in lost["note"] and lost["arrivals_lost"] == lost["arrivals"]
    counted = totals(run_dir)
    assert counted is not None and counted["lost"] == lost["arrivals"]
    assert counted["scheduled"] == len(schedule) == counted["started"] + counted["dropped"] + counted["lost"]


# ---- the platform, the master and two workers on distinct addresses (Linux network namespaces) -------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _netns_available() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "network namespaces need Linux and root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    try:
        subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as error:
        return f"`ip netns` unavailable: {error}"
    return None


@contextlib.contextmanager
def namespaces(names: Sequence[str]) -> Iterator[dict[str, str]]:
    """One namespace per name, each with an address on a private /24, joined by a bridge that lives in a switch
    namespace of its own (nothing added to the host's network, no host firewall in the path). Yields
    {name: (namespace, address)}; deleting the namespaces removes the links."""
    tag = f"ssd{os.getpid() % 100000}"
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, timeout=10).stdout
    subnet = next(f"10.231.{n}" for n in range(os.getpid() % 200, 256) if f"10.231.{n}." not in used)
    created: list[str] = []
    try:
        switch = f"{tag}sw"
        _ip("netns", "add", switch)
        created.append(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        placed: dict[str, tuple[str, str]] = {}
        for number, name in enumerate(names, start=2):
            namespace, address, link = f"{tag}{name}", f"{subnet}.{number}", f"{tag}{number}"
            _ip("netns", "add", namespace)
            created.append(namespace)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _ip("link", "set", link, "netns", switch)
            _ip("-n", switch, "link", "set", link, "master", "br0", "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            placed[name] = (namespace, address)
        yield placed
    finally:
        for namespace in reversed(created):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)


class NamespacedPlatform(PlatformProcess):
    """The reference platform started inside a network namespace."""

    def __init__(self, namespace: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.namespace = namespace

    def command(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *super().command()]


@pytest.mark.long  # a fleet run: a master and workers, each a process
def test_platform_master_and_workers_on_distinct_addresses(tmp_path: Path, platform_cache: Path) -> None:
    reason = _netns_available()
    if reason is not None:
        pytest.skip(reason)
    scenario = quick_scenario(tmp_path, "07:50", "08:10")
    expected = len(schedule_of(scenario))
    run_dir = tmp_path / "run"
    fleet = Fleet(tmp_path)
    with namespaces(("platform", "master", "worker1", "worker2")) as net:
        (platform_ns, platform_ip), (master_ns, master_ip) = net["platform"], net["master"]
        allow = ["--allow-host", platform_ip]  # the suite loads a non-loopback host only when told to
        make = partial(NamespacedPlatform, platform_ns)
        platform = platform_for_smoke(tmp_path, platform_cache, make, host=platform_ip, extra_args=allow)
        try:
            url = platform.start().base_url
            assert url.startswith(f"http://{platform_ip}:")
            port = 5557  # the master's namespace is empty: Locust's default port is free there
            master = fleet.start("master", master_command(scenario, url, run_dir, port, master_ip, allow), master_ns)
            for name in ("worker1", "worker2"):
                fleet.start(name, worker_command(scenario, port, master_ip, extra=allow), net[name][0])
            assert fleet.wait("master") == 0, fleet.log("master")[-3000:]
            assert master.returncode == 0
            for name in ("worker1", "worker2"):
                assert fleet.wait(name, timeout=15) == 0, fleet.log(name)[-3000:]
        finally:
            fleet.close()
            platform.stop()
    written = manifest(run_dir)
    assert written["status"] == "completed" and written["target"] == url
    assert written["lost_workers"] == [] and written["late_workers"] == []
    assert totals(run_dir) == {"scheduled": expected, "started": expected, "dropped": 0, "lost": 0}
    for name in ("worker1", "worker2"):
        assert "worker part" in fleet.log(name)
    assert (run_dir / "report.html").stat().st_size > 0


def test_a_worker_builds_locusts_default_options_once() -> None:
    # Locust's worker rebuilt its whole argument parser at every option of every spawn message (a third of a
    # worker's CPU under the pool shape's spawn message a second); the engine's locustfile makes it build once.
    probe = (
        "import schoolsurge.locustfile\n"
        "from locust import argument_parser\n"
        "first = argument_parser.default_args_dict()\n"
        "print(argument_parser.default_args_dict() is first, 'run_time' in first, 'scenario' in first)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.split() == ["True", "True", "False"], out.stderr[-2000:]


def test_a_worker_stopped_a_few_seconds_starts_every_arrival_on_time_or_counts_it_late(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    """A worker process frozen (SIGSTOP) for three seconds, then resumed: no arrival of its part is lost or
    dropped; those due while it was frozen start as soon as it resumes and are counted late, with their delay
    from their intended time."""
    scenario = quick_scenario(tmp_path, "07:40", "08:20")  # 10 s: the freeze at 4-7 s, arrivals before and after
    expected = len(schedule_of(scenario))
    run_dir = tmp_path / "run"
    (port,) = free_ports(1)
    fleet = Fleet(tmp_path)
    frozen_s = 3.0
    try:
        master = fleet.start("master", master_command(scenario, platform.base_url, run_dir, port))
        fleet.start("worker1", worker_command(scenario, port))
        worker2 = fleet.start("worker2", worker_command(scenario, port))
        started = wait_for_test_start(run_dir, master)
        time.sleep(max(0.0, started + 4 - time.time()))
        os.kill(worker2.pid, signal.SIGSTOP)
        try:
            time.sleep(frozen_s)  # the stop itself is what is tested: the worker frozen this long
        finally:
            os.kill(worker2.pid, signal.SIGCONT)
        assert fleet.wait("master") == 0, fleet.log("master")[-3000:]
    finally:
        fleet.close()
    with (run_dir / "sessions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    counted = {name: sum(int(r[name]) for r in rows) for name in ("scheduled", "started", "dropped", "lost", "late")}
    assert counted["scheduled"] == counted["started"] == expected, counted
    assert counted["dropped"] == counted["lost"] == 0, counted
    # Arrivals due in the frozen seconds (about 4 to 7) on the stopped worker's part started late, and said so.
    frozen = [r for r in rows if 4 <= int(r["second"]) <= 6 and int(r["scheduled"])]
    assert frozen and sum(int(r["late"]) for r in frozen) > 0, rows
    assert max(float(r["start_delay_max_ms"]) for r in frozen) >= 1000
    assert counted["late"] <= sum(int(r["scheduled"]) for r in rows if 3 <= int(r["second"]) <= 8), counted
