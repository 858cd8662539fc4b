"""Benchmark of the report on the largest run it is meant for: a 3-hour morning replayed at speed 1.

    .venv/bin/python -m benchmarks.bench_report                 # about a minute with the data's synthesis
    .venv/bin/python -m benchmarks.bench_report --keep DIR      # keep the synthetic runs in DIR

A synthetic run directory of first-day-2021 (07:00-10:00) at speed 1, as the engine writes it: 10,800 rows of
sessions.csv and one time-to-login and request-latency histogram a second (schoolsurge.engine.ledger, the engine's
own writer), Locust's full history of 40 entries (36 people's requests, 3 bot steps, the login FLOW) and its
Aggregated row every 10 s (1,080 timestamps x 41 rows), its statistics and failures with Locust's real columns,
a manifest and the scenario copy. Times `build_report` on it (goal: under 10 s), then `compare_runs` and
`write_comparison` over three such runs. Figures vary with what else the machine runs: read them as ratios.
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from schoolsurge.engine.ledger import Ledger, write_histograms, write_sessions_csv
from schoolsurge.report import build_report
from schoolsurge.rundir import (
    FAILURES_CSV,
    HISTOGRAMS,
    HISTORY_CSV,
    LOCUST_PREFIX,
    SESSIONS_CSV,
    STATS_CSV,
    TIMELINE,
    Counter,
    Gauge,
    RunStatus,
    finish_manifest,
    start_manifest,
    write_json,
)
from schoolsurge.scenario import seconds_to_clock

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "first-day-2021.yaml"
WINDOW_START_S, WINDOW_S = 7 * 3600, 3 * 3600  # 07:00-10:00, replayed at speed 1: 10,800 run seconds
SCALE, SPEED = 2e-4, 1.0
HISTORY_EVERY_S = 10
GOAL_S = 10.0
START_UNIX = 1_617_685_200.0  # 6 April 2021, 07:00 Paris time

# Locust's own columns (a real run's locust_stats.csv, locust_stats_history.csv and locust_failures.csv).
PERCENTILES = ("50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%")
STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s," + ",".join(PERCENTILES)
).split(",")
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s," + ",".join(PERCENTILES) + ",Total Request Count,"
    "Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,"
    "Total Max Response Time,Total Average Content Size"
).split(",")
FAILURES_HEADER = ["Method", "Name", "Error", "Occurrences", "First Seen", "Last Seen"]
EXCEPTIONS_HEADER = ["Count", "Message", "Traceback", "Nodes"]

PAGES = ("dashboard", "timetable", "homework", "messages", "children", "classes")
PEOPLE_STEPS = [
    ("GET", "sso: login form"),
    ("POST", "sso: submit credentials"),
    ("GET", "sso: ticket callback"),
    ("GET", "sso: logout"),
    *(("GET", page) for page in PAGES),
    *(("GET", f"{page}: retry") for page in PAGES),
    *(("POST", f"virtual class: {what}") for what in ("create", "open", "join", "heartbeat", "leave")),
    *(("GET", f"virtual class: {what}") for what in ("participants", "waiting room")),
    *(("GET", f"homework: {what}") for what in ("list", "detail", "attachment")),
    *(("POST", f"homework: {what}") for what in ("post", "submit", "comment")),
    *(("GET", f"resource {n}") for n in range(1, 7)),
    ("GET", "messages: unread"),
]
BOT_STEPS = [("POST", "bot credential stuffing"), ("GET", "bot login form"), ("GET", "bot scrape")]
ENTRIES = [*PEOPLE_STEPS, *BOT_STEPS, ("FLOW", "login")]
assert len(ENTRIES) == 40, len(ENTRIES)


def arrivals_per_second(seconds: np.ndarray) -> np.ndarray:
    """The morning's shape at the run's scale: teachers at 07:40, pupils at 08:00, families at 08:30."""
    clock = WINDOW_START_S + seconds
    peaks = ((7 * 3600 + 40 * 60, 15 * 60, 0.12), (8 * 3600, 20 * 60, 0.55), (8 * 3600 + 30 * 60, 25 * 60, 0.33))
    shape = sum(w * np.exp(-0.5 * ((clock - m) / s) ** 2) / (s * math.sqrt(2 * math.pi)) for m, s, w in peaks)
    return 7_100_000 * SCALE * shape  # 7.1M people log in 07:00-10:00 nationally


def synthetic_ledger(rng: np.random.Generator) -> Ledger:
    ledger = Ledger()
    seconds = np.arange(WINDOW_S)
    rates = arrivals_per_second(seconds)
    active = 0.0
    for second, rate in zip(seconds.tolist(), rates.tolist(), strict=True):
        people = int(rng.poisson(rate))
        overload = min(1.0, rate / rates.max())
        failed = int(rng.binomial(people, 0.4 * overload))
        ledger.count(second, Counter.SCHEDULED, people)
        ledger.count(second, Counter.STARTED, people)
        ledger.count(second, Counter.LATE, int(rng.binomial(people, 0.002)))
        ledger.count(second, Counter.LOGIN_ATTEMPTS, people + failed)
        ledger.count(second, Counter.LOGINS_SUCCEEDED, people - failed)
        ledger.count(second, Counter.ABANDONED, failed // 2)
        ledger.count(second, Counter.LOGINS_FAILED, failed - failed // 2)
        ledger.count(second, Counter.LOGIN_RETRIES, int(rng.poisson(3 * failed)))
        ledger.count(second, Counter.PAGE_RETRIES, int(rng.poisson(2 * failed)))
        ledger.count(second, Counter.VIRTUAL_CLASSES_OPENED, int(rng.binomial(people, 0.02)))
        ledger.count(second, Counter.VIRTUAL_CLASS_JOINS, int(rng.binomial(people, 0.15)))
        ledger.count(second, Counter.BOT_LOGIN_ATTEMPTS, int(rng.poisson(0.5)))
        active = active * math.exp(-1 / 720) + people - failed
        ledger.sample(second, Gauge.ACTIVE_SESSIONS, int(active))
        ledger.sample(second, Gauge.IN_VIRTUAL_CLASS, int(active * 0.2))
        ledger.sample(second, Gauge.POOL_SIZE, int(active * 1.1) + 10)
        ledger.sample(second, Gauge.WAITING_FOR_AGENT, 0)
        ledger.sample(second, Gauge.GENERATOR_CPU_PERCENT, int(20 + 60 * overload))
        ledger.start_delay(second, float(rng.exponential(5)))
        # Requests: a few distinct latencies a second, recorded with counts (as many values would be).
        requests = int(rng.poisson(30 * active / 1000 + 5 * people))
        for share, latency in ((0.5, 40), (0.3, 120), (0.15, 600 + 4000 * overload), (0.05, 2000 + 20000 * overload)):
            count = int(requests * share)
            for _ in range(min(count, 3)):  # the counters through the engine's own path...
                ledger.request(second, latency * rng.uniform(0.8, 1.2), None)
            if count > 3:  # ...and the rest in one go
                histogram = ledger.seconds[second].request_latency
                assert histogram is not None
                histogram.record_value(int(latency), count - 3)
                ledger.count(second, Counter.REQUESTS, count - 3)
        ledger.count(second, Counter.FAILURES_503, int(requests * 0.3 * overload))
        if people - failed > 0:
            ledger.time_to_login(second, float(rng.lognormal(math.log(800 + 20000 * overload), 0.6)))
            histogram = ledger.seconds[second].time_to_login
            assert histogram is not None
            for share, ms in ((0.5, 600 + 5000 * overload), (0.45, 1500 + 30000 * overload), (0.05, 60000 * overload)):
                if int((people - failed) * share) > 0:
                    histogram.record_value(max(1, int(ms)), int((people - failed) * share))
    return ledger


def _percentiles(median: float, n: int) -> list[Any]:
    if not n:
        return ["N/A"] * len(PERCENTILES)
    factors = (1, 1.3, 1.6, 1.9, 2.6, 3.5, 5, 6.5, 9, 11, 12)
    return [int(median * f) for f in factors]


def write_locust_csvs(run_dir: Path, rng: np.random.Generator) -> None:
    """Locust's full history every 10 s for the 40 entries and the Aggregated row, its statistics and failures."""
    stamps = np.arange(0, WINDOW_S, HISTORY_EVERY_S)
    rates = arrivals_per_second(stamps)
    weights = rng.uniform(0.2, 3.0, len(ENTRIES))
    totals = np.zeros(len(ENTRIES), dtype=np.int64)
    failures = np.zeros(len(ENTRIES), dtype=np.int64)
    with (run_dir / HISTORY_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HISTORY_HEADER)
        for stamp, rate in zip(stamps.tolist(), rates.tolist(), strict=True):
            overload = min(1.0, rate / rates.max())
            users = int(50 + 1500 * overload)
            per_s = rng.poisson(weights * (1 + 10 * rate))
            failed = rng.binomial(per_s, 0.3 * overload)
            totals += per_s * HISTORY_EVERY_S
            failures += failed * HISTORY_EVERY_S
            unix = int(START_UNIX + stamp)
            for i, (kind, name) in enumerate(ENTRIES):
                median = (2000 if kind == "FLOW" else 40) * (1 + 20 * overload)
                writer.writerow(
                    [unix, users, kind, name, f"{per_s[i]:.6f}", f"{failed[i]:.6f}", *_percentiles(median, totals[i])]
                    + [totals[i], failures[i], int(median), median * 1.4, 1.0, median * 12, 512.0]
                )
            writer.writerow(
                [unix, users, "", "Aggregated", f"{per_s.sum():.6f}", f"{failed.sum():.6f}"]
                + _percentiles(60 * (1 + 20 * overload), totals.sum())
                + [totals.sum(), failures.sum(), 60, 80.0, 1.0, 60000, 512.0]
            )
    with (run_dir / STATS_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(STATS_HEADER)
        for i, (kind, name) in enumerate(ENTRIES):
            median = 2000 if kind == "FLOW" else 200
            writer.writerow(
                [kind, name, totals[i], failures[i], median, median * 1.4, 1.0, median * 30, 512.0]
                + [totals[i] / WINDOW_S, failures[i] / WINDOW_S, *_percentiles(median, totals[i])]
            )
        writer.writerow(
            ["", "Aggregated", totals.sum(), failures.sum(), 60, 80.0, 1.0, 60000, 512.0]
            + [totals.sum() / WINDOW_S, failures.sum() / WINDOW_S, *_percentiles(60, totals.sum())]
        )
    with (run_dir / FAILURES_CSV).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FAILURES_HEADER)
        first, last = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START_UNIX)), "2021-04-06T08:00:00Z"
        for i, (kind, name) in enumerate(ENTRIES):
            if failures[i] and kind != "FLOW":
                writer.writerow(
                    [kind, name, "HTTPError('503 Server Error: Service Unavailable')", failures[i], first, last]
                )
    with (run_dir / f"{LOCUST_PREFIX}_exceptions.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow(EXCEPTIONS_HEADER)


def synthetic_run(parent: Path, name: str, seed: int) -> Path:
    """A finished run directory of first-day-2021 at speed 1, as `schoolsurge run` leaves it."""
    rng = np.random.default_rng(seed)
    run_dir = parent / name
    run_dir.mkdir(parents=True)
    start_manifest(
        run_dir,
        SCENARIO,
        scenario="first-day-2021",
        scale=SCALE,
        speed=SPEED,
        seed=seed,
        target="http://127.0.0.1:8080",
        embedded=True,
        profile="undersized-2021",
        processes=2,
        role="master",
    )
    finish_manifest(run_dir, RunStatus.COMPLETED)
    write_json(
        run_dir / TIMELINE,
        {
            "test_start_unix": START_UNIX,
            "window_start": "07:00",
            "window_end": "10:00",
            "scale": SCALE,
            "speed": SPEED,
            "people_scheduled": int(arrivals_per_second(np.arange(WINDOW_S)).sum()),
        },
    )
    ledger = synthetic_ledger(rng)

    def clock(second: int) -> str:
        at = WINDOW_START_S + second * SPEED
        return f"{seconds_to_clock(at)}:{int(at) % 60:02d}"

    write_sessions_csv(ledger, run_dir / SESSIONS_CSV, clock)
    write_histograms(ledger, run_dir / HISTOGRAMS)
    write_locust_csvs(run_dir, rng)
    return run_dir


def timed(what: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = what()
    return time.perf_counter() - started, result


def timed_cpu(what: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds (CPU is what a busy shared machine disturbs least)."""
    cpu = time.process_time()
    wall, result = timed(what)
    return wall, time.process_time() - cpu, result


def _line(label: str, wall: float, cpu: float, goal: bool = False) -> str:
    ratio = f"   goal < {GOAL_S:g} s: {wall / GOAL_S:.2f} of it" if goal else ""
    return f"  {label:18}: {wall:6.2f} s wall, {cpu:6.2f} s CPU{ratio}"


def _size(run_dir: Path) -> str:
    files = {path.name: path.stat().st_size for path in run_dir.iterdir() if path.is_file()}
    return ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sorted(files.items()) if size > 100_000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the synthetic runs here and keep them")
    parser.add_argument("--runs", type=int, default=3, help="runs to compare (default 3; 0 skips the comparison)")
    args = parser.parse_args(argv)
    parent = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    parent.mkdir(parents=True, exist_ok=True)
    try:
        print(
            f"== synthetic first-day-2021 run: {WINDOW_S:,} s at speed {SPEED:g}, {len(ENTRIES)} Locust entries, "
            f"history every {HISTORY_EVERY_S} s ({WINDOW_S // HISTORY_EVERY_S:,} x {len(ENTRIES) + 1} rows)"
        )
        seconds, run_dir = timed(lambda: synthetic_run(parent, "run-1", 1))
        print(f"  written in {seconds:.1f} s: {_size(run_dir)}")

        print("== build_report (load, capacity answer, charts, HTML)")
        from schoolsurge.report import load_run
        from schoolsurge.report.capacity import capacity_card
        from schoolsurge.report.compare import compare_runs, write_comparison

        wall, cpu, data = timed_cpu(lambda: load_run(run_dir))
        print(_line("load_run", wall, cpu))
        wall, cpu, _ = timed_cpu(lambda: capacity_card(data))
        print(_line("capacity_card", wall, cpu))
        wall, cpu, report = timed_cpu(lambda: build_report(run_dir))
        print(_line("build_report", wall, cpu, goal=True))
        print(f"  report.html       : {report.stat().st_size / 1e6:.1f} MB")

        if args.runs >= 2:
            runs = [run_dir]
            for n in range(2, args.runs + 1):
                runs.append(synthetic_run(parent, f"run-{n}", n))
            print(f"== compare_runs + write_comparison over {len(runs)} runs")
            compare_wall, compare_cpu, comparison = timed_cpu(lambda: compare_runs(runs))
            write_wall, write_cpu, page = timed_cpu(lambda: write_comparison(comparison, parent / "compare"))
            print(_line("compare_runs", compare_wall, compare_cpu))
            print(_line("write_comparison", write_wall, write_cpu))
            print(_line("together", compare_wall + write_wall, compare_cpu + write_cpu, goal=True))
            print(f"  compare.html      : {page.stat().st_size / 1e6:.1f} MB")
        if args.keep:
            print(f"== kept in {parent}")
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
