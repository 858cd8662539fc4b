"""Benchmark of the load generator: what one Locust process of the surge engine costs, beside bare Locust.

    .venv/bin/python -m benchmarks.bench_engine              # about 20 minutes
    .venv/bin/python -m benchmarks.bench_engine --quick      # about 10 minutes, rougher figures
    .venv/bin/python -m benchmarks.bench_engine --no-write   # leave benchmarks/fleet_constants.json alone
    .venv/bin/python -m benchmarks.bench_engine --cpu-only   # part 2's worker comparison once, about 3 minutes

Every Locust run is a subprocess measured with psutil from outside. The CPU and memory runs go to
benchmarks/fast_target.py (the embedded platform's URLs answered with canned pages, a few tens of µs each), so
that the target is never the bottleneck: on a busy machine the embedded platform fell behind, the surge's people
then made fewer requests than planned, and its fixed costs weighed on fewer of them. The arrival-rate sweeps go
to the embedded platform (resized profile, bcrypt cost 4, its national limits lifted so that it never sheds):

1. Schedule: one worker's part of first-day-2021 at scale 0.1 and 1 (one part of 1, and one of 16), each
   built in a fresh interpreter: wall and CPU seconds, and resident memory (maxrss) over the interpreter's own.
   Goal: under 5 s and 200 MB per worker at scale 1.
2. CPU per request: the surge engine (`-f locustfiles/surge.py`, first-day-2021 at scale 5e-4, speed 72: about
   1,400 requests/s in the worker, a third of a core, towards a fleet worker's thousands; at scale 1e-4, 340
   requests/s, the work that comes with each person rather than each request, and the engine's per-second
   work, weighed 1.4x more on each request than at a fleet's rates) and a bare FastHttpUser reading
   /api/dashboard (logged in once), and one doing the personas' HTTP calls without the engine (mix), both at
   the surge's planned request rate second by second (it rises to the peak and falls: a process's CPU per
   request depends on its rate, and bare users held at the mean rate were measured cheaper than at the
   surge's), each request at a random moment as people's are (a process's CPU per request depends on how its
   requests bunch too: bare users at fixed intervals were measured a fifth cheaper). CPU seconds over the HTTP
   requests sent, from 10% to 90% of the surge's requests (start-up and the report written at exit left out).
   Goals: personas / mix <= 1.15, and >= 3,000 requests/s per worker at 75% CPU; measured as a fleet runs: every
   run with `--processes 1`, the worker process measured (what `plan` sizes the fleet by); the master's
   work (Locust's CSV history per request name, the run directory, the report) is shown apart, measured
   once in a single process doing it all.
3. Memory per person: resident memory of a Locust process with N people in a session (N arriving at once and
   staying) and the pool of agents the engine keeps for them (a fixed pool of N x AGENTS_PER_PERSON), less the
   same with no one and no agent, per person; the same for N bare users logged in. Goal: <= 16 KB per person
   in a session.
4. Arrival rate: a capacity sweep of first-day-2021's mix (`--sweep-*`, speed 150), one process then
   `--processes 2`; the highest step, and every step below it, with at most 1% of its arrivals late (> 1 s).

Writes benchmarks/fleet_constants.json, which `schoolsurge plan` reads (schoolsurge/models/fleet.py):
requests/s per worker process = 1 / the personas' CPU seconds per request (a whole core; the plan keeps its
cpu_target margin), KB per session = the memory per person, with the machine they were measured on.

The platform runs on the same cores as the generator, as in `make surge`, and CPU figures move with whatever
else the machine runs: the load average is printed with them. Read them as ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import math
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from schoolsurge.capacity_sweep import sweep_replay
from schoolsurge.engine.shape import AGENTS_PER_PERSON
from schoolsurge.models.fleet import CONSTANTS_PATH
from schoolsurge.models.replay import Replay
from schoolsurge.models.sweep import SweepSettings
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.runner import free_loopback_port
from schoolsurge.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SEED = 2021
FIRST_DAY = ROOT / "scenarios" / "first-day-2021.yaml"
SURGE_LOCUSTFILE = ROOT / "locustfiles" / "surge.py"
CPU_RUN = (5e-4, 72.0)  # scale, speed of the surge measured for CPU per request (about 150 s; 6,350 pupils)
SWEEP_SPEED = 150.0
SWEEP_SCALE = 1e-4
LATE_LIMIT = 0.01  # share of a step's arrivals allowed to start late (> 1 s)
BARE_USERS = 50
MEMORY_PEOPLE = 1000  # --quick: half
NEVER_SHEDS = [
    "--national-request-rate",
    "unlimited",
    "--national-login-rate",
    "unlimited",
    "--national-sessions",
    "unlimited",
    "--queue-length",
    "4096",
    "--queue-timeout",
    "60",
]
GOALS = {
    "schedule_s": 5.0,
    "schedule_mb": 200.0,
    "cpu_ratio_mix": 1.15,  # personas / a bare FastHttpUser doing the same HTTP calls (issue 25)
    "requests_per_s_at_target": 3000.0,  # people's requests/s per worker process at the plan's cpu_target
    "kb_per_session": 16.0,  # resident memory per person in a session
}
CPU_TARGET = 0.75  # the share of a core the plan keeps a worker at (fleet_constants.json's cpu_target)
# The surge's peak: its middle fifth of requests, where its rate (about 1,900 requests/s) is nearest a fleet
# worker's; shown beside the goal's figure, which is over 10%-90% of its requests.
PEAK_SHARE = (0.4, 0.6)

BARE_LOCUSTFILE = '''
"""Bare Locust, two ways. BareUser: log in once (the CAS form, the credentials, the ticket callback), then
read a cheap page. With BENCH_MIX=1, MixUser does the personas' HTTP calls without the engine: a person logs in
as they do, reads the surge's pages and sends its heartbeats in its proportions (their JSON decoded), logs out,
and the next person comes (cookies cleared).
Paced at BENCH_RATE_PER_USER requests/s each, or, with BENCH_RATE_CURVE (a JSON list: the surge's planned
requests/s in each second of its run), at that rate second by second, shared by the BENCH_USERS users, at random
moments as the surge's people act."""
import itertools, json, os, random, re, time
from locust import FastHttpUser, constant_throughput, task
from schoolsurge.accounts import Roster

ROSTER = Roster(int(os.environ["BENCH_SEED"]), int(os.environ["BENCH_PUPILS"]))
CURVE = json.loads(open(os.environ["BENCH_RATE_CURVE"]).read()) if os.environ.get("BENCH_RATE_CURVE") else None
STARTED = []  # the first wait's time: second 0 of the curve
LONGEST_WAIT_S = 5.0  # a user reads the curve again at least this often, so a low start does not hold it back
MOMENTS = random.Random(int(os.environ["BENCH_SEED"]))
USERS = int(os.environ.get("BENCH_USERS", "1"))  # the users sharing the curve's rate


def following_the_surge(user):
    """The curve's rate of this second (per user), counted in requests (a task that made several, a person's
    logout and login before their page, waits for as many), at random moments: the time from one task to the
    next is drawn (exponential), as the surge's arrivals and think times are. Users ticking at fixed intervals
    (constant_throughput) fell into step and sent their requests in bunches: their process woke once per 23
    requests, the surge's once per 2 or 3, and they were measured a fifth cheaper per request for it."""
    now = time.time()
    started = STARTED[0] if STARTED else STARTED.append(now) or now
    rate = CURVE[min(int(now - started), len(CURVE) - 1)] / USERS
    interval = min(MOMENTS.expovariate(rate / user.requests_in_task), LONGEST_WAIT_S) if rate > 0 else LONGEST_WAIT_S
    ran = now - getattr(user, "_last_wait_end", now)
    user._last_wait_end = now + (wait := max(0.0, interval - ran))
    return wait


PACING = following_the_surge if CURVE else constant_throughput(float(os.environ.get("BENCH_RATE_PER_USER", "1")))
EXECUTION = re.compile(r'name="execution"\\s+value="([^"]+)"')
NUMBERS = itertools.count()
# The surge's pages in its proportions (first-day-2021 at the bench's scale: homework 39%, virtual-class
# heartbeats 27%, timetable 19%, dashboard 14%; its few virtual-class joins, leaves and openings left out).
PAGES = (
    [("GET", "/api/homework")] * 6
    + [("POST", "/api/virtual-classes/1/heartbeat")] * 4
    + [("GET", "/api/timetable")] * 3
    + [("GET", "/api/dashboard")] * 2
)
PAGES_PER_PERSON = 31  # the first-day surge: 31.5 pages a person, besides three requests to log in and one out
LOGIN_REQUESTS = 3  # the CAS form, the credentials, the ticket callback


def log_in(user):
    """The personas' CAS login: the form, the credentials (their redirect not followed), the ticket callback."""
    username, password = ROSTER.credentials("student", next(NUMBERS) % ROSTER.count("student"))
    service = f"{user.host}/ent/auth/callback"
    form = user.client.get("/cas/login", params={"service": service}, name="login form")
    fields = {"username": username, "password": password, "execution": EXECUTION.search(form.text)[1],
              "_eventId": "submit", "service": service}
    credentials = user.client.post("/cas/login", data=fields, name="credentials", allow_redirects=False)
    ticket_url = credentials.headers["location"]
    user.client.get(ticket_url.removeprefix(user.host), name="ticket callback").json()


class BareUser(FastHttpUser):
    wait_time = PACING
    requests_in_task = 1
    abstract = os.environ.get("BENCH_MIX") == "1"

    def on_start(self):
        log_in(self)

    @task
    def page(self):
        self.client.get("/api/dashboard", name="dashboard")


class MixUser(FastHttpUser):
    wait_time = PACING
    abstract = os.environ.get("BENCH_MIX") != "1"
    left = None  # pages left to the person; None before the first
    requests_in_task = 1

    @task
    def page(self):
        self.requests_in_task = 1
        if not self.left:
            if self.left is not None:
                self.client.get("/cas/logout", name="logout")
                self.requests_in_task += 1
            self.client.cookiejar.clear()
            log_in(self)
            self.requests_in_task += LOGIN_REQUESTS
            self.left = PAGES_PER_PERSON
        method, path = PAGES[self.left % len(PAGES)]
        self.client.request(method, path, name=path).json()
        self.left -= 1
'''

FIXED_POOL_LOCUSTFILE = '''
"""The surge engine with a fixed pool of BENCH_POOL agents for BENCH_HOLD_S seconds (no PoolShape)."""
import os
from locust import LoadTestShape
from schoolsurge.locustfile import SurgeAgent  # noqa: F401  (the engine: options, listeners, the agent)


class FixedPool(LoadTestShape):
    def tick(self):
        if self.get_run_time() >= float(os.environ["BENCH_HOLD_S"]):
            return None
        pool = int(os.environ["BENCH_POOL"])
        return pool, float(max(pool, 1))
'''

# N pupils log in within a few seconds of the start and stay, reading a page every half minute of run time.
MEMORY_SCENARIO = """
name: bench-memory
description: Pupils who all log in at once and stay, reading a page now and then.
pupils: 1000000
window: {start: "08:00", end: "09:00"}
groups:
  - name: pupils
    persona: student
    population: 1000000
    source: "benchmarks/bench_engine.py"
    participation: 1.0
    login_time: {distribution: normal, mean: "08:00", sd_minutes: 0.3}
    session: {distribution: lognormal, mean_minutes: 60, sigma: 0.1}
    think: {distribution: exponential, mean_seconds: 300}
    behaviour: {dashboard: 1.0}
    retry: {backoff: impatient-reload, base_seconds: 2, cap_seconds: 10, max_retries: 30, patience_seconds: 900}
slo: {login_p95_ms: 2000, error_ratio: 0.01}
run: {scale: 1.0e-6, speed: 10, seed: 2021}
platform: {hash_cost: 4, profile: resized}
"""

SCHEDULE_PROBE = """
import json, resource, sys, time, tracemalloc
from schoolsurge.models.schedule import schedule_part
from schoolsurge.scenario import load_scenario
scale, parts = float(sys.argv[1]), int(sys.argv[2])
scenario = load_scenario(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
wall, cpu = time.perf_counter(), time.process_time()
part = schedule_part(scenario, scale, 36.0, 2021, parts, parts - 1)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kept, arrivals = part.nbytes, len(part)
del part
tracemalloc.start()  # the same build again, its allocations traced: the peak it needs above what was there
schedule_part(scenario, scale, 36.0, 2021, parts, parts - 1)
traced = tracemalloc.get_traced_memory()[1]
print(json.dumps({"arrivals": arrivals, "wall_s": wall, "cpu_s": cpu, "base_mb": before / 1024,
                  "maxrss_mb": after / 1024, "kept_mb": kept / 1e6, "peak_mb": traced / 1e6}))
"""


def machine() -> dict[str, Any]:
    model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
        host.processor() or host.machine(),
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": host.python_version(),
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def machine_text(info: dict[str, Any]) -> str:
    return f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']:g} GiB"


def load_text() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def ratio_line(name: str, value: float, goal: float, unit: str, lower_is_better: bool = True) -> str:
    ratio = value / goal
    verdict = "meets the goal" if (ratio <= 1 if lower_is_better else ratio >= 1) else "MISSES the goal"
    return f"  {name:<42} {value:10.3f} {unit:<10} goal {goal:g}: {ratio:5.2f}x of it, {verdict}"


# ---- Locust runs, measured from outside ------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # unix seconds
    cpu_s: float  # user + system seconds of the Locust process(es) so far
    rss_mb: float
    worker_cpu_s: float = 0.0  # of the forked worker processes only (--processes), the master left out


@dataclass
class LocustRun:
    run_dir: Path
    samples: list[Sample] = field(default_factory=list)
    code: int | None = None

    def cpu_at(self, at: float, workers_only: bool = False) -> float:
        values = [s.worker_cpu_s if workers_only else s.cpu_s for s in self.samples]
        return float(np.interp(at, [s.at for s in self.samples], values))

    def rss_between(self, start: float, end: float) -> float:
        values = [s.rss_mb for s in self.samples if start <= s.at <= end]
        return statistics.median(values) if values else float("nan")

    @property
    def started(self) -> float:
        return self.samples[0].at


def _measure(process: psutil.Process) -> tuple[float, float, float]:
    """CPU seconds and resident MB of the process and its children (--processes forks workers), and the CPU
    seconds of the children alone."""
    cpu, rss, workers = 0.0, 0.0, 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times, memory = each.cpu_times(), each.memory_info()
        except psutil.Error:
            continue
        cpu += times.user + times.system
        rss += memory.rss / 1e6
        if each is not process:
            workers += times.user + times.system
    return cpu, rss, workers


def start_locust(args: list[str], run_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "locust", "--headless", "--only-summary", "--exit-code-on-error", "0"]
    command += ["--csv", str(run_dir / "locust"), "--csv-full-history", "--logfile", str(run_dir / "locust.log")]
    return subprocess.Popen(
        command + args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=(run_dir / "stderr.txt").open("wb"),
    )


def watch(started: dict[Path, subprocess.Popen[bytes]], timeout: float = 900) -> dict[Path, LocustRun]:
    """Sample the Locust processes (CPU, resident memory) until they have all exited."""
    runs = {run_dir: LocustRun(run_dir) for run_dir in started}
    watched = {run_dir: psutil.Process(process.pid) for run_dir, process in started.items()}
    deadline = time.time() + timeout
    while any(process.poll() is None for process in started.values()):
        for run_dir, process in started.items():
            if process.poll() is None:
                if time.time() > deadline:
                    process.kill()
                    continue
                runs[run_dir].samples.append(Sample(time.time(), *_measure(watched[run_dir])))
        time.sleep(0.25)
    for run_dir, process in started.items():
        runs[run_dir].code = process.wait()
        if runs[run_dir].code != 0:
            tail = (run_dir / "stderr.txt").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"locust exited with status {runs[run_dir].code} in {run_dir}:\n{tail}")
    return runs


def run_locust(args: list[str], run_dir: Path, env: dict[str, str] | None = None) -> LocustRun:
    return watch({run_dir: start_locust(args, run_dir, env)})[run_dir]


def http_requests(run: LocustRun) -> tuple[np.ndarray, np.ndarray]:
    """(unix second, HTTP requests so far) from Locust's stats history: all requests less the personas' FLOW
    entries (a whole login as one entry), which are not HTTP requests."""
    totals: dict[int, int] = {}
    flows: dict[int, int] = {}
    with (run.run_dir / "locust_stats_history.csv").open() as handle:
        for row in csv.DictReader(handle):
            second, count = int(row["Timestamp"]), int(row["Total Request Count"])
            if row["Name"] == "Aggregated":
                totals[second] = count
            elif row["Type"] == "FLOW":
                flows[second] = flows.get(second, 0) + count
    seconds = sorted(totals)
    return np.array(seconds, dtype=float), np.array([totals[s] - flows.get(s, 0) for s in seconds], dtype=float)


@dataclass
class CpuFigure:
    cpu_per_request_ms: float
    requests_per_s: float
    cpu_share: float  # of one core
    requests: int


def request_window(run: LocustRun, low: float = 0.1, high: float = 0.9) -> tuple[float, float]:
    """The stretch of the run between `low` and `high` of its HTTP requests (start-up and exit left out)."""
    seconds, counts = http_requests(run)
    final = counts[-1]
    return float(seconds[np.searchsorted(counts, low * final)]), float(seconds[np.searchsorted(counts, high * final)])


def cpu_per_request(run: LocustRun, window: tuple[float, float], workers_only: bool = False) -> CpuFigure:
    seconds, counts = http_requests(run)
    start, end = window
    requests = float(np.interp(end, seconds, counts) - np.interp(start, seconds, counts))
    cpu = run.cpu_at(end, workers_only) - run.cpu_at(start, workers_only)
    span = end - start
    return CpuFigure(1000 * cpu / requests, requests / span, cpu / span, int(requests))


FIT_STEP_S = 5.0


def fixed_and_marginal(run: LocustRun, window: tuple[float, float], workers_only: bool = False) -> tuple[float, float]:
    """(the share of a core the process spends whatever its request rate, the CPU ms each request adds), fitted
    by least squares over the window in FIT_STEP_S steps. The surge's rate follows the morning (it rises to the
    peak and falls), so the two separate; a fleet's worker, at thousands of requests/s, shares its fixed work
    (Locust's and the engine's per-second tasks, idle agents) among many more requests than the bench's.
    Falls back to (0, the mean per request) when the fit is not meaningful (a negative figure)."""
    seconds, counts = http_requests(run)
    start, end = window
    edges = np.arange(start, end + 1e-9, FIT_STEP_S)
    cpu = np.array([run.cpu_at(t, workers_only) for t in edges])
    done = np.interp(edges, seconds, counts)
    steps = np.column_stack([np.diff(edges), np.diff(done)])
    (fixed, per_request), *_ = np.linalg.lstsq(steps, np.diff(cpu), rcond=None)
    if len(edges) < 4 or fixed < 0 or per_request <= 0:
        return 0.0, cpu_per_request(run, window, workers_only).cpu_per_request_ms
    return float(fixed), float(1000 * per_request)


# ---- 1. schedule ---------------------------------------------------------------------------------------


def bench_schedule(scales: list[float], parts: list[int]) -> list[dict[str, Any]]:
    print("== schedule: one worker's part of first-day-2021, each built in a fresh interpreter")
    results = []
    for scale in scales:
        for count in parts:
            out = subprocess.run(
                [sys.executable, "-c", SCHEDULE_PROBE, repr(scale), str(count), str(FIRST_DAY)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            figure = json.loads(out.stdout)
            figure.update(scale=scale, parts=count, mb=figure["peak_mb"])
            results.append(figure)
            print(
                f"  scale {scale:<4g} part 1 of {count:<3d} {figure['arrivals']:>9,} arrivals: "
                f"{figure['wall_s']:5.2f} s ({figure['cpu_s']:.2f} s CPU), peak {figure['peak_mb']:6.1f} MB allocated "
                f"(kept {figure['kept_mb']:.1f} MB); process maxrss {figure['maxrss_mb']:.0f} MB, "
                f"{figure['base_mb']:.0f} MB before building"
            )
    return results


# ---- 2. CPU per request --------------------------------------------------------------------------------


def _planned_rates(replay: Replay) -> np.ndarray:
    """The run's request rate the plan expects at each scenario second of the national curves."""
    return replay.national.total_requests() * replay.load_fraction


def planned_mean_rate(scale: float, speed: float) -> float:
    """People's requests per run second the plan expects of the surge between 10% and 90% of its requests."""
    cumulative = np.cumsum(_planned_rates(Replay(load_scenario(FIRST_DAY), scale, speed)))
    low, high = np.searchsorted(cumulative, [0.1 * cumulative[-1], 0.9 * cumulative[-1]])
    return float(0.8 * cumulative[-1] / (high - low))  # both per scenario second: the run rate at that clock


def planned_rate_curve(scale: float, speed: float) -> list[float]:
    """The surge's planned requests/s in each second of its run: the bare users follow it, because a process's
    CPU per request depends on its rate (at a few hundred requests/s the same request costs it about twice what
    it does at 2,000), so bare users at the mean rate, beside a surge that rises and falls, would be measured at
    a cheaper rate than the surge."""
    replay = Replay(load_scenario(FIRST_DAY), scale, speed)
    rates, start_s = _planned_rates(replay), replay.national.start_s
    curve = []
    for second in range(math.ceil(replay.duration_s)):
        first = int(replay.clock_at(second) - start_s)
        within = rates[max(first, 0) : max(int(replay.clock_at(second + 1) - start_s), first + 1)]
        curve.append(float(within.mean()) if len(within) else 0.0)
    return curve


def bench_cpu(url: str, workdir: Path, repeats: int, worker: bool) -> dict[str, Any]:
    """The surge, a bare Locust and a bare Locust doing the personas' HTTP work ("mix"), the bare ones at the
    surge's planned rate second by second, side by side (the same seconds, so the same load from whatever else
    the machine runs), each measured over the surge's 10%-90% of requests.

    worker: each run with `--processes 1` and only its worker process measured, as in a fleet (Locust's CSV
    history, the run directory, progress and the report are the master's work); else one process does it all."""
    scale, speed = CPU_RUN
    rate = planned_mean_rate(scale, speed)
    duration = Replay(load_scenario(FIRST_DAY), scale, speed).duration_s
    curve = workdir / "planned_rate.json"
    curve.write_text(json.dumps(planned_rate_curve(scale, speed)))
    pacing = {"BENCH_RATE_CURVE": str(curve), "BENCH_USERS": str(BARE_USERS)}
    how = "worker processes (--processes 1, the master left out)" if worker else "single processes (no --processes)"
    print(
        f"== CPU per request, {how}: the surge (first-day-2021, scale {scale:g}, speed {speed:g}, {duration:.0f} s), "
        f"and {BARE_USERS} bare FastHttpUsers following its planned rate second by second ({rate:.0f} requests/s on "
        "average) reading a cheap page (bare) or making the personas' logins, pages and heartbeats without the engine "
        "(mix), side by side"
    )
    figures: dict[str, list[float]] = {
        name: [] for name in ("surge", "bare", "mix", "ratio", "ratio_mix", "ratio_mix_peak")
    }
    figures.update(surge_fixed_core_share=[], surge_marginal_ms=[])
    for repeat in range(repeats):
        mode = "worker" if worker else "single"
        dirs = {name: workdir / f"cpu-{mode}-{name}-{repeat}" for name in ("surge", "bare", "mix")}
        distributed = ["--processes", "1", *_master_port_args()] if worker else []
        bare_args = ["-f", str(_bare_locustfile(workdir)), "-H", url, "-u", str(BARE_USERS), "-r", str(BARE_USERS)]
        bare_args += ["-t", f"{duration + 15:.0f}s"]
        started = {
            dirs["surge"]: start_locust(
                ["-f", str(SURGE_LOCUSTFILE), "-H", url, "--scenario", str(FIRST_DAY), "--scale", repr(scale)]
                + ["--speed", repr(speed), "--seed", str(SEED), "--run-dir", str(dirs["surge"]), *distributed],
                dirs["surge"],
            ),
            dirs["bare"]: start_locust(
                bare_args + ["--processes", "1", *_master_port_args()] if worker else bare_args,
                dirs["bare"],
                env={**_bare_env(rate / BARE_USERS), **pacing},
            ),
            dirs["mix"]: start_locust(
                bare_args + ["--processes", "1", *_master_port_args()] if worker else bare_args,
                dirs["mix"],
                env={**_bare_env(rate / BARE_USERS), **pacing, "BENCH_MIX": "1"},
            ),
        }
        runs = watch(started)
        window = request_window(runs[dirs["surge"]])
        measured = {name: cpu_per_request(runs[path], window, worker) for name, path in dirs.items()}
        for name, figure in measured.items():
            figures[name].append(figure.cpu_per_request_ms)
            print(
                f"  {name:5}: {figure.requests:6,} requests at {figure.requests_per_s:4.0f}/s, "
                f"{figure.cpu_share:4.0%} of a core: {figure.cpu_per_request_ms:.3f} ms CPU per request"
            )
        fixed, marginal = fixed_and_marginal(runs[dirs["surge"]], window, worker)
        figures["surge_fixed_core_share"].append(fixed)
        figures["surge_marginal_ms"].append(marginal)
        print(
            f"  surge, fitted: {fixed:.1%} of a core whatever the rate, and {1000 * marginal:.0f} µs CPU per request "
            f"on top: {(CPU_TARGET - fixed) / marginal * 1000:,.0f} requests/s at {CPU_TARGET:.0%} of a core"
        )
        figures["ratio"].append(measured["surge"].cpu_per_request_ms / measured["bare"].cpu_per_request_ms)
        figures["ratio_mix"].append(measured["surge"].cpu_per_request_ms / measured["mix"].cpu_per_request_ms)
        print(f"  surge / bare {figures['ratio'][-1]:.3f}, surge / mix {figures['ratio_mix'][-1]:.3f} ({load_text()})")
        peak = request_window(runs[dirs["surge"]], *PEAK_SHARE)
        at_peak = {name: cpu_per_request(runs[dirs[name]], peak, worker) for name in ("surge", "mix")}
        figures["ratio_mix_peak"].append(at_peak["surge"].cpu_per_request_ms / at_peak["mix"].cpu_per_request_ms)
        print(
            f"  at the peak (the surge's middle {PEAK_SHARE[1] - PEAK_SHARE[0]:.0%} of requests, "
            f"{at_peak['surge'].requests_per_s:,.0f} requests/s): surge {at_peak['surge'].cpu_per_request_ms:.3f} ms, "
            f"mix {at_peak['mix'].cpu_per_request_ms:.3f} ms per request: "
            f"surge / mix {figures['ratio_mix_peak'][-1]:.3f}"
        )
    return {
        "personas_cpu_ms_per_request": statistics.median(figures["surge"]),
        "bare_cpu_ms_per_request": statistics.median(figures["bare"]),
        "mix_cpu_ms_per_request": statistics.median(figures["mix"]),
        "personas_fixed_core_share": statistics.median(figures["surge_fixed_core_share"]),
        "personas_marginal_cpu_ms_per_request": statistics.median(figures["surge_marginal_ms"]),
        "ratio": statistics.median(figures["ratio"]),
        "ratio_mix": statistics.median(figures["ratio_mix"]),
        "ratio_mix_peak": statistics.median(figures["ratio_mix_peak"]),
        "ratios": [round(r, 3) for r in figures["ratio"]],
    }


def _master_port_args() -> list[str]:
    """A master port of its own (runs side by side, and other distributed runs on this machine, use 5557)."""
    port = str(free_loopback_port())
    return ["--master-bind-port", port, "--master-port", port]


_PUPILS = 0  # the platform's pupils, for the bare users' accounts


def _bare_env(rate_per_user: float) -> dict[str, str]:
    return {"BENCH_SEED": str(SEED), "BENCH_PUPILS": str(_PUPILS), "BENCH_RATE_PER_USER": repr(rate_per_user)}


def _bare_locustfile(workdir: Path) -> Path:
    path = workdir / "bare_locustfile.py"
    path.write_text(textwrap.dedent(BARE_LOCUSTFILE))
    return path


# ---- 3. memory per person ------------------------------------------------------------------------------


def bench_memory(url: str, workdir: Path, hold_s: float, people: int) -> dict[str, Any]:
    agents = math.ceil(people * AGENTS_PER_PERSON)
    print(
        f"== memory: {people} people in a session with {agents} agents, against {people} bare users logged in "
        "(and none)"
    )
    scenario = workdir / "memory.yaml"
    scenario.write_text(MEMORY_SCENARIO)
    pool = workdir / "fixed_pool.py"
    pool.write_text(textwrap.dedent(FIXED_POOL_LOCUSTFILE))
    scale = people / 1_000_000
    surge_rss = {}
    for count in (0, people):
        run = run_locust(
            ["-f", str(pool), "-H", url, "--scenario", str(scenario), "--scale", repr(scale), "--speed", "10"]
            + ["--seed", str(SEED), "--run-dir", str(workdir / f"memory-surge-{count}")],
            workdir / f"memory-surge-{count}",
            env={"BENCH_POOL": str(agents if count else 0), "BENCH_HOLD_S": repr(hold_s)},
        )
        surge_rss[count] = run.rss_between(run.started + hold_s - 8, run.started + hold_s)
        if count:
            sessions = _active_sessions(workdir / f"memory-surge-{count}")
            print(f"  surge, {agents:3d} agents ({sessions} in a session): {surge_rss[count]:6.1f} MB resident")
        else:
            print(f"  surge,   0 agents: {surge_rss[count]:6.1f} MB resident")
    bare_rss = {}
    for count in (0, people):
        run = run_locust(
            ["-f", str(_bare_locustfile(workdir)), "-H", url, "-u", str(count), "-r", str(max(count, 1))]
            + ["-t", f"{hold_s:.0f}s"],
            workdir / f"memory-bare-{count}",
            env=_bare_env(0.1),
        )
        bare_rss[count] = run.rss_between(run.started + hold_s - 8, run.started + hold_s)
        print(f"  bare,  {count:3d} users : {bare_rss[count]:6.1f} MB resident")
    per_person = (surge_rss[people] - surge_rss[0]) * 1000 / people
    per_user = (bare_rss[people] - bare_rss[0]) * 1000 / people
    return {"kb_per_person": per_person, "kb_per_bare_user": per_user, "ratio": per_person / per_user}


def _active_sessions(run_dir: Path) -> int:
    with (run_dir / "sessions.csv").open() as handle:
        return max((int(row["active_sessions"]) for row in csv.DictReader(handle)), default=0)


# ---- 4. arrival rate -----------------------------------------------------------------------------------


def sweep_settings(quick: bool) -> SweepSettings:
    return SweepSettings(steps=6 if quick else 8, low=0.3, high=4.0, measure_s=6.0 if quick else 8.0, settle_sessions=1)


def bench_arrivals(url: str, workdir: Path, quick: bool) -> dict[str, Any]:
    settings = sweep_settings(quick)
    print(
        f"== arrival rate: sweeps of first-day-2021's mix, {settings.steps} steps at speed {SWEEP_SPEED:g}, "
        f"scale {SWEEP_SCALE:g}; sustained: every step up to it with <= {LATE_LIMIT:.0%} of its arrivals late "
        "(> 1 s) or dropped"
    )
    results = {}
    for processes in (1, 2):
        run_dir = workdir / f"sweep-{processes}"
        args = ["-f", str(SURGE_LOCUSTFILE), "-H", url, "--scenario", str(FIRST_DAY), "--scale", repr(SWEEP_SCALE)]
        args += ["--speed", repr(SWEEP_SPEED), "--seed", str(SEED), "--run-dir", str(run_dir)]
        args += ["--sweep-steps", str(settings.steps), "--sweep-low", repr(settings.low)]
        args += ["--sweep-high", repr(settings.high), "--sweep-measure", repr(settings.measure_s)]
        args += ["--sweep-settle", repr(settings.settle_sessions), "--sweep-stop-margin", "1e6"]
        if processes > 1:
            args += ["--processes", str(processes), *_master_port_args()]
        run_locust(args, run_dir)
        with (run_dir / "capacity.csv").open() as handle:
            steps = [row for row in csv.DictReader(handle) if row["status"] != "skipped" and row["arrivals"]]
        sustained, holding = 0.0, True
        for row in steps:
            # Not on time: started late (> 1 s) or dropped, of the arrivals due in the step's measured seconds.
            started, dropped = int(row["arrivals"]), int(row["dropped"])
            late = (int(row["late"]) + dropped) / max(started + dropped, 1)
            holding = holding and late <= LATE_LIMIT
            if holding:
                sustained = float(row["offered_arrivals_per_s"])
            print(
                f"  {processes} process{'es' if processes > 1 else '  '} step {row['step']}: "
                f"{float(row['offered_arrivals_per_s']):6.1f} arrivals/s offered, "
                f"{started:>5} started, {dropped} dropped, {late:6.1%} late or dropped, "
                f"{float(row['requests_per_s']):6.0f} requests/s, "
                f"generator CPU {row['generator_cpu_percent']}%{'' if late <= LATE_LIMIT else '  <- late'}"
            )
        results[processes] = sustained
        top = float(steps[-1]["offered_arrivals_per_s"]) if steps else 0.0
        note = " (the top step: at least this)" if steps and sustained == top else ""
        print(f"  {processes} process{'es' if processes > 1 else ''}: sustains {sustained:.1f} arrivals/s{note}")
    return {
        "arrivals_per_s_1_process": results[1],
        "arrivals_per_s_2_processes": results[2],
        "ratio_2_over_1": results[2] / results[1] if results[1] else float("nan"),
    }


# ---- the whole bench -----------------------------------------------------------------------------------


@contextlib.contextmanager
def fast_target(workdir: Path) -> Iterator[str]:
    """benchmarks/fast_target.py on an ephemeral loopback port: a target that is never the bottleneck, so the
    generator's CPU per request is measured at the rate the plan asks, whatever else the machine runs."""
    port_file = workdir / "fast-target.port"
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fast_target", "--port-file", str(port_file)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "fast-target.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the fast target did not start: {(workdir / 'fast-target.log').read_text()}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        process.terminate()
        process.wait(10)


def embedded(pupils: int, workdir: Path, name: str) -> PlatformProcess:
    """The platform with exactly the roster the runs derive their accounts from (same seed, same pupils)."""
    return PlatformProcess(
        seed=SEED,
        size=pupils,
        hash_cost=4,
        profile="resized",
        run_scale=SWEEP_SCALE,
        run_speed=SWEEP_SPEED,
        extra_args=NEVER_SHEDS,
        log_path=workdir / f"platform-{name}.log",
    )


def fleet_requests_per_s_at_target(cpu: dict[str, Any]) -> float:
    """People's requests/s a worker process would offer at CPU_TARGET of a core at a fleet's rates, its fixed
    per-second work taken once and each request's marginal CPU on top (fixed_and_marginal). An extrapolation
    from the bench's 1,400 requests/s, and the fit is rough: shown, not written to the fleet constants."""
    return (CPU_TARGET - cpu["personas_fixed_core_share"]) / cpu["personas_marginal_cpu_ms_per_request"] * 1000


def write_constants(path: Path, info: dict[str, Any], figures: dict[str, Any], load: list[float]) -> None:
    cpu = figures["cpu"]
    constants = {
        "requests_per_s_per_process": round(1000 / cpu["personas_cpu_ms_per_request"]),
        "kb_per_session": round(figures["memory"]["kb_per_person"], 1),
        "cpu_target": CPU_TARGET,
        "measured": {
            "by": "benchmarks/bench_engine.py",
            "date": dt.date.today().isoformat(),
            "machine": machine_text(info),
            "load_average": [round(x, 2) for x in load],
        },
        "figures": figures,
    }
    path.write_text(json.dumps(constants, indent=2) + "\n")
    print(f"  wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def cpu_only() -> int:
    """Part 2's worker-process comparison alone, once: the quick, repeatable check of the engine's CPU per
    request while working on it (run it a few times on a shared machine and compare the ratios)."""
    global _PUPILS
    _PUPILS = max(Replay(load_scenario(FIRST_DAY), *CPU_RUN).platform_pupils, MEMORY_PEOPLE)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp, fast_target(Path(tmp)) as url:
        cpu = bench_cpu(url, Path(tmp), 1, worker=True)
    print(
        f"== CPU µs per request: personas {1000 * cpu['personas_cpu_ms_per_request']:.0f}, "
        f"mix {1000 * cpu['mix_cpu_ms_per_request']:.0f}, bare {1000 * cpu['bare_cpu_ms_per_request']:.0f}; "
        f"personas / mix {cpu['ratio_mix']:.3f} ({cpu['ratio_mix_peak']:.3f} at the peak), personas / bare "
        f"{cpu['ratio']:.3f} ({load_text()})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    global _PUPILS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter measurements (about 6 minutes in all)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {CONSTANTS_PATH.name}")
    parser.add_argument("--constants", type=Path, default=CONSTANTS_PATH, help="where to write the fleet constants")
    parser.add_argument("--skip", action="append", default=[], choices=["schedule", "cpu", "memory", "arrivals"])
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="only part 2's worker-process comparison (personas, mix, bare), once; writes nothing",
    )
    args = parser.parse_args(argv)
    if args.cpu_only:
        return cpu_only()
    started = time.perf_counter()
    info = machine()
    loads = [os.getloadavg()]
    print(f"== machine: {machine_text(info)}, Python {info['python']}; {load_text()} at the start")
    figures: dict[str, Any] = {}
    if "schedule" not in args.skip:
        figures["schedule"] = bench_schedule([0.1, 1.0], [1, 16])
    first_day = load_scenario(FIRST_DAY)
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        workdir = Path(tmp)
        if "cpu" not in args.skip or "memory" not in args.skip:
            # The surge's roster (first-day-2021 at scale 5e-4: 6,350 pupils); the memory runs' 200 pupils and
            # the bare users log in with accounts of it too.
            _PUPILS = max(Replay(first_day, *CPU_RUN).platform_pupils, MEMORY_PEOPLE)
            with fast_target(workdir) as url:
                print(f"  (target: benchmarks/fast_target.py, canned answers, never the bottleneck: {url})")
                if "cpu" not in args.skip:
                    figures["cpu"] = bench_cpu(url, workdir, 1 if args.quick else 3, worker=True)
                    figures["cpu_single_process"] = bench_cpu(url, workdir, 1, worker=False)
                    loads.append(os.getloadavg())
                if "memory" not in args.skip:
                    people = MEMORY_PEOPLE // (2 if args.quick else 1)
                    figures["memory"] = bench_memory(url, workdir, 25 if args.quick else 35, people)
                    loads.append(os.getloadavg())
        if "arrivals" not in args.skip:
            pupils = sweep_replay(first_day, sweep_settings(args.quick), SWEEP_SCALE, SWEEP_SPEED).platform_pupils
            with embedded(pupils, workdir, "sweep") as platform:
                print(f"  (platform: {pupils} pupils for the sweeps' accounts: {platform.base_url})")
                figures["arrivals"] = bench_arrivals(platform.base_url, workdir, args.quick)
                loads.append(os.getloadavg())
    load = [max(column) for column in zip(*loads, strict=True)]
    print(f"== figures and goals ({load_text()} now; the highest seen: {' '.join(f'{x:.2f}' for x in load)})")
    if "schedule" in figures:
        for row in figures["schedule"]:
            if row["scale"] == 1.0:
                label = f"schedule at scale 1, part 1 of {row['parts']}"
                print(ratio_line(f"{label}: seconds", row["wall_s"], GOALS["schedule_s"], "s"))
                print(ratio_line(f"{label}: MB", row["mb"], GOALS["schedule_mb"], "MB"))
    if "cpu" in figures:
        cpu = figures["cpu"]
        print(
            "  CPU µs per people's request (worker process): "
            f"personas {1000 * cpu['personas_cpu_ms_per_request']:.0f}, "
            f"bare doing the same calls {1000 * cpu['mix_cpu_ms_per_request']:.0f}, "
            f"bare one GET {1000 * cpu['bare_cpu_ms_per_request']:.0f} (the floor)"
        )
        print(ratio_line("CPU per request, personas / bare same calls", cpu["ratio_mix"], GOALS["cpu_ratio_mix"], "x"))
        print(
            f"    personas / bare one GET {cpu['ratio']:.2f}x; at the surge's peak, personas / same calls "
            f"{cpu['ratio_mix_peak']:.2f}x"
        )
        at_target = CPU_TARGET * 1000 / cpu["personas_cpu_ms_per_request"]
        print(
            ratio_line(
                f"requests/s per worker at {CPU_TARGET:.0%} CPU",
                at_target,
                GOALS["requests_per_s_at_target"],
                "req/s",
                lower_is_better=False,
            )
        )
        print(
            f"    fitted (rough, it varies from run to run): {cpu['personas_fixed_core_share']:.1%} of a core whatever "
            f"the rate, {1000 * cpu['personas_marginal_cpu_ms_per_request']:.0f} µs per request on top: "
            f"{fleet_requests_per_s_at_target(cpu):,.0f} requests/s at {CPU_TARGET:.0%} CPU at a fleet worker's rate"
        )
        floor = CPU_TARGET * 1000 / cpu["bare_cpu_ms_per_request"]
        print(f"    bare one GET at {CPU_TARGET:.0%} CPU: {floor:,.0f} requests/s (what Locust itself allows here)")
        single = figures["cpu_single_process"]
        print(
            "    one process doing it all (CSV history, run directory, report): "
            f"personas / bare {single['ratio']:.2f}x, "
            f"personas / mix {single['ratio_mix']:.2f}x, {single['personas_cpu_ms_per_request']:.3f} ms per request"
        )
    if "memory" in figures:
        memory = figures["memory"]
        print(ratio_line("KB per person in a session", memory["kb_per_person"], GOALS["kb_per_session"], "KB"))
        bare = memory["kb_per_bare_user"]
        print(f"    a bare user logged in: {bare:.1f} KB (personas / bare {memory['ratio']:.2f}x)")
    if "arrivals" in figures:
        arrivals = figures["arrivals"]
        print(
            f"  arrivals/s sustained: {arrivals['arrivals_per_s_1_process']:.1f} by one process, "
            f"{arrivals['arrivals_per_s_2_processes']:.1f} by two ({arrivals['ratio_2_over_1']:.2f}x)"
        )
    if not args.no_write and "cpu" in figures and "memory" in figures:
        write_constants(args.constants, info, figures, load)
    print(f"== done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
