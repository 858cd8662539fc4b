"""Benchmark of the reference platform, on loopback: what one worker serves, and where each profile sheds.

    .venv/bin/python -m benchmarks.bench_platform            # about 3 minutes
    .venv/bin/python -m benchmarks.bench_platform --quick    # about 1 minute, rougher figures

1. Per worker, at the default hash cost, admission wide open: full CAS logins per second (form, credentials,
   ticket callback) and dashboard reads per second, closed loop; then the same with two workers (ratio).
2. Per profile, standing in for the default surge run (scale 1e-4, speed 36: its national limits scaled to
   it, as in `make surge`): an open-loop ramp of the surge's request mix (one login per READS_PER_LOGIN page
   reads, arrivals on the clock, latency from the intended start so a slow platform cannot slow the load
   down), until the platform sheds (503) or breaks the login SLO (p95 of the whole login over 2 s).

The load generator runs in this process (gevent + geventhttpclient, as Locust's FastHttpUser), on the same
two cores as the platform, as in `make surge`. Figures vary with what else the machine runs: read them as
ratios. The seeded database comes from the same cache as `make surge` (.cache/); a first run seeds it.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import gevent
from gevent.pool import Pool
from geventhttpclient import HTTPClient

from schoolsurge.accounts import Roster
from schoolsurge.platform.process import PlatformProcess
from schoolsurge.platform.settings import PROFILES

SEED, SIZE, HASH_COST = 2021, 1270, 10  # the default surge population (`make surge`)
CALLBACK = "/ent/auth/callback"
EXECUTION = re.compile(rb'name="execution"\s+value="([^"]+)"')
# The first-day surge at its peak (scale 1e-4, speed 36x, about 08:15), measured from locust_stats_history.csv
# of `make surge` on the open-arrival engine on this machine (November 2026): 6.8 logins/s and 211 requests/s
# over the busiest 10 s, i.e. about 31 requests per login: its own three, then pages and heartbeats.
SURGE_PEAK_LOGINS_S = 6.8
SURGE_RUN = (1e-4, 36.0)  # the default surge's scale and speed: the profiles' national limits scale to it
READS_PER_LOGIN = 28  # besides the page read right after each login
LOGIN_SLO_S = 2.0
SHED_THRESHOLD = 0.01  # share of 503s from which a step counts as shedding
WIDE_OPEN = ["--max-in-flight", "64", "--queue-length", "4096", "--queue-timeout", "60"]


class Platform:
    """HTTP conversation with a running platform, one connection pool shared by all greenlets."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url
        self.http = HTTPClient(
            parts.hostname, parts.port, concurrency=concurrency, connection_timeout=10, network_timeout=15
        )
        self.roster = Roster(SEED, SIZE)
        self._next = random.Random(1).randrange(SIZE)

    def close(self) -> None:
        self.http.close()

    def account(self) -> tuple[str, str]:
        self._next += 1
        return self.roster.credentials("student", self._next)

    def login(self) -> tuple[int, str | None, int]:
        """The whole CAS flow; (status of the first step that failed or 200, session cookie, requests sent)."""
        username, password = self.account()
        service = f"{self.base_url}{CALLBACK}"
        form = self.http.get(f"/cas/login?{urlencode({'service': service})}")
        body = form.read()
        match = EXECUTION.search(body) if form.status_code == 200 else None
        if match is None:
            return form.status_code, None, 1
        fields = {"username": username, "password": password, "execution": match[1].decode(), "service": service}
        # The execution token works only with the login-flow cookie that came with the form.
        flow = (form.get("set-cookie") or "").split(";", 1)[0]
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": flow}
        submitted = self.http.post("/cas/login", body=urlencode(fields), headers=headers)
        submitted.read()
        location = submitted.get("location")
        if submitted.status_code != 302 or not location:
            return submitted.status_code, None, 2
        callback = urlsplit(location)
        done = self.http.get(f"{callback.path}?{callback.query}")
        done.read()
        cookie = done.get("set-cookie")
        if done.status_code != 200 or not cookie:
            return done.status_code, None, 3
        return 200, cookie.split(";", 1)[0], 3

    def read(self, cookie: str, path: str = "/api/dashboard") -> int:
        response = self.http.get(path, headers={"Cookie": cookie})
        response.read()
        return response.status_code


@contextmanager
def platform(
    args: list[str], profile: str | None = None, run: tuple[float, float] | None = None
) -> Iterator[PlatformProcess]:
    """The platform; `run` = (scale, speed) of the run it stands in for (default: national, 1:1)."""
    started = time.perf_counter()
    run_scale, run_speed = run or (None, None)
    with PlatformProcess(
        seed=SEED,
        size=SIZE,
        hash_cost=HASH_COST,
        profile=profile,
        extra_args=args,
        run_scale=run_scale,
        run_speed=run_speed,
    ) as proc:
        log = proc.log_path.read_text()
        seeded = re.search(r"seeded \S+ in ([0-9.]+)s", log)
        if seeded:
            print(f"  (first seed of {SIZE} pupils at cost {HASH_COST}: {seeded[1]} s)")
        print(f"  platform up in {time.perf_counter() - started:.1f} s: {' '.join(args) or '(profile defaults)'}")
        yield proc


def closed_loop(action: Callable[[], bool], concurrency: int, seconds: float) -> tuple[float, int]:
    """Run `action` back to back in `concurrency` greenlets; (successes per second, failures)."""
    ok, failed = 0, 0
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal ok, failed
        while time.monotonic() < deadline:
            if action():
                ok += 1
            else:
                failed += 1

    started = time.monotonic()
    gevent.joinall([gevent.spawn(worker) for _ in range(concurrency)])
    return ok / (time.monotonic() - started), failed


def per_worker(workers: int, seconds: float) -> tuple[float, float]:
    with platform(["--workers", str(workers), *WIDE_OPEN]) as proc:
        client = Platform(proc.base_url, concurrency=64)
        try:
            closed_loop(lambda: client.login()[0] == 200, 8, 1.0)  # warm up: threads, connections, caches
            logins, failed = closed_loop(lambda: client.login()[0] == 200, 8, seconds)
            assert failed == 0, f"{failed} logins failed"
            sessions = [cookie for _ in range(32) if (cookie := client.login()[1])]
            reads, failed = closed_loop(lambda: client.read(random.choice(sessions)) == 200, 16, seconds)
            assert failed == 0, f"{failed} reads failed"
        finally:
            client.close()
    return logins, reads


@dataclass
class Step:
    logins_s: float
    offered_rps: float
    requests: int = 0
    shed: int = 0
    errors: int = 0
    login_times: list[float] = field(default_factory=list)
    logins_failed: int = 0
    served_rps: float = 0.0

    @property
    def shed_ratio(self) -> float:
        return self.shed / self.requests if self.requests else 0.0

    @property
    def login_p95(self) -> float:
        times = sorted(self.login_times)
        return times[min(len(times) - 1, int(0.95 * len(times)))] if times else float("nan")

    @property
    def breaks(self) -> bool:
        return self.shed_ratio > SHED_THRESHOLD or self.login_p95 > LOGIN_SLO_S


def open_loop_step(client: Platform, sessions: list[str], logins_s: float, seconds: float) -> Step:
    """Arrivals on the clock: logins at `logins_s`, page reads at READS_PER_LOGIN times that."""
    reads_s = logins_s * READS_PER_LOGIN
    step = Step(logins_s, logins_s * (4 + READS_PER_LOGIN))  # a login is 3 requests, then a page
    pool = Pool(5000)
    rng = random.Random(int(logins_s * 1000))

    def count(status: int, requests: int = 1) -> None:
        step.requests += requests
        if status == 503:
            step.shed += 1
        elif status >= 400:
            step.errors += 1

    def one_login(intended: float) -> None:
        try:
            status, cookie, sent = client.login()
        except Exception:  # timeouts and resets are failed logins too
            status, cookie, sent = 599, None, 1
        # Latency from the intended start (open model): waiting for a connection counts.
        elapsed = time.monotonic() - intended
        count(status, sent)
        if cookie:
            step.login_times.append(elapsed)
            sessions.append(cookie)
            count(client.read(cookie, "/api/homework"))
        else:
            step.logins_failed += 1

    def one_read() -> None:
        try:
            count(client.read(rng.choice(sessions[-500:])))
        except Exception:
            count(599)

    started = time.monotonic()
    arrivals = sorted(
        [(started + rng.uniform(0, seconds), one_login) for _ in range(round(logins_s * seconds))]
        + [(started + rng.uniform(0, seconds), one_read) for _ in range(round(reads_s * seconds))],
        key=lambda a: a[0],
    )
    for at, action in arrivals:
        gevent.sleep(max(0.0, at - time.monotonic()))
        if action is one_login:
            pool.spawn(one_login, at)
        else:
            pool.spawn(one_read)
    pool.join(timeout=30)
    step.served_rps = (step.requests - step.shed) / (time.monotonic() - started)
    return step


def ramp(profile: str, levels: list[float], seconds: float) -> list[Step]:
    steps: list[Step] = []
    with platform([], profile=profile, run=SURGE_RUN) as proc:
        client = Platform(proc.base_url, concurrency=2000)
        try:
            sessions = [cookie for _ in range(20) if (cookie := client.login()[1])]
            for logins_s in levels:
                step = open_loop_step(client, sessions, logins_s, seconds)
                steps.append(step)
                print(
                    f"  {profile:16} {logins_s:5.1f} logins/s ({step.offered_rps:5.0f} req/s offered, "
                    f"{logins_s / SURGE_PEAK_LOGINS_S:4.2f}x surge peak): served {step.served_rps:5.0f} req/s, "
                    f"503 {step.shed_ratio:6.1%}, other errors {step.errors:4d}, "
                    f"login p95 {step.login_p95 * 1000:6.0f} ms{'  <- breaks' if step.breaks else ''}"
                )
                if len(steps) >= 2 and steps[-1].breaks and steps[-2].breaks:
                    break  # two broken steps in a row: enough, and kinder to the machine
                gevent.sleep(1.0)  # let queues drain between steps
        finally:
            client.close()
    return steps


def first_break(steps: list[Step]) -> str:
    broken = next((s for s in steps if s.breaks), None)
    if broken is None:
        return f"holds up to {steps[-1].logins_s:.0f} logins/s ({steps[-1].logins_s / SURGE_PEAK_LOGINS_S:.2f}x peak)"
    why = "503s" if broken.shed_ratio > SHED_THRESHOLD else "login p95 over 2 s"
    return f"breaks at {broken.logins_s:.0f} logins/s ({broken.logins_s / SURGE_PEAK_LOGINS_S:.2f}x peak): {why}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter measurements (about 1 minute in all)")
    args = parser.parse_args(argv)
    seconds = 3.0 if args.quick else 6.0
    levels = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0]
    started = time.perf_counter()

    print(f"== per worker: bcrypt cost {HASH_COST}, {SIZE} pupils, admission wide open, closed loop")
    one = per_worker(1, seconds)
    two = per_worker(2, seconds)
    print(f"  1 worker : {one[0]:6.1f} logins/s   {one[1]:7.0f} dashboard reads/s")
    print(f"  2 workers: {two[0]:6.1f} logins/s   {two[1]:7.0f} dashboard reads/s")
    print(f"  ratio 2/1: {two[0] / one[0]:6.2f}x           {two[1] / one[1]:7.2f}x")

    print(
        f"== profiles standing in for the default surge run (scale {SURGE_RUN[0]:g}, speed {SURGE_RUN[1]:g}): "
        f"open-loop ramp of the surge mix ({READS_PER_LOGIN} reads per login), {seconds:.0f} s a step"
    )
    results = {profile: ramp(profile, levels, seconds) for profile in PROFILES}
    print(f"== where each profile starts shedding (surge peak ~ {SURGE_PEAK_LOGINS_S:.0f} logins/s)")
    for profile, steps in results.items():
        print(f"  {profile:16} {first_break(steps)}")
    print(f"== done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
