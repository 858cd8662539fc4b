"""How well the machine lets a worker run, measured from inside it: a probe on its event loop, and the kernel's
count of the time the loop's thread waited for a CPU.

Every PROBE_EVERY_S the probe sleeps on the worker's event loop and measures how late it woke (the lag: a
histogram). A loop that wakes late answered nobody meanwhile: the machine's other processes had the CPU (the
worker was starved), its process was stopped (SIGSTOP, a paused machine), or the worker's own work held its loop.
A wakeup later than STALL_LAG_S adds its whole lateness to the stalled counter: time the worker could not serve.
The profile's deliberate waits (rate tokens, the admission queue, a wrong password's slow-down) are futures the
loop awaits while it serves others: they never make it late, so a slow profile never counts as a stall.

Where the kernel says (Linux, /proc/thread-self/schedstat) the probe also adds the time the loop's thread spent
on a CPU and the time it was runnable but not running, waiting in the run queue: the share of its wanted CPU time
it spent waiting grows when other processes starve the worker (a stopped worker is neither, but it stalls).
report/outcome/health.py judges both against its thresholds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from schoolsurge.rundir.metrics import PROBE_EVERY_S, STALL_LAG_S

if TYPE_CHECKING:
    from schoolsurge.platform.metrics import Metrics

SCHEDSTAT = Path("/proc/thread-self/schedstat")  # ns on a CPU, ns waiting in the run queue, time slices


def thread_schedule_s() -> tuple[float, float] | None:
    """(seconds on a CPU, seconds waiting in the run queue) of the calling thread since it started; None where
    the kernel does not say (not Linux, or schedstats unavailable)."""
    try:
        on_cpu, waiting = SCHEDSTAT.read_text().split()[:2]
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return None


async def probe_scheduling(metrics: Metrics) -> None:
    """Runs for the worker's lifetime (its app's lifespan), on its event loop."""
    loop = asyncio.get_running_loop()
    before = thread_schedule_s()
    while True:
        asleep_at = loop.time()
        await asyncio.sleep(PROBE_EVERY_S)
        lag = max(0.0, loop.time() - asleep_at - PROBE_EVERY_S)
        metrics.loop_lag.observe(lag)
        if lag > STALL_LAG_S:
            metrics.loop_stalled.inc(lag)
        now = thread_schedule_s()
        if metrics.loop_schedule is not None and now is not None and before is not None:
            on_cpu, waiting = metrics.loop_schedule
            on_cpu.inc(max(0.0, now[0] - before[0]))
            waiting.inc(max(0.0, now[1] - before[1]))
        before = now
