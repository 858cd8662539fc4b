"""The engine's files of the run directory, written by the process that keeps the results (a single process, or
the master).

However the run was started (`schoolsurge run`, `make`, plain `locust -f`, a master with workers), this writes
the manifest's engine fields, the scenario copy, the timeline, Locust's CSV files with full history,
sessions.csv, the histograms, the record of the client's steps, the target's metrics and, at exit, how the run
ended. When `schoolsurge run`
started Locust it has already created the directory and its manifest; a directory without one is this process's
own (`owned`). The report, the validity and the verdicts are not the engine's: the run's conclusion
(schoolsurge/conclude.py) reads these files once they are written.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import time
from typing import TYPE_CHECKING, Any

import gevent
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter

from schoolsurge.engine.ledger import write_groups_csv, write_histograms, write_sessions_csv
from schoolsurge.engine.target_metrics import TargetMetrics
from schoolsurge.files import atomic_file, readable, remove_entry
from schoolsurge.rundir import (
    FAILURES_CSV,
    GROUPS_CSV,
    HISTOGRAMS,
    LOCUST_CSV_SUFFIXES,
    LOCUST_PREFIX,
    MANIFEST,
    SESSIONS_CSV,
    STATS_CSV,
    TARGET_METRICS,
    TIMELINE,
    RunStatus,
    finish_manifest,
    start_manifest,
    update_manifest,
    write_client_steps,
    write_json,
)
from schoolsurge.scenario import seconds_to_clock

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

FLUSH_EVERY_S = 5.0
log = logging.getLogger(__name__)


class RunDirectoryWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        context = engine.context
        assert context.run_dir is not None
        self.run_dir = context.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # A directory without a manifest is ours to complete (plain locust); one with it belongs to a runner.
        self.owned = not readable(self.run_dir / MANIFEST)
        fields = {
            "scenario": context.scenario.name,
            "scale": context.replay.scale,
            "speed": context.replay.speed,
            "seed": context.seed,
            "client": f"{context.client_class.__module__}:{context.client_class.__qualname__}",
            "sso": context.client_settings.sso,
            "role": type(engine.role).__name__.removesuffix("Role").lower(),
            **engine.kind.manifest_fields(),
        }
        if self.owned:
            start_manifest(
                self.run_dir,
                context.scenario_path or self.run_dir / "scenario.yaml",
                target=engine.environment.host or "",
                embedded=False,
                **fields,
            )
        else:
            update_manifest(self.run_dir, **fields)
        self.own_csv = self._start_locust_csv()
        self.target_metrics = TargetMetrics(engine, self.run_dir)  # core.install() runs its scrape_forever

    def _start_locust_csv(self) -> tuple[StatsCSVFileWriter, gevent.Greenlet] | None:
        """Locust writes its CSV files only when given --csv; otherwise (plain locust -f) we write them."""
        options = self.engine.environment.parsed_options
        prefix = getattr(options, "csv_prefix", None)
        if prefix and str(prefix) == str(self.run_dir / LOCUST_PREFIX):
            return None
        base = self.run_dir / LOCUST_PREFIX
        # Locust opens its files by name, following a link: whatever is there (a directory given with --run-dir
        # may hold anything, a link to ~/.ssh/authorized_keys included) is removed first, so it creates new ones.
        for suffix in LOCUST_CSV_SUFFIXES:
            remove_entry(base.with_name(base.name + suffix))
        writer = StatsCSVFileWriter(self.engine.environment, PERCENTILES_TO_REPORT, str(base), full_history=True)
        return writer, self.engine.spawn(writer.stats_writer)

    def test_started(self, start_unix: float) -> None:
        scenario = self.engine.context.scenario
        replay = self.engine.context.replay
        write_json(
            self.run_dir / TIMELINE,
            {
                "test_start_unix": start_unix,
                "window_start": scenario.window.start,
                "window_end": scenario.window.end,
                "scale": replay.scale,
                "speed": replay.speed,
                "people_scheduled": replay.people,
            },
        )
        if self.owned:  # plain locust: how many processes ran the agents (`schoolsurge run` wrote its own)
            update_manifest(self.run_dir, processes=self.engine.role.processes)

    def record_workers(self, lost: list[dict[str, Any]], late: list[dict[str, Any]]) -> None:
        """A master's Locust workers lost during the test and those that joined after its start, each with the
        note the report shows (manifest `lost_workers`, `late_workers`)."""
        try:
            update_manifest(self.run_dir, lost_workers=lost, late_workers=late)
        except OSError as error:
            log.error("cannot record the workers in %s: %s", self.run_dir / MANIFEST, error)

    def clock_label(self, second: int) -> str:
        clock = self.engine.context.replay.clock_at(second)
        return f"{seconds_to_clock(clock)}:{int(clock) % 60:02d}"

    def write_sessions(self) -> None:
        ledger = self.engine.ledger()
        if not ledger.seconds:
            return
        try:
            write_sessions_csv(ledger, self.run_dir / SESSIONS_CSV, self.clock_label)
            write_groups_csv(ledger, self.run_dir / GROUPS_CSV)
            write_histograms(ledger, self.run_dir / HISTOGRAMS)
            write_client_steps(self.run_dir, self.engine.client_steps())
            self.engine.kind.write_files(self.run_dir, ledger)  # a sweep's capacity.csv
        except OSError as error:
            log.error("cannot write session metrics in %s: %s", self.run_dir, error)

    def flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_EVERY_S)
            self.write_sessions()

    def finish(self) -> None:
        """At exit: the last metrics, Locust's final statistics, and how the run ended."""
        self.write_sessions()
        self._final_locust_csv()
        self._scrape_target_metrics()
        refused = self.engine.refused
        if refused is not None:
            status, ended = RunStatus.REFUSED, {"stopped_by": refused}
        else:
            status, ended = (RunStatus.COMPLETED if self.engine.completed else RunStatus.INTERRUPTED), {}
        finish_manifest(self.run_dir, status, results_written_unix=time.time(), **ended)

    def _final_locust_csv(self) -> None:
        """Locust's final request and failure tables, written here whoever wrote them during the run: Locust's
        writer rewrites them once a second and closes them at exit without a last write, so a test that ends
        within a second of its last requests (one the loopback guard stops, say) would not show them. The new
        files replace the old ones (Locust's writer, if still open, writes to what it opened)."""
        if self.own_csv is not None:
            writer, greenlet = self.own_csv
            greenlet.kill(block=True)  # before its files close under it
            with contextlib.suppress(OSError):
                writer.close_files()
        tables = StatsCSV(self.engine.environment, PERCENTILES_TO_REPORT)
        try:
            for name, write_rows in ((STATS_CSV, tables.requests_csv), (FAILURES_CSV, tables.failures_csv)):
                with atomic_file(self.run_dir / name) as handle:
                    write_rows(csv.writer(handle))
        except OSError as error:
            log.error("cannot write Locust's statistics in %s: %s", self.run_dir, error)

    def _scrape_target_metrics(self) -> None:
        """The target's Prometheus figures at the end (shed reasons, CPU): what tells a platform at its profile's
        limits from a machine at its own; also the last line of target_metrics.jsonl. A target without /metrics
        (or --target-metrics off) is simply not scraped."""
        text = self.target_metrics.scrape(final=True)
        if text is None:
            return
        with atomic_file(self.run_dir / TARGET_METRICS) as handle:
            handle.write(text)
