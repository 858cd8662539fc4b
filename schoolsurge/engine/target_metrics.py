"""The target's side, recorded with the run: its Prometheus endpoint scraped every few seconds.

Each scrape appends one JSON line to target_metrics.jsonl: the unix time it was taken and the samples parsed
from the exposition (histogram buckets and `_created` samples left out: their `_sum` and `_count` are kept):

    {"unix": 1617692400.2, "samples": [["schoolsurge_platform_cpu_seconds_total", {}, 12.5], ...]}

The URL is --target-metrics (`off`: none), by default the target's own /metrics (the embedded platform serves
it); it passes the same loopback guard as the target. On the target's own origin it carries the admin token,
when the run has one, as a bearer (a platform started with --metrics-token accepts it). A target without
/metrics is tried on, quietly: the file then holds no line. At the end the last exposition is also kept whole
as target_metrics.prom (report/health.py reads it). The report charts these scrapes on the scenario clock
(report/platform_side.py).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from prometheus_client.parser import text_string_to_metric_families

from schoolsurge.errors import UnsafeTargetError
from schoolsurge.files import open_for_append, remove_entry
from schoolsurge.rundir import TARGET_METRICS_SERIES

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

SCRAPE_EVERY_S = 5.0
MIN_SCRAPE_EVERY_S = 1.0
SCRAPES_PER_SWEEP_STEP = 3  # a sweep's measured part gets at least this many scrapes (down to 1 s apart)
TIMEOUT_S = 5.0
MAX_BYTES = 4 << 20
OFF = "off"
SKIPPED_SUFFIXES = ("_bucket", "_created")
log = logging.getLogger(__name__)


def parse_samples(text: str) -> list[list[Any]]:
    """[name, labels, value] of every sample worth keeping; ValueError for text that is not Prometheus's."""
    return [
        [sample.name, dict(sample.labels), sample.value]
        for family in text_string_to_metric_families(_without_skipped(text))
        for sample in family.samples
    ]


def _without_skipped(text: str) -> str:
    """The exposition less the samples parse_samples leaves out, dropped before parsing: a histogram's buckets
    are most of its lines, and the scrape runs in the generator, beside the people's requests."""
    kept = []
    for line in text.splitlines():
        if not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name.endswith(SKIPPED_SUFFIXES):
                continue
        kept.append(line)
    return "\n".join(kept) + "\n"


class TargetMetrics:
    """Scrapes the target's metrics into the run directory (the process that writes the results)."""

    def __init__(self, engine: Engine, run_dir: Path) -> None:
        self.engine = engine
        self.path = run_dir / TARGET_METRICS_SERIES
        remove_entry(self.path)  # an earlier run's scrapes (plain locust --run-dir DIR again) are not this run's
        self.option = getattr(engine.environment.parsed_options, "target_metrics", None)
        self.every_s = scrape_interval(engine)
        self.failed_once = False
        self.closed = False  # the final scrape is taken: the file is complete

    def url(self) -> str | None:
        if self.option:
            return None if self.option == OFF else self.option
        host = self.engine.environment.host
        return f"{host.rstrip('/')}/metrics" if host else None

    def fetch(self) -> str | None:
        """The exposition text, or None (no URL, refused by the guard, unreachable, not Prometheus text)."""
        url = self.url()
        if url is None:
            return None
        request = urllib.request.Request(url)
        token, host = self.engine.context.admin_token, self.engine.environment.host or ""
        if token and _origin(url) == _origin(host):  # a /metrics behind a token takes the admin one, on the target only
            request.add_header("Authorization", f"Bearer {token}")
        try:
            self.engine.guard.check(url)
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return response.read(MAX_BYTES).decode("utf-8", errors="replace")
        except (OSError, UnsafeTargetError, ValueError) as error:
            level = logging.DEBUG if self.failed_once else logging.INFO
            log.log(level, "no target metrics from %s (%s)", url, error)
            self.failed_once = True
            return None

    def record(self, text: str, unix: float) -> None:
        try:
            samples = parse_samples(text)
        except ValueError as error:
            log.info("the target's metrics are not Prometheus text (%s)", error)
            return
        try:
            with open_for_append(self.path) as handle:
                handle.write(json.dumps({"unix": round(unix, 3), "samples": samples}, separators=(",", ":")) + "\n")
        except OSError as error:
            log.error("cannot write %s: %s", self.path, error)

    def scrape(self, final: bool = False) -> str | None:
        """One scrape, recorded; returns the text. The `final` one (at the end of the run) is the file's last."""
        if final:
            self.closed = True
        elif self.closed:
            return None
        unix = time.time()
        text = self.fetch()
        if text is not None and (final or not self.closed):  # a periodic one that ended after the final: dropped
            self.record(text, unix)
        return text

    def scrape_forever(self) -> None:
        while not self.closed:
            started = time.monotonic()
            self.scrape()
            gevent.sleep(max(0.0, self.every_s - (time.monotonic() - started)))


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def scrape_interval(engine: Engine) -> float:
    """5 s; a sweep's steps get at least SCRAPES_PER_SWEEP_STEP scrapes each in their measured part."""
    replay = engine.context.replay
    measure_s = getattr(replay, "measure_s", None)
    if replay.is_sweep and measure_s:
        return max(MIN_SCRAPE_EVERY_S, min(SCRAPE_EVERY_S, float(measure_s) / SCRAPES_PER_SWEEP_STEP))
    return SCRAPE_EVERY_S
