"""The run as Prometheus metrics, live: what the master (or the single process) knows, served on /metrics.

Every figure is computed when scraped, from the same sources as the run directory, so nothing is counted twice
and nothing drifts from sessions.csv: the engine's merged ledger (counters summed over the run's seconds, the
gauges of the latest second every process has reported, the time-to-login and request-latency HdrHistograms
merged over seconds and workers), Locust's statistics (requests and failures by step) and Locust's view of
its processes' CPU. Names start `schoolsurge_surge_` (the reference platform's own metrics are `schoolsurge_`
without it: tests/test_deploy_monitoring.py checks that no name is shared), counters end in `_total`, times are
seconds, and every sample carries the `scenario` and `run` labels (the run directory's name).

The server is prometheus_client's WSGI app served by gevent's WSGI server (Locust's own loop: a scrape runs
between two greenlets, never beside one that changes the ledger), bound to 127.0.0.1 unless --metrics-host
says otherwise; --metrics-port 0 takes a free port, written into the manifest as `metrics_url`. After the
results are final it keeps serving them --metrics-linger seconds, so that a Prometheus scraping it sees the
run's final totals, then stops.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import gevent
import numpy as np
from gevent.pywsgi import WSGIServer
from hdrh.histogram import HdrHistogram
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from schoolsurge.engine.ledger import Ledger, SecondMetrics, new_histogram
from schoolsurge.rundir import FAILURE_COUNTERS, Counter, Gauge, update_manifest

if TYPE_CHECKING:
    from schoolsurge.engine.core import Engine

PREFIX = "schoolsurge_surge_"
LABELS = ("scenario", "run")
# Time to log in, seconds: the scenario's objective is added to these so its share can be read off exactly.
LOGIN_BUCKETS_S = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
REQUEST_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# A master's merged ledger has a second whole once every worker's report covering it arrived.
MASTER_GAUGE_LAG_S = math.ceil(WORKER_REPORT_INTERVAL) + 1
log = logging.getLogger(__name__)

# name (without prefix and _total), help, the ledger's counter
COUNTERS: tuple[tuple[str, str, Counter], ...] = (
    ("arrivals_scheduled", "People whose arrival was due, by the run's schedule", Counter.SCHEDULED),
    ("arrivals_started", "Arrivals an agent started", Counter.STARTED),
    ("arrivals_late", "Arrivals started later than --late-after", Counter.LATE),
    ("arrivals_dropped", "Arrivals never started: no agent within --drop-after", Counter.DROPPED),
    ("arrivals_lost", "Arrivals never started: their Locust worker was lost", Counter.LOST),
    ("login_attempts", "Login attempts by people (first tries and retries)", Counter.LOGIN_ATTEMPTS),
    ("logins_succeeded", "People who logged in", Counter.LOGINS_SUCCEEDED),
    ("logins_failed", "Login attempts that failed", Counter.LOGINS_FAILED),
    ("login_retries", "Login attempts after a failed one", Counter.LOGIN_RETRIES),
    ("page_retries", "Pages asked again after they failed", Counter.PAGE_RETRIES),
    ("virtual_classes_opened", "Teachers who opened a virtual class", Counter.VIRTUAL_CLASSES_OPENED),
    ("virtual_class_joins", "Pupils let into a virtual class", Counter.VIRTUAL_CLASS_JOINS),
    (
        "came_for_virtual_class",
        "Teachers and pupils who came to hold or join a virtual class (2021's population)",
        Counter.CAME_FOR_VIRTUAL_CLASS,
    ),
    ("requests", "People's HTTP requests completed (bots and the login flow entry left out)", Counter.REQUESTS),
    ("bot_login_attempts", "Login attempts of the attack incident's bots (counted apart)", Counter.BOT_LOGIN_ATTEMPTS),
    (
        "generator_saturated_seconds",
        "Process-seconds a Locust process spent above 90% CPU",
        Counter.GENERATOR_SATURATED_S,
    ),
)
GAVE_UP = (("logging_in", Counter.ABANDONED), ("on_a_page", Counter.GAVE_UP_PAGE))
FAILURE_KINDS = {counter: counter.value.removeprefix("failures_") for counter in FAILURE_COUNTERS}
# name, help, the ledger's gauge
GAUGES: tuple[tuple[str, str, Gauge], ...] = (
    ("people_in_session", "People logged in with a session going on", Gauge.ACTIVE_SESSIONS),
    ("people_in_virtual_class", "People in a virtual class", Gauge.IN_VIRTUAL_CLASS),
    ("arrivals_waiting_for_agent", "Arrivals due and waiting for a free agent", Gauge.WAITING_FOR_AGENT),
    ("agents", "Agents in the pool (Locust users), all processes", Gauge.POOL_SIZE),
)


def metric_names() -> set[str]:
    """Every metric family this exporter serves (as Prometheus stores them: counters with `_total`)."""
    names = {f"{PREFIX}{name}_total" for name, _, _ in COUNTERS}
    names |= {f"{PREFIX}{name}" for name, _, _ in GAUGES}
    names |= {
        f"{PREFIX}{name}"
        for name in (
            "gave_up_total",
            "request_failures_total",
            "step_requests_total",
            "step_failures_total",
            "generator_cpu_usage_ratio",
            "generator_processes",
            "run_seconds",
            "scenario_clock_seconds",
            "people_planned",
            "info",
        )
    }
    for histogram in ("time_to_login_seconds", "request_duration_seconds"):
        names |= {f"{PREFIX}{histogram}_{part}" for part in ("bucket", "sum", "count")}
    return names


class _Buckets:
    """Prometheus buckets of the ledger's HdrHistograms (milliseconds), in numpy: a histogram's counts array
    summed over seconds, then cumulated at each bucket's bound. A value is in the bucket of its HDR cell's
    lowest equivalent value (within 1% of it, the histograms' precision); the sum uses each cell's middle."""

    def __init__(self, bounds_s: Iterable[float]) -> None:
        template = new_histogram()
        self.length = template.counts_len
        self.bounds_s = tuple(sorted(set(bounds_s)))
        self.indices = np.array([template._counts_index_for(int(b * 1000)) for b in self.bounds_s], dtype=np.int64)
        middles = [template._hdr_median_equiv_value(template.get_value_from_index(i)) for i in range(self.length)]
        self.middles_s = np.array(middles, dtype=float) / 1000

    def counts(self, histograms: Iterable[HdrHistogram | None]) -> np.ndarray:
        total = np.zeros(self.length, dtype=np.float64)
        for histogram in histograms:
            if histogram is None or not histogram.get_total_count():
                continue
            counts = np.ctypeslib.as_array(histogram.counts)
            if len(counts) == self.length:
                total += counts
            else:  # another layout (never written by the ledger): add it the slow way
                same = new_histogram()
                same.add(histogram)
                total += np.ctypeslib.as_array(same.counts)
        return total

    def family(
        self, name: str, documentation: str, labels: list[str], counts: np.ndarray, never: float = 0.0
    ) -> HistogramMetricFamily:
        """`never`: people who never got a value (gave up logging in, or still logging in), in +Inf only: the
        login percentiles are over everyone who tried (rundir/figures.py), in Prometheus as in the report."""
        cumulative = np.cumsum(counts)
        total = float(cumulative[-1]) if len(cumulative) else 0.0
        buckets = [(_le(b), float(cumulative[i])) for b, i in zip(self.bounds_s, self.indices, strict=True)]
        buckets.append(("+Inf", total + never))
        family = HistogramMetricFamily(name, documentation, labels=list(LABELS))
        family.add_metric(labels, buckets, float(np.dot(counts, self.middles_s)))
        return family


def _le(bound: float) -> str:
    return floatToGoString(bound)  # as prometheus_client's own histograms write it: le="2.0"


class SurgeCollector(Collector):
    """The run's figures at scrape time (see the module's docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        context = engine.context
        self.labels = [context.scenario.name, context.run_dir.name if context.run_dir else "unnamed"]
        objective_s = context.scenario.slo.login_p95_ms / 1000
        self.login_buckets = _Buckets((*LOGIN_BUCKETS_S, objective_s))
        self.request_buckets = _Buckets(REQUEST_BUCKETS_S)

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        engine, labels = self.engine, self.labels
        ledger = engine.ledger()
        totals = _counter_totals(ledger)
        yield self._info()
        for name, documentation, counter in COUNTERS:
            yield _counter(name, documentation, labels, totals.get(counter, 0))
        gave_up = CounterMetricFamily(
            f"{PREFIX}gave_up",
            "People who gave up: logging in, or on a page that kept failing",
            labels=[*LABELS, "when"],
        )
        for when, counter in GAVE_UP:
            gave_up.add_metric([*labels, when], totals.get(counter, 0))
        yield gave_up
        failures = CounterMetricFamily(
            f"{PREFIX}request_failures", "People's failed HTTP requests by kind", labels=[*LABELS, "kind"]
        )
        for counter, kind in FAILURE_KINDS.items():
            failures.add_metric([*labels, kind], totals.get(counter, 0))
        yield failures
        gauges = _settled_gauges(ledger, MASTER_GAUGE_LAG_S if self._is_master() else 0)
        for name, documentation, gauge in GAUGES:
            family = GaugeMetricFamily(f"{PREFIX}{name}", documentation, labels=list(LABELS))
            family.add_metric(labels, gauges.get(gauge, 0))
            yield family
        yield from self._clock()
        seconds = list(ledger.seconds.values())
        yield self.login_buckets.family(
            f"{PREFIX}time_to_login_seconds",
            "Time to log in from the intended arrival, everyone who tried: those who gave up or are still logging "
            "in count in +Inf only, as never logged in (HdrHistograms merged over workers)",
            labels,
            self.login_buckets.counts(second.time_to_login for second in seconds),
            never=totals.get(Counter.ABANDONED, 0) + totals.get(Counter.UNFINISHED, 0),
        )
        yield self.request_buckets.family(
            f"{PREFIX}request_duration_seconds",
            "People's HTTP request latency (HdrHistograms merged over workers)",
            labels,
            self.request_buckets.counts(second.request_latency for second in seconds),
        )
        yield from self._locust_stats()
        yield from self._generator_cpu()

    def _is_master(self) -> bool:
        return isinstance(self.engine.environment.runner, MasterRunner)

    def _info(self) -> Metric:
        context = self.engine.context
        replay = context.replay
        info = GaugeMetricFamily(
            f"{PREFIX}info",
            "The run: scenario, run directory, scale, speed, seed, role (always 1)",
            labels=[*LABELS, "scale", "speed", "seed", "role"],
        )
        role = type(self.engine.role).__name__.removesuffix("Role").lower()
        info.add_metric([*self.labels, f"{replay.scale:g}", f"{replay.speed:g}", str(context.seed), role], 1)
        return info

    def _clock(self) -> Iterator[Metric]:
        queue = self.engine.share.queue
        replay = self.engine.context.replay
        run_s = queue.run_seconds() if queue.loaded else 0.0
        for name, documentation, value in (
            ("run_seconds", "Run seconds since the test started (0 before)", run_s),
            (
                "scenario_clock_seconds",
                "The scenario clock the run is at, seconds since midnight",
                replay.clock_at(run_s),
            ),
            ("people_planned", "People the run's schedule holds", replay.people),
        ):
            family = GaugeMetricFamily(f"{PREFIX}{name}", documentation, labels=list(LABELS))
            family.add_metric(self.labels, value)
            yield family

    def _locust_stats(self) -> Iterator[Metric]:
        stats = self.engine.environment.stats
        requests = CounterMetricFamily(
            f"{PREFIX}step_requests",
            "Locust's entries by step (name) and method: HTTP requests, the FLOW login as people feel it, bots' steps",
            labels=[*LABELS, "step", "method"],
        )
        failures = CounterMetricFamily(
            f"{PREFIX}step_failures", "Locust's failures by step (name) and method", labels=[*LABELS, "step", "method"]
        )
        for entry in list(stats.entries.values()):
            step = [*self.labels, str(entry.name), str(entry.method)]
            requests.add_metric(step, entry.num_requests)
            failures.add_metric(step, entry.num_failures)
        yield requests
        yield failures

    def _generator_cpu(self) -> Iterator[Metric]:
        runner = self.engine.environment.runner
        cpu = GaugeMetricFamily(
            f"{PREFIX}generator_cpu_usage_ratio",
            "CPU of each Locust process as Locust samples it (1 = one core), by worker (master/local: itself)",
            labels=[*LABELS, "worker"],
        )
        processes = 0
        if runner is not None:
            own = "master" if self._is_master() else "local"
            cpu.add_metric([*self.labels, own], runner.current_cpu_usage / 100)
            processes += 0 if self._is_master() else 1
            for node in list(getattr(runner, "clients", {}).values()) if self._is_master() else []:
                cpu.add_metric([*self.labels, str(node.id)], node.cpu_usage / 100)
                processes += 1
        yield cpu
        count = GaugeMetricFamily(
            f"{PREFIX}generator_processes", "Locust processes running agents", labels=list(LABELS)
        )
        count.add_metric(self.labels, processes)
        yield count


def _counter(name: str, documentation: str, labels: list[str], value: float) -> Metric:
    family = CounterMetricFamily(f"{PREFIX}{name}", documentation, labels=list(LABELS))
    family.add_metric(labels, value)
    return family


def _counter_totals(ledger: Ledger) -> dict[Counter, int]:
    totals: dict[Counter, int] = {}
    for bucket in ledger.seconds.values():
        for name, value in bucket.counters.items():
            totals[name] = totals.get(name, 0) + value
    return totals


def _settled_gauges(ledger: Ledger, lag_s: int) -> dict[Gauge, int]:
    """The gauges of the latest second sampled at least `lag_s` seconds before the latest one sampled: a master
    hears each worker's seconds with its report, every few seconds, so a younger second may lack some workers."""
    sampled = [second for second, bucket in ledger.seconds.items() if Gauge.POOL_SIZE in bucket.gauges]
    if not sampled:
        return {}
    latest = max(sampled)
    settled = [second for second in sampled if second <= latest - lag_s]
    bucket: SecondMetrics = ledger.seconds[max(settled) if settled else min(sampled)]
    return dict(bucket.gauges)


class MetricsServer:
    """/metrics of the run, served from Locust's own gevent loop."""

    def __init__(self, engine: Engine, host: str, port: int, linger_s: float = 0.0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SurgeCollector(engine))
        self.linger_s = linger_s
        self.server = WSGIServer((host, port), make_wsgi_app(self.registry), log=None, error_log=log)
        self.server.start()
        bound_host, bound_port = self.server.address[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}/metrics"

    def linger_and_stop(self) -> None:
        """Serve the final figures a while longer (a last scrape), then stop."""
        if self.linger_s > 0:
            gevent.sleep(self.linger_s)
        self.stop()

    def stop(self) -> None:
        if self.server.started:
            self.server.stop(timeout=1)


def start_metrics_server(engine: Engine, options: Any) -> MetricsServer | None:
    """The run's /metrics as the options say (--metrics-port, --metrics-host, --metrics-linger: the run spec's
    MonitoringSpec, or any object with those attributes); None when they turn it off or the port cannot be had
    (the run goes on without it)."""
    port = getattr(options, "metrics_port", None)
    if port is None or port < 0:
        return None
    host = getattr(options, "metrics_host", None) or "127.0.0.1"
    try:
        server = MetricsServer(engine, host, port, float(getattr(options, "metrics_linger", 0.0) or 0.0))
    except OSError as error:
        log.error("cannot serve the run's metrics on %s:%s (%s); the run goes on without them", host, port, error)
        return None
    log.info("the run's Prometheus metrics: %s", server.url)
    print(f"schoolsurge: the run's Prometheus metrics at {server.url}", flush=True)
    if engine.results is not None:
        try:
            update_manifest(engine.results.run_dir, metrics_url=server.url)
        except OSError as error:
            log.error("cannot record metrics_url in the manifest: %s", error)
    return server
