"""A run's start, in real subprocesses: a stop signal while the platform starts or while Locust forks its
workers leaves no process behind, and the master of `--processes` listens on loopback only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from conftest import alive, cmdline, descendants, signals_as_from_a_terminal

from schoolsurge.child_process import start_in_own_session
from schoolsurge.cli import EXIT_INTERRUPTED

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "scenarios" / "smoke.yaml"
WAIT_S = 120  # a deadline on each condition, on a busy machine
FORKED_ENV = "SCHOOLSURGE_TEST_FORKED"
OUTPUT = "output.txt"
TWO_WORKERS = ("--processes", "2", "--force")  # forced: two workers even where fewer cores are usable

# Locust forks the workers of --processes one by one, then sets up its master. This locustfile (the surge one)
# pauses the master after its first fork, as if thousands more were to come, and says the worker exists.
SLOW_FORK_LOCUSTFILE = f"""
import os
from pathlib import Path

import gevent

from schoolsurge.locustfile import *  # noqa: F403

_fork = gevent.fork


def _slow_fork():
    child = _fork()
    if child:
        Path(os.environ["{FORKED_ENV}"]).write_text(str(child))
        gevent.sleep(600)
    return child


gevent.fork = _slow_fork
"""


@contextlib.contextmanager
def _started_run(tmp_path: Path, *arguments: str) -> Iterator[subprocess.Popen[bytes]]:
    """`schoolsurge run smoke ...` in a subprocess; killed with all its children if the test fails before it ends."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", FORKED_ENV: str(tmp_path / "forked")}
    command = [sys.executable, "-m", "schoolsurge", "run", str(SMOKE), "--reports-dir", str(tmp_path / "reports")]
    # Output to a file, not a pipe: a process left behind would hold a pipe open, and reading it would hang.
    with open(tmp_path / OUTPUT, "wb") as output:
        run = subprocess.Popen(
            [*command, *arguments],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=signals_as_from_a_terminal,
        )
    try:
        yield run
    finally:
        if run.poll() is None:
            _kill(run, descendants(run.pid))


def _output(run: subprocess.Popen[bytes]) -> str:
    """The end of what the run printed (_started_run names its output file in its arguments' folder)."""
    reports = Path(run.args[run.args.index("--reports-dir") + 1])
    return (reports.parent / OUTPUT).read_text(errors="replace")[-2000:]


def _wait_for(condition: Callable[[], object], what: str, run: subprocess.Popen[bytes]) -> object:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert run.poll() is None, f"the run ended before {what}: {_output(run)}"
        time.sleep(0.02)
    raise AssertionError(f"no {what} within {WAIT_S} s")


def _stop_and_check_nothing_is_left(run: subprocess.Popen[bytes], stop_signal: signal.Signals) -> None:
    children = descendants(run.pid)
    assert children, "the run has started its children"
    run.send_signal(stop_signal)
    try:
        code = run.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        code = None
    # The run reaps, or kills and reaps, everything it started before exiting: nothing may be left.
    left = {pid: cmdline(pid)[:4] for pid in children if alive(pid)}
    _kill(run, set(left))
    assert code == EXIT_INTERRUPTED, f"exit {code}: {_output(run)}"
    assert not left, f"processes outlived the run: {left}"


def _kill(run: subprocess.Popen[bytes], pids: set[int]) -> None:
    """What a failing test leaves is killed, so that it does not load the shared machine."""
    if run.poll() is None:
        run.kill()
    _kill_all(pids)


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_stop_signal_while_a_child_is_being_started_ends_that_child() -> None:
    """Between its fork and its exec, Popen waits: a stop signal raising there would lose the child's pid, and
    the child, in a session of its own, would outlive the run."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "schoolsurge-test-sleeper"]
    before = descendants(os.getpid())

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            # The child sends the signal itself, in its fork, before its exec: while Popen waits for it.
            start_in_own_session(sleeper, preexec_fn=lambda: os.kill(os.getppid(), signal.SIGTERM))
    finally:
        signal.signal(signal.SIGTERM, previous)
    started = [pid for pid in descendants(os.getpid()) - before if "schoolsurge-test-sleeper" in cmdline(pid)]
    left = [pid for pid in started if alive(pid)]
    _kill_all(left)
    assert not left, "the child outlived the interrupted start"


def _platform_starting(run: subprocess.Popen[bytes]) -> bool:
    return any("schoolsurge.platform" in cmdline(pid) for pid in descendants(run.pid))


def test_a_stop_signal_while_the_platform_starts_leaves_no_process(tmp_path: Path) -> None:
    with _started_run(tmp_path, *TWO_WORKERS) as run:
        _wait_for(lambda: _platform_starting(run), "platform process", run)
        _stop_and_check_nothing_is_left(run, signal.SIGTERM)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_while_locust_forks_its_workers_leaves_no_process(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    locustfile = tmp_path / "slow_fork.py"
    locustfile.write_text(SLOW_FORK_LOCUSTFILE)
    forked = tmp_path / "forked"
    with _started_run(tmp_path, *TWO_WORKERS, "--locustfile", str(locustfile)) as run:
        worker = int(_wait_for(lambda: forked.exists() and forked.read_text(), "forked worker", run))
        assert worker in descendants(run.pid)
        _stop_and_check_nothing_is_left(run, stop_signal)


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp and tcp6 write them) of the sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, local_port = local.partition(":")
            if state == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def _master_port(run: subprocess.Popen[bytes]) -> int | None:
    for pid in descendants(run.pid):
        arguments = cmdline(pid)
        if "--master-bind-port" in arguments:
            return int(arguments[arguments.index("--master-bind-port") + 1])
    return None


def test_the_master_of_processes_listens_on_loopback_only(tmp_path: Path) -> None:
    with _started_run(tmp_path, *TWO_WORKERS) as run:
        port = int(_wait_for(lambda: _master_port(run), "Locust master", run))
        addresses = _wait_for(lambda: _listening(port), f"socket listening on port {port}", run)
        assert addresses == ["0100007F"], f"the master listens on {addresses} (0100007F is 127.0.0.1)"
        _stop_and_check_nothing_is_left(run, signal.SIGTERM)
