"""The test suite as several pytest processes side by side (`make test`), each on its share of the test files.

    .venv/bin/python tests/shards.py                 # the quick suite: every test not marked long, 4 shards
    .venv/bin/python tests/shards.py --long          # the long tests (`make test-long`): minutes-long runs
    .venv/bin/python tests/shards.py -x -k sweep     # any other argument goes to every shard's pytest

A test marked `@pytest.mark.long` (a whole-morning replay, a sweep, a fleet run: a minute or more of real
load) runs only with `--long`, by default on one shard, so that no two such runs share the machine's cores.
TEST_SHARDS=N sets the count for either suite; TEST_JUNIT_DIR=DIR keeps the shards' JUnit XML there (to refresh
WEIGHTS_S: `python tests/shards.py --weights DIR` prints each file's seconds from them).

Most of the suite's time is spent waiting on real runs (a replay lasts its scenario's seconds however fast the
machine is), so processes side by side finish sooner on two cores. pytest-xdist cannot run this suite: Locust
monkey-patches threading with gevent on import, which stalls execnet's threads (locustio/locust#3202).

Files are dealt heaviest first to the shard with the fewest seconds so far, by the seconds each took in a run
of the whole suite (WEIGHTS_S; LONG_WEIGHTS_S with --long, where a file not listed holds no long test). Each
shard's output goes to a file and is printed whole when the shard ends; the exit status is the first failing
shard's, 0 when all passed.
At the end, the slowest tests of all shards (each test's setup, call and teardown, from the shards' JUnit XML).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DEFAULT_SHARDS = 4  # the quick suite: its tests spend about 60% of their time waiting on real runs, not on a CPU
DEFAULT_LONG_SHARDS = 1  # the long tests: real runs of minutes, one at a time so that the machine holds them
QUICK, LONG = "not long", "long"  # the -m expression selecting each suite
SLOWEST = 15  # how many of the slowest tests are printed at the end
DEFAULT_WEIGHT_S = 1.0  # a file of unit tests
PROGRESS_EVERY_S = 60.0
NO_TESTS_COLLECTED = 5  # pytest's exit status when a shard's files hold no test a -k or -m filter selects
# Seconds per file of the quick suite when the shards run side by side on this 2-core machine, to balance them:
# a rough guide, not a limit (per-test seconds with setup and teardown, summed per file, of one whole `make test`
# in 4 shards on a quiet machine, 6 December 2026: `TEST_JUNIT_DIR=DIR make test`, then
# `python tests/shards.py --weights DIR`; a file of unit tests not listed takes DEFAULT_WEIGHT_S). Refresh them
# when a file's runs change.
WEIGHTS_S = {
    "test_engine_run.py": 79,
    "test_lemonldap.py": 69,
    "test_stop_signals.py": 59,
    "test_run_dir_files.py": 53,
    "test_report_logins.py": 48,
    "test_run_endings.py": 43,
    "test_clients.py": 37,
    "test_clients_oidc.py": 35,
    "test_client_steps_report.py": 33,
    "test_journey_map.py": 33,
    "test_platform_schema.py": 31,
    "test_invalid_runs.py": 31,
    "test_report_charts.py": 30,
    "test_client_crashes.py": 29,
    "test_hostile_target.py": 28,
    "test_platform_capacity.py": 24,
    "test_user_classes.py": 23,
    "test_distributed.py": 22,
    "test_monitoring.py": 20,
    "test_platform_hardening.py": 17,
    "test_platform_side.py": 16,
    "test_report_browser.py": 16,
    "test_options.py": 15,
    "test_report_plain_locust.py": 14,
    "test_run_start.py": 13,
    "test_report_imports.py": 11,
    "test_platform_limits.py": 11,
    "test_platform_cas_protocol.py": 10,
    "test_served_population.py": 9,
    "test_report_capacity.py": 8,
    "test_platform_seed.py": 7,
    "test_bad_input.py": 7,
    "test_platform_durability.py": 6,
    "test_platform_oidc.py": 6,
    "test_readme.py": 5,
    "test_surge_run.py": 5,
    "test_plan.py": 4,
    "test_engine_lean.py": 4,
    "test_deploy.py": 4,
    "test_compare.py": 4,
    "test_index.py": 4,
    "test_run_cost.py": 3,
    "test_run_validity.py": 2,
    "test_platform_journeys.py": 2,
    "test_platform.py": 2,
    "test_engine_kinds.py": 2,
    "test_facts.py": 2,
    "test_capacity_table.py": 2,
}
# The same for the long tests, each file alone on the machine.
LONG_WEIGHTS_S = {
    "test_engine_run.py": 117,
    "test_calibration_resized.py": 89,
    "test_calibration_undersized.py": 84,
    "test_distributed.py": 78,
    "test_sweep.py": 100,  # + the distributed refinement with a frozen and a killed worker
    "test_platform_schema.py": 40,
    "test_user_classes.py": 25,
    "test_answer_first_screen.py": 60,
}
# The modules reading the session's smoke runs (conftest.py `smoke_run`, `smoke_pair`, `smoke_sweep`): in one
# shard, each run is made once.
SHARED_RUN = {
    "test_compare.py",
    "test_index.py",
    "test_platform_side.py",
    "test_surge_run.py",
    "test_run_validity.py",
    "test_report_browser.py",
    "test_report_capacity.py",
    "test_report_charts.py",
    "test_report_logins.py",
    "test_served_population.py",
}
OUTCOMES = re.compile(r"^([.FEsxX]+)\s*(?:\[\s*\d+%\])?$", re.MULTILINE)  # pytest -q's progress lines


def deal(files: list[Path], shards: int, weights: dict[str, float] = WEIGHTS_S) -> list[list[Path]]:
    """Files dealt heaviest first to the lightest shard so far; the files of SHARED_RUN as one."""
    shared = [file for file in files if file.name in SHARED_RUN]
    units = [[file] for file in files if file.name not in SHARED_RUN] + ([shared] if shared else [])
    dealt: list[list[Path]] = [[] for _ in range(shards)]
    loads = [0.0] * shards
    for unit in sorted(units, key=lambda u: (-weight(u, weights), u[0].name)):
        lightest = loads.index(min(loads))
        dealt[lightest] += unit
        loads[lightest] += weight(unit, weights)
    return [shard for shard in dealt if shard]


def weight(files: list[Path], weights: dict[str, float] = WEIGHTS_S) -> float:
    default = DEFAULT_WEIGHT_S if weights is WEIGHTS_S else 0.0  # a file without long tests only collects them
    return sum(weights.get(file.name, default) for file in files)


def shard_count(default: int) -> int:
    text = os.environ.get("TEST_SHARDS", str(default))
    if not text.isdigit() or int(text) < 1:
        sys.exit(f"shards: TEST_SHARDS must be a whole number of at least 1, got {text!r}")
    return int(text)


def progress(log: Path) -> str:
    lines = OUTCOMES.findall(log.read_text(errors="replace")) if log.exists() else []
    done = sum(len(line) for line in lines)
    failed = sum(line.count("F") + line.count("E") for line in lines)
    return f"{done} tests done" + (f", {failed} FAILED" if failed else "")


def junit_times(reports: list[Path]) -> Iterator[tuple[float, str, str]]:
    """Each test in the shards' JUnit XML files: (seconds with setup and teardown, its module's path without .py,
    its name). A shard interrupted before pytest wrote its file has none."""
    for report in reports:
        if report.exists():
            for case in ElementTree.parse(report).iter("testcase"):
                module = case.get("classname", "").replace(".", "/")
                yield float(case.get("time", 0.0)), module, case.get("name", "")


def slowest(reports: list[Path], count: int = SLOWEST) -> list[tuple[float, str]]:
    """The `count` slowest tests in the shards' JUnit XML files: (seconds with setup and teardown, test id)."""
    times = [(seconds, f"{module}.py::{name}") for seconds, module, name in junit_times(reports)]
    return sorted(times, reverse=True)[:count]


def file_seconds(reports: list[Path]) -> dict[str, float]:
    """Seconds per test file (its tests' setup, call and teardown) in the shards' JUnit XML files."""
    seconds: dict[str, float] = {}
    for spent, module, _ in junit_times(reports):
        name = module.rsplit("/", 1)[-1] + ".py"
        seconds[name] = seconds.get(name, 0.0) + spent
    return seconds


def print_weights(directory: Path) -> int:
    seconds = file_seconds(sorted(directory.glob("*.xml")))
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f'    "{name}": {value:.0f},')
    print(f"total {sum(seconds.values()):.0f} s")
    return 0


def main(arguments: list[str]) -> int:
    if arguments[:1] == ["--weights"] and len(arguments) == 2:
        return print_weights(Path(arguments[1]))
    long_suite = "--long" in arguments
    pytest_args = [argument for argument in arguments if argument != "--long"]
    files = sorted(TESTS.glob("test_*.py"))
    weights = LONG_WEIGHTS_S if long_suite else WEIGHTS_S
    shards = deal(files, shard_count(DEFAULT_LONG_SHARDS if long_suite else DEFAULT_SHARDS), weights)
    suite = LONG if long_suite else QUICK
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="schoolsurge-shards-") as tmp:
        running: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
        for number, shard in enumerate(shards, 1):
            log = Path(tmp) / f"shard-{number}.txt"
            junit = Path(tmp) / f"shard-{number}.xml"
            # The suite's -m first: a -m among the arguments replaces it (pytest keeps the last).
            command = [sys.executable, "-m", "pytest", "-q", "-m", suite, f"--junitxml={junit}", *pytest_args]
            # Lightest files first: the unit tests (models, parsing, schema) report within seconds.
            command += [str(file) for file in sorted(shard, key=lambda f: (weight([f], weights), f.name))]
            with log.open("wb") as handle:
                running[number] = (
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the progress lines as they come
                    ),
                    log,
                )
            about = f"{len(shard)} files (about {weight(shard, weights):.0f} s)"
            print(f"shard {number}/{len(shards)} ({suite}): {about}", flush=True)
        status, statuses = 0, []
        try:
            last_progress = time.monotonic()
            while running:
                time.sleep(1.0)
                for number, (process, log) in list(running.items()):
                    if process.poll() is None:
                        continue
                    del running[number]
                    elapsed = time.monotonic() - started
                    print(f"\n==== shard {number} ended (exit {process.returncode}) after {elapsed:.0f} s ====")
                    print(log.read_text(errors="replace"), flush=True)
                    statuses.append(process.returncode)
                    if process.returncode != NO_TESTS_COLLECTED:
                        status = status or process.returncode
                if running and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                    last_progress = time.monotonic()
                    states = ", ".join(f"shard {n} {progress(log)}" for n, (_, log) in sorted(running.items()))
                    print(f"... {time.monotonic() - started:.0f} s: {states}", flush=True)
        except KeyboardInterrupt:
            for process, _ in running.values():
                process.send_signal(signal.SIGINT)
            for process, _ in running.values():
                process.wait()
            print("shards: interrupted", file=sys.stderr)
            return 130
        reports = sorted(Path(tmp).glob("shard-*.xml"))
        ranked = slowest(reports)
        keep = os.environ.get("TEST_JUNIT_DIR")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for report in reports:
                shutil.copy(report, Path(keep) / report.name)
    if ranked:
        print(f"\n{len(ranked)} slowest tests (seconds with setup and teardown, all shards):")
        for seconds, test in ranked:
            print(f"{seconds:8.1f} s  {test}")
    if statuses and all(code == NO_TESTS_COLLECTED for code in statuses):
        status = NO_TESTS_COLLECTED  # nothing ran anywhere: say so, as pytest does
    verdict = {0: "passed", NO_TESTS_COLLECTED: "no tests selected"}.get(status, "FAILED")
    print(f"\nall {len(shards)} shards ended in {time.monotonic() - started:.0f} s: {verdict}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
