"""Fleet sizing: Locust worker processes (one per core) and memory a run needs.

The figures come from benchmarks/bench_engine.py (`python -m benchmarks.bench_engine`), which measures the personas
against a target that is never the bottleneck (benchmarks/fast_target.py) and writes them to
benchmarks/fleet_constants.json. `FleetFigures()` reads that file (or the one SCHOOLSURGE_FLEET_CONSTANTS names)
when it is there, else takes the documented defaults below, and its `source` says which. Requests/s per process is
one core's worth of a worker process (1 / the personas' CPU seconds per request); processes are planned at
`cpu_target` of a core because Locust's own latency figures drift once a worker's CPU is saturated (it warns at
90%). KB per session is the resident memory of one person in a session (their share of the agents included).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONSTANTS_ENV = "SCHOOLSURGE_FLEET_CONSTANTS"
CONSTANTS_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "fleet_constants.json"

# Documented defaults, for when no constants file is found: the committed benchmarks/fleet_constants.json,
# measured by benchmarks/bench_engine.py on an AMD EPYC (2 cores, 23.5 GiB, shared with other work, load average
# about 1 during its CPU runs) on 2026-12-06, against benchmarks/fast_target.py (a target that is never the
# bottleneck): a worker process (`--processes 1`, the master's work left out) living the personas at about 1,400
# requests/s costs 0.202 ms of CPU per request (4,954 requests/s on a whole core), and a person in a session holds
# 15.1 KB, agents and their cookie jar's remembered headers included. Bare Locust in the same run, at the surge's
# request rate second by second, each request at a random moment: 0.173 ms a request reading one page, 0.193 ms
# making the personas' HTTP calls (personas / those 1.05x; the goal, 1.15x, is met), 28.8 KB a user.
DEFAULT_REQUESTS_PER_S_PER_PROCESS = 4_954.0
DEFAULT_KB_PER_SESSION = 15.1
DEFAULT_CPU_TARGET = 0.75
DEFAULT_SOURCE = "documented defaults measured on AMD EPYC, 2 cores, 23.5 GiB 2026-12-06"


def constants_path() -> Path:
    """The fleet constants file: SCHOOLSURGE_FLEET_CONSTANTS, else benchmarks/fleet_constants.json."""
    given = os.environ.get(CONSTANTS_ENV)
    return Path(given) if given else CONSTANTS_PATH


def read_constants(path: Path | None = None) -> dict[str, Any] | None:
    """The constants file's figures, None when there is none (a file named by the environment must exist).
    Raises ValueError naming the file when it cannot be used."""
    named = path is not None or bool(os.environ.get(CONSTANTS_ENV))
    path = path if path is not None else constants_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if named:
            raise ValueError(f"fleet constants file {path} not found ({CONSTANTS_ENV})") from None
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"fleet constants file {path} is unreadable ({error})") from None
    try:
        figures = {
            "requests_per_s_per_process": float(data["requests_per_s_per_process"]),
            "kb_per_session": float(data["kb_per_session"]),
            "cpu_target": float(data.get("cpu_target", DEFAULT_CPU_TARGET)),
        }
        measured = data.get("measured", {})
        by = measured.get("by", "benchmarks/bench_engine.py")
        figures["source"] = f"fleet figures measured by {by} on {measured['machine']} {measured['date']}"
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"fleet constants file {path} lacks a figure ({error!r})") from None
    return figures


def _default(name: str) -> Any:
    def factory() -> Any:
        constants = read_constants()
        if constants is not None:
            return constants[name]
        return {
            "requests_per_s_per_process": DEFAULT_REQUESTS_PER_S_PER_PROCESS,
            "kb_per_session": DEFAULT_KB_PER_SESSION,
            "cpu_target": DEFAULT_CPU_TARGET,
            "source": DEFAULT_SOURCE,
        }[name]

    return field(default_factory=factory)


@dataclass(frozen=True)
class FleetFigures:
    """What one Locust process offers and what one open session weighs. Each figure left out is read from the
    constants file (`make bench`), else a documented default; `source` says which."""

    requests_per_s_per_process: float = _default("requests_per_s_per_process")
    kb_per_session: float = _default("kb_per_session")
    cpu_target: float = _default("cpu_target")
    source: str = _default("source")

    def __post_init__(self) -> None:
        if not self.requests_per_s_per_process > 0:
            raise ValueError(f"requests per second per process must be positive, got {self.requests_per_s_per_process}")
        if not self.kb_per_session > 0:
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


# Each process builds only its own part of the schedule (schoolsurge/models/schedule.py): while building, every
# group's sorted times and person numbers (12 bytes an arrival of the whole run), then it keeps its part (13
# bytes an arrival). Measured by benchmarks/bench_engine.py: first-day-2021 at scale 1 (7.1M arrivals) peaks
# at about 100 MB for a part of 16 and 190 MB for the whole run in one part, over the interpreter's own (the
# ranking's working arrays add a few MB). It was 0.6 KB an arrival, 4.3 GB at scale 1 in every process, when
# each process built the whole run as a list of objects.
SCHEDULE_BYTES_PER_ARRIVAL_BUILT = 12.0  # per arrival of the whole run, in every process, while building
SCHEDULE_BYTES_PER_ARRIVAL_KEPT = 13.0  # per arrival of its part, kept by the process


def schedule_memory_mb(people: int, processes: int) -> float:
    """Memory the arrival schedule takes at its peak in all the processes of a run, together."""
    built = people * SCHEDULE_BYTES_PER_ARRIVAL_BUILT * processes
    return (built + people * SCHEDULE_BYTES_PER_ARRIVAL_KEPT) / 1e6
