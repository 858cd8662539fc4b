"""Benchmark of the login form reader on hostile pages: its time must grow as the page, not as its square.

    .venv/bin/python -m benchmarks.bench_login_form        # a few seconds

A page of n unclosed tags (or comments, scripts, open quotes) once took a quadratic time: 0.56 s at 14 KB,
9.3 s at 56 KB. For each hostile unit, the reader's CPU time (the best of several, this thread's) on 2,000 and on
16,000 units, and their ratio: about 8 when linear, 64 when quadratic. The test suite checks the reader's
linearity without timing it (tests/test_clients.py); this prints the times.
"""

from __future__ import annotations

import time

from schoolsurge.clients.login_form import parse_login_form

HOSTILE_UNITS = ("<input ", "<!--", "<script", '<form a="', "<input x='")
SMALL, LARGE = 2_000, 16_000
LINEAR_BOUND = 16.0  # x8 the page: linear is about 8, quadratic 64


def cpu_seconds_to_read(page: str, repeats: int) -> float:
    """The best of a few timings of this thread's CPU time (a busy machine delays the thread, not its CPU)."""
    timings = []
    for _ in range(repeats):
        started = time.thread_time()
        parse_login_form(page, "http://127.0.0.1/")
        timings.append(time.thread_time() - started)
    return min(timings)


def main() -> int:
    print(f"== login form reader: CPU time on {SMALL:,} and {LARGE:,} hostile units (x{LARGE // SMALL} the page)")
    worst = 0.0
    for unit in HOSTILE_UNITS:
        small = cpu_seconds_to_read(unit * SMALL, 9)
        large = cpu_seconds_to_read(unit * LARGE, 5)
        ratio = large / max(small, 1e-6)
        worst = max(worst, ratio)
        print(f"  {unit!r:<12} {small * 1e3:8.3f} ms  {large * 1e3:8.3f} ms  x{ratio:5.1f}")
    verdict = "linear" if worst <= LINEAR_BOUND else "NOT LINEAR"
    print(f"  worst ratio x{worst:.1f} for x{LARGE // SMALL} the page (linear about 8, quadratic 64): {verdict}")
    return 0 if worst <= LINEAR_BOUND else 1


if __name__ == "__main__":
    raise SystemExit(main())
