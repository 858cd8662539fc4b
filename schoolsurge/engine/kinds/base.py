"""What every kind of run answers for the engine: the extension point of kinds/ (its docstring says how to add one).

The engine asks its kind, never which kind it runs: what share each process holds (what it schedules), what to
do when a test starts and stops, the load shape's stop rule, the progress line's clock, how often the target's
metrics are scraped, the manifest fields it writes and the files it writes beside sessions.csv.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import gevent
import numpy as np

from schoolsurge.engine.context import SurgeContext
from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.share import FleetStatus, ProcessShare, Share
from schoolsurge.models.schedule import split_schedule
from schoolsurge.rundir import RunKind

# The target's metrics are scraped every SCRAPE_EVERY_S (target_metrics.py), more often when a kind asks (a
# sweep's steps), never more often than every MIN_SCRAPE_EVERY_S.
SCRAPE_EVERY_S = 5.0
MIN_SCRAPE_EVERY_S = 1.0


class EngineView(Protocol):
    """What a kind uses of the engine that runs it (core.py `Engine`)."""

    @property
    def context(self) -> SurgeContext: ...

    @property
    def share(self) -> Share: ...

    @property
    def stopped_at_s(self) -> float | None: ...

    def ledger(self) -> Ledger: ...

    def spawn(self, function: Callable[..., Any], *args: Any) -> gevent.Greenlet: ...

    def complete(self) -> None: ...

    def change_schedule(self, change: dict[str, Any]) -> None: ...


class Kind:
    """A kind of run as the engine runs it, one instance per installed engine. What you must write: `name`,
    `ended` and `progress_clock`; what you may: the rest (these defaults are open arrivals')."""

    name: ClassVar[RunKind]
    # Why the closed model's persona users cannot run this kind (persona_users.py refuses them), if they cannot.
    persona_users_refused: ClassVar[str | None] = None

    def __init__(self, engine: EngineView) -> None:
        self.engine = engine

    def new_share(self) -> Share:
        """A fresh share of the test for this process: its part of the run's schedule."""
        context = self.engine.context
        return ProcessShare(context.replay, context.parameters)

    def test_started(self, start_unix: float) -> None:
        """A test starts (on the process that keeps the results, once its share holds its part)."""

    def test_stopped(self) -> None:
        """The test has stopped (every process)."""

    def apply_schedule_change(self, change: dict[str, Any]) -> None:
        """On a process that runs agents: the change of the schedule this kind decided during the test (its wire
        form, roles.py `change_schedule`). Kinds whose schedule is fixed at the start make none."""
        raise NotImplementedError(f"a {self.name} run does not change its schedule during the test")

    def describe_schedule_change(self, change: dict[str, Any]) -> tuple[str, float]:
        """A change of the schedule (its wire form) as notes name it, and the run second it takes effect."""
        raise NotImplementedError(f"a {self.name} run does not change its schedule during the test")

    def part_arrival_times(self, parts: int, index: int) -> np.ndarray:
        """Run seconds of the arrivals of part `index` of `parts`, as the schedule stands now (the changes this
        kind made during the test applied): what a master counts for a worker it lost."""
        part = split_schedule(self.engine.share.schedule, parts, index)
        return np.fromiter((arrival.at_s for arrival in part), dtype=np.float64, count=len(part))

    def ended(self, run_s: float, status: FleetStatus) -> bool:
        """The load shape's stop rule: whether the test, at run second run_s, has run as planned (it then ends,
        and the run is `completed`)."""
        raise NotImplementedError

    def progress_clock(self, run_s: float) -> str:
        """Where the run is, as the progress line says it."""
        raise NotImplementedError

    def scrape_every_s(self) -> float:
        """Seconds between two scrapes of the target's metrics (target_metrics.py)."""
        return SCRAPE_EVERY_S

    def manifest_fields(self) -> dict[str, Any]:
        """What the engine writes into the manifest about the kind of run."""
        return {"kind": self.name}

    def write_files(self, run_dir: Path, ledger: Ledger) -> None:
        """The kind's own files, written with sessions.csv (every few seconds and at the end)."""
