"""Fleet sizing: Locust worker processes (one per core) and memory a run needs.

Defaults from docs/facts.md#load-generators-measured (2-core machine, loopback): one FastHttpUser process
serves about 5,300 requests/s of a small static JSON; 20,000 mostly idle users hold about 550 MB (27 KB each).
Real pages and the SSO flow cost more than a static file, so the figures are overridable; processes are planned
at `cpu_target` of a core because Locust's own latency figures drift once a worker's CPU is saturated (it warns at 90%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FleetFigures:
    requests_per_s_per_process: float = 5_300.0
    kb_per_session: float = 27.0
    cpu_target: float = 0.75

    def __post_init__(self) -> None:
        if self.requests_per_s_per_process <= 0:
            raise ValueError(f"requests per second per process must be positive, got {self.requests_per_s_per_process}")
        if self.kb_per_session <= 0:
            raise ValueError(f"KB per session must be positive, got {self.kb_per_session}")
        if not 0 < self.cpu_target <= 1:
            raise ValueError(f"CPU target must be in (0, 1], got {self.cpu_target}")


@dataclass(frozen=True)
class FleetNeed:
    workers: int  # Locust worker processes, one per core
    memory_mb: float  # resident memory of the simulated sessions, all workers together


def fleet_need(peak_requests_per_s: float, peak_sessions: float, figures: FleetFigures) -> FleetNeed:
    """What it takes to offer this peak request rate while holding this many open sessions."""
    workers = max(1, math.ceil(peak_requests_per_s / (figures.requests_per_s_per_process * figures.cpu_target)))
    return FleetNeed(workers=workers, memory_mb=peak_sessions * figures.kb_per_session / 1000)


# Measured: `run --scale 1` of first-day-2021 built its 7.1M arrivals as Python objects and passed 4.3 GB,
# about 0.6 KB an arrival, in every process (each builds the whole schedule before keeping its part).
SCHEDULE_KB_PER_ARRIVAL = 0.6


def schedule_memory_mb(people: int, processes: int) -> float:
    """Memory the arrival schedule takes in all the processes of a run."""
    return people * SCHEDULE_KB_PER_ARRIVAL * processes / 1000
