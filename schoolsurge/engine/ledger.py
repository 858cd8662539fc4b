"""Per-second session metrics that add up across worker processes, and the writing of sessions.csv, groups.csv and
time_to_login.jsonl (their formats: schoolsurge/rundir/sessions.py, rundir/groups.py, rundir/histograms.py).

Every field is additive: counters are deltas, gauges are sampled once per second by each process (so the sum
over processes is the total), and time-to-login and request latency are HdrHistograms (histograms of several
processes add).
Workers ship their pending seconds to the master and forget them; the master (or a single process) keeps
the merged ledger and writes it as sessions.csv.

Recording a request is on every request's path, so it is kept light: its latency is counted in a small
per-second tally (milliseconds -> count) that goes into the HdrHistogram, one record per distinct value, when
the histogram is next read. What the ledger writes every few seconds (sessions.csv's rows, the histograms'
encodings) is kept per second and recomputed only for the seconds that changed since, so a write costs what
changed, not the whole run so far.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from schoolsurge.files import atomic_file
from schoolsurge.rundir.groups import GROUP_COUNTERS, GROUPS_COLUMNS
from schoolsurge.rundir.histograms import (
    HISTOGRAM_FIELDS,
    HISTOGRAM_RANGE_MS,
    decode_histogram,
    encode_histogram,
    histogram_line,
    merged,
    new_histogram,
)
from schoolsurge.rundir.sessions import SESSIONS_COLUMNS, TIME_TO_LOGIN_PERCENTILES, Counter, Gauge


@dataclass
class SecondMetrics:
    counters: dict[Counter, int] = field(default_factory=dict)
    gauges: dict[Gauge, int] = field(default_factory=dict)
    start_delay_max_ms: float = 0.0
    time_to_login: HdrHistogram | None = None
    # people's HTTP requests completed in this second: `request_latency`, with the tally not yet recorded
    _latency: HdrHistogram | None = None
    _tally: dict[int, int] = field(default_factory=dict, repr=False, compare=False)  # whole ms -> requests
    _cache: dict[str, tuple[Any, Any]] = field(default_factory=dict, repr=False, compare=False)
    # group -> its people's GROUP_COUNTERS in this second (groups.csv)
    groups: dict[str, dict[Counter, int]] = field(default_factory=dict)

    @property
    def request_latency(self) -> HdrHistogram | None:
        """People's HTTP requests completed in this second (their tally recorded first)."""
        tally = self._tally
        if tally:
            histogram = self._latency
            if histogram is None:
                histogram = self._latency = new_histogram()
            for milliseconds, count in tally.items():
                histogram.record_value(milliseconds, count)
            tally.clear()
        return self._latency

    @request_latency.setter
    def request_latency(self, histogram: HdrHistogram | None) -> None:
        self._tally.clear()
        self._latency = histogram

    def add(self, other: SecondMetrics) -> None:
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        for name, value in other.gauges.items():
            self.gauges[name] = self.gauges.get(name, 0) + value
        self.start_delay_max_ms = max(self.start_delay_max_ms, other.start_delay_max_ms)
        for group, counters in other.groups.items():
            mine = self.groups.setdefault(group, {})
            for name, value in counters.items():
                mine[name] = mine.get(name, 0) + value
        self.time_to_login = _added(self.time_to_login, other.time_to_login)
        self.request_latency = _added(self.request_latency, other.request_latency)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"c": self.counters, "g": self.gauges, "d": self.start_delay_max_ms}
        if self.groups:
            wire["p"] = self.groups
        if self.time_to_login is not None:
            wire["h"] = encode_histogram(self.time_to_login)
        latency = self.request_latency
        if latency is not None:
            wire["r"] = encode_histogram(latency)
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> SecondMetrics:
        counters = {Counter(name): value for name, value in wire.get("c", {}).items()}
        gauges = {Gauge(name): value for name, value in wire.get("g", {}).items()}
        metrics = cls(counters, gauges, float(wire.get("d", 0.0)), _decoded(wire.get("h")), _decoded(wire.get("r")))
        metrics.groups = {
            group: {Counter(name): value for name, value in counters.items()}
            for group, counters in wire.get("p", {}).items()
        }
        return metrics

    def cached(self, name: str, key: Any, compute: Any) -> Any:
        """compute() once per `key` (what the value depends on): a second's figures change no more once its
        people are done and its requests answered."""
        hit = self._cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = compute()
        self._cache[name] = (key, value)
        return value

    def fingerprint(self) -> tuple[Any, ...]:
        """What this second's row depends on: it changes whenever anything is recorded in it (counts and
        histograms only grow; gauges are compared as they are)."""
        latency = self.request_latency
        return (
            tuple(self.counters.items()),
            tuple(self.gauges.items()),
            self.start_delay_max_ms,
            self.time_to_login.get_total_count() if self.time_to_login is not None else -1,
            latency.get_total_count() if latency is not None else -1,
        )


def _added(total: HdrHistogram | None, more: HdrHistogram | None) -> HdrHistogram | None:
    if more is None:
        return total
    if total is None:
        total = new_histogram()
    total.add(more)
    return total


def _decoded(text: str | None) -> HdrHistogram | None:
    return decode_histogram(text) if text else None


def _record(histogram: HdrHistogram, milliseconds: float) -> None:
    low, high = HISTOGRAM_RANGE_MS
    histogram.record_value(int(min(max(milliseconds, low), high)))


_LOWEST_MS, _HIGHEST_MS = HISTOGRAM_RANGE_MS
_REQUESTS = Counter.REQUESTS


class Ledger:
    """Seconds of a run, keyed by whole run second (0 = test start)."""

    def __init__(self) -> None:
        self.seconds: dict[int, SecondMetrics] = {}

    def _at(self, second: float) -> SecondMetrics:
        key = max(0, int(second))
        bucket = self.seconds.get(key)
        if bucket is None:
            bucket = self.seconds[key] = SecondMetrics()
        return bucket

    def count(self, second: float, name: Counter, amount: int = 1, group: str | None = None) -> None:
        """Count `name` in `second`; a person's GROUP_COUNTERS given with their `group` count in it too."""
        bucket = self._at(second)
        counters = bucket.counters
        counters[name] = counters.get(name, 0) + amount
        if group is not None and name in GROUP_COUNTERS:
            by_group = bucket.groups.setdefault(group, {})
            by_group[name] = by_group.get(name, 0) + amount

    def sample(self, second: float, name: Gauge, value: int) -> None:
        self._at(second).gauges[name] = value

    def start_delay(self, second: float, delay_ms: float) -> None:
        bucket = self._at(second)
        bucket.start_delay_max_ms = max(bucket.start_delay_max_ms, delay_ms)

    def time_to_login(self, second: float, milliseconds: float) -> None:
        bucket = self._at(second)
        if bucket.time_to_login is None:
            bucket.time_to_login = new_histogram()
        _record(bucket.time_to_login, milliseconds)

    def request(self, second: float, milliseconds: float, failure: Counter | None) -> None:
        """A person's HTTP request completed at run second `second`; `failure` is its failure kind, if failed.
        On every request's path: its latency goes to the second's tally (whole ms, clamped to the histogram's
        range, as _record does), recorded in the histogram when that is next read."""
        key = max(0, int(second))
        bucket = self.seconds.get(key)
        if bucket is None:
            bucket = self.seconds[key] = SecondMetrics()
        counters = bucket.counters
        counters[_REQUESTS] = counters.get(_REQUESTS, 0) + 1
        if failure is not None:
            counters[failure] = counters.get(failure, 0) + 1
        value = int(min(max(milliseconds, _LOWEST_MS), _HIGHEST_MS))
        tally = bucket._tally
        tally[value] = tally.get(value, 0) + 1

    def merge(self, other: Ledger) -> None:
        for second, bucket in other.seconds.items():
            self._at(second).add(bucket)

    def take(self) -> Ledger:
        """Hand over everything recorded so far and start empty (what a worker sends to the master)."""
        taken = Ledger()
        taken.seconds, self.seconds = self.seconds, {}
        return taken

    def to_wire(self) -> dict[str, Any]:
        return {str(second): bucket.to_wire() for second, bucket in self.seconds.items()}

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Ledger:
        ledger = cls()
        ledger.seconds = {int(second): SecondMetrics.from_wire(b) for second, b in wire.items()}
        return ledger

    def total(self, name: Counter) -> int:
        return sum(bucket.counters.get(name, 0) for bucket in self.seconds.values())

    def overall_time_to_login(self) -> HdrHistogram:
        return merged(b.time_to_login for b in self.seconds.values() if b.time_to_login is not None)

    def rows(self, clock_of_second: Any = None) -> Iterable[dict[str, Any]]:
        if not self.seconds:
            return
        empty = SecondMetrics()
        for second in range(0, max(self.seconds) + 1):
            bucket = self.seconds.get(second, empty)
            row: dict[str, Any] = {"second": second, "clock": clock_of_second(second) if clock_of_second else ""}
            row.update(bucket.cached("row", bucket.fingerprint(), lambda bucket=bucket: _row_figures(bucket)))
            yield row


def _row_figures(bucket: SecondMetrics) -> dict[str, Any]:
    """A sessions.csv row's figures for a second (all but its second and clock)."""
    row: dict[str, Any] = {name.value: bucket.counters.get(name, 0) for name in Counter}
    row.update({name.value: bucket.gauges.get(name, 0) for name in Gauge})
    row["start_delay_max_ms"] = round(bucket.start_delay_max_ms)
    for name in HISTOGRAM_FIELDS:
        histogram = getattr(bucket, name)
        for p in TIME_TO_LOGIN_PERCENTILES:
            row[f"{name}_p{p}_ms"] = (
                histogram.get_value_at_percentile(p) if histogram and histogram.get_total_count() else ""
            )
    return row


def write_sessions_csv(ledger: Ledger, path: Path, clock_of_second: Any = None) -> None:
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=SESSIONS_COLUMNS)
        writer.writeheader()
        writer.writerows(ledger.rows(clock_of_second))


def write_groups_csv(ledger: Ledger, path: Path) -> None:
    """groups.csv: each cohort second's GROUP_COUNTERS per group that had people in it."""
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=GROUPS_COLUMNS)
        writer.writeheader()
        for second in sorted(ledger.seconds):
            for group, counters in sorted(ledger.seconds[second].groups.items()):
                writer.writerow(
                    {"second": second, "group": group, **{n.value: counters.get(n, 0) for n in GROUP_COUNTERS}}
                )


def write_histograms(ledger: Ledger, path: Path) -> None:
    """The raw histograms (time to log in by cohort second, request latency by event second), one JSON line per
    second, so any window can be merged later."""
    with atomic_file(path) as handle:
        for second in sorted(ledger.seconds):
            bucket = ledger.seconds[second]
            encoded: dict[str, str] = {}
            for name in HISTOGRAM_FIELDS:
                histogram = getattr(bucket, name)
                if histogram is not None and histogram.get_total_count():
                    count = histogram.get_total_count()  # it only grows: the same count, the same histogram
                    encoded[name] = bucket.cached(name, count, lambda histogram=histogram: encode_histogram(histogram))
            if encoded:
                handle.write(histogram_line(second, encoded))
