"""The target's side, recorded with the run: its Prometheus endpoint scraped every few seconds.

Each scrape appends one JSON line to target_metrics.jsonl: the unix time it was taken and the samples parsed
from the exposition (histogram buckets and `_created` samples left out: their `_sum` and `_count` are kept):

    {"unix": 1617692400.2, "samples": [["schoolsurge_platform_cpu_seconds_total", {}, 12.5], ...]}

The URL is --target-metrics (`off`: none), by default the target's own /metrics (the embedded platform serves
it). It is fetched through the run's guarded opener (engine/http.py): the loopback guard on it and on every
redirect, at most MAX_SCRAPE_BYTES read. On the target's own origin it carries the admin token, when the run
has one, as a bearer (a platform started with --metrics-token accepts it), never to another origin a redirect
leads to. The first scrape, at the start, is a probe: when it gets no Prometheus text (no answer, an error, an
HTML page), one line says so and names `--target-metrics URL|off`, and the run scrapes no more (no
target_metrics.prom). A later scrape that fails, whatever the target answers (nothing, an error, garbage, too
much), is one warning line for the run and the run goes on. At the
end the last exposition is also kept whole as target_metrics.prom (report/outcome/health.py reads it). The report
charts these scrapes on the scenario clock (report/platform/).
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gevent
from prometheus_client.parser import text_string_to_metric_families

from schoolsurge.engine.http import FetchFailed, excerpt
from schoolsurge.files import open_for_append, remove_entry
from schoolsurge.rundir import TARGET_METRICS_SERIES
from schoolsurge.rundir.metrics import scrape_line

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

TIMEOUT_S = 5.0
MAX_SCRAPE_BYTES = 4 << 20  # an exposition larger than this is a failed scrape
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
        self.option = engine.context.monitoring.target_metrics
        self.every_s = engine.kind.scrape_every_s()
        self.failed_once = False
        self.closed = False  # the final scrape is taken: the file is complete
        self.stopped = False  # the probe got no Prometheus text: no scrape this run

    def url(self) -> str | None:
        if self.option:
            return None if self.option == OFF else self.option
        host = self.engine.environment.host
        return f"{host.rstrip('/')}/metrics" if host else None

    def fetch(self) -> str | None:
        """The exposition text, or None (no URL, refused by the guard, unreachable, not HTTP, too large)."""
        url = self.url()
        if url is None:
            return None
        try:
            return self._fetch(url)
        except FetchFailed as error:
            self._failed(f"no target metrics from {url} ({error})")
            return None

    def _fetch(self, url: str) -> str:
        """The text at `url`; FetchFailed when there is none."""
        headers = {}
        token, host = self.engine.context.admin_token, self.engine.environment.host or ""
        if token and _origin(url) == _origin(host):  # a /metrics behind a token takes the admin one, on the target only
            headers["Authorization"] = f"Bearer {token}"
        body = self.engine.http.fetch(
            url, headers=headers, timeout_s=TIMEOUT_S, max_body_bytes=MAX_SCRAPE_BYTES, limit_name="scrape limit"
        )
        return body.decode("utf-8", errors="replace")

    def _failed(self, message: str) -> None:
        """One warning for the run's failed scrapes (the first), the others at debug level: a run scrapes every
        few seconds, and a target without metrics is no reason to fill the log."""
        log.log(logging.DEBUG if self.failed_once else logging.WARNING, "%s", excerpt(message, 300))
        self.failed_once = True

    def record(self, text: str, unix: float) -> bool:
        """Append the scrape to the file; False when the text is not Prometheus's."""
        try:
            samples = parse_samples(text)
        except ValueError as error:  # the parser's message quotes the offending line, however long
            self._failed(f"the target's metrics are not Prometheus text ({error})")
            return False
        self._append(samples, unix)
        return True

    def _append(self, samples: list[list[Any]], unix: float) -> None:
        try:
            with open_for_append(self.path) as handle:
                handle.write(scrape_line(unix, samples))
        except OSError as error:
            log.error("cannot write %s: %s", self.path, error)

    def scrape(self, final: bool = False) -> str | None:
        """One scrape, recorded; returns its text when it is Prometheus's. The `final` one (at the end of the run)
        is the file's last. Never raises: the run and its results do not depend on the target's metrics."""
        if self.stopped:
            return None
        if final:
            self.closed = True
        elif self.closed:
            return None
        unix = time.time()
        try:
            text = self.fetch()
            if text is None or (self.closed and not final):  # a periodic one that ended after the final: dropped
                return None
            return text if self.record(text, unix) else None
        except Exception as error:  # noqa: BLE001 (whatever a hostile target makes a library raise)
            self._failed(f"scrape of the target's metrics failed: {type(error).__name__}: {error}")
            return None

    def probe(self) -> bool:
        """The first scrape: False, once one line has said why and what to do, when it got no Prometheus text
        (the run then scrapes no more)."""
        url = self.url()
        if url is None:
            self.stopped = True
            return False
        unix = time.time()
        try:
            self._append(parse_samples(self._fetch(url)), unix)
            return True
        except FetchFailed as error:
            reason = f"no answer from {url} ({error})"
        except ValueError as error:  # the parser's message quotes the offending line, however long
            reason = f"{url} answered, but not Prometheus text ({error})"
        except Exception as error:  # noqa: BLE001 (whatever a hostile target makes a library raise)
            reason = f"no answer from {url} ({type(error).__name__}: {error})"
        self.stopped = True
        log.warning(
            "%s",
            f"{excerpt(reason, 240)}: the target's metrics are not scraped this run; give their Prometheus "
            f"endpoint with --target-metrics URL, or --target-metrics {OFF}",
        )
        return False

    def scrape_forever(self) -> None:
        if not self.probe():
            return
        gevent.sleep(self.every_s)
        while not self.closed:
            started = time.monotonic()
            self.scrape()
            gevent.sleep(max(0.0, self.every_s - (time.monotonic() - started)))


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
