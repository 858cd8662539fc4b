"""What every kind of run answers for the engine: the extension point of kinds/ (its docstring says how to add one).

The engine asks its kind, never which kind it runs: what share each process holds (what it schedules), what to
do when a test starts and stops, the load shape's stop rule, the progress line's clock, how often the target's
metrics are scraped, the manifest fields it writes and the files it writes beside sessions.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from schoolsurge.engine.ledger import Ledger
from schoolsurge.engine.share import FleetStatus, ProcessShare, Share
from schoolsurge.rundir import RunKind

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine


class Kind:
    """A kind of run as the engine runs it, one instance per installed engine. What you must write: `name`,
    `ended`, `progress_clock` and `scrape_every_s`; what you may: the rest (these defaults are open arrivals')."""

    name: ClassVar[RunKind]
    # Why the closed model's persona users cannot run this kind (persona_users.py refuses them), if they cannot.
    persona_users_refused: ClassVar[str | None] = None

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def new_share(self) -> Share:
        """A fresh share of the test for this process: its part of the run's schedule."""
        context = self.engine.context
        return ProcessShare(context.replay, context.parameters)

    def test_started(self, start_unix: float) -> None:
        """A test starts (on the process that keeps the results, once its share holds its part)."""

    def test_stopped(self) -> None:
        """The test has stopped (every process)."""

    def ended(self, run_s: float, status: FleetStatus) -> bool:
        """The load shape's stop rule: whether the test, at run second run_s, has run as planned (it then ends,
        and the run is `completed`)."""
        raise NotImplementedError

    def progress_clock(self, run_s: float) -> str:
        """Where the run is, as the progress line says it."""
        raise NotImplementedError

    def scrape_every_s(self) -> float:
        """Seconds between two scrapes of the target's metrics (target_metrics.py)."""
        raise NotImplementedError

    def manifest_fields(self) -> dict[str, Any]:
        """What the engine writes into the manifest about the kind of run."""
        return {"kind": self.name}

    def write_files(self, run_dir: Path, ledger: Ledger) -> None:
        """The kind's own files, written with sessions.csv (every few seconds and at the end)."""
