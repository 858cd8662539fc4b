"""Per-second session metrics that add up across worker processes.

Every field is additive: counters are deltas, gauges are sampled once per second by each process (so the sum
over processes is the total), and time-to-login is an HdrHistogram (histograms of several processes add).
Workers ship their pending seconds to the master and forget them; the master (or a single process) keeps
the merged ledger and writes it as sessions.csv.
"""

from __future__ import annotations

import base64
import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from schoolsurge.rundir import SESSIONS_COLUMNS, TIME_TO_LOGIN_PERCENTILES, Counter, Gauge, atomic_file

# Time to log in, milliseconds: 1 ms to 1 hour at 2 significant digits (about 1% error).
HISTOGRAM_RANGE_MS = (1, 3_600_000)
HISTOGRAM_DIGITS = 2


def new_histogram() -> HdrHistogram:
    return HdrHistogram(*HISTOGRAM_RANGE_MS, HISTOGRAM_DIGITS)


@dataclass
class SecondMetrics:
    counters: dict[Counter, int] = field(default_factory=dict)
    gauges: dict[Gauge, int] = field(default_factory=dict)
    start_delay_max_ms: float = 0.0
    time_to_login: HdrHistogram | None = None

    def add(self, other: SecondMetrics) -> None:
        for name, value in other.counters.items():
            self.counters[name] = self.counters.get(name, 0) + value
        for name, value in other.gauges.items():
            self.gauges[name] = self.gauges.get(name, 0) + value
        self.start_delay_max_ms = max(self.start_delay_max_ms, other.start_delay_max_ms)
        if other.time_to_login is not None:
            if self.time_to_login is None:
                self.time_to_login = new_histogram()
            self.time_to_login.add(other.time_to_login)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"c": self.counters, "g": self.gauges, "d": self.start_delay_max_ms}
        if self.time_to_login is not None:
            wire["h"] = base64.b64encode(self.time_to_login.encode()).decode("ascii")
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> SecondMetrics:
        histogram = HdrHistogram.decode(base64.b64decode(wire["h"])) if wire.get("h") else None
        counters = {Counter(name): value for name, value in wire.get("c", {}).items()}
        gauges = {Gauge(name): value for name, value in wire.get("g", {}).items()}
        return cls(counters, gauges, float(wire.get("d", 0.0)), histogram)


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

    def count(self, second: float, name: Counter, amount: int = 1) -> None:
        counters = self._at(second).counters
        counters[name] = counters.get(name, 0) + amount

    def sample(self, second: float, name: Gauge, value: int) -> None:
        self._at(second).gauges[name] = value

    def start_delay(self, second: float, delay_ms: float) -> None:
        bucket = self._at(second)
        bucket.start_delay_max_ms = max(bucket.start_delay_max_ms, delay_ms)

    def time_to_login(self, second: float, milliseconds: float) -> None:
        bucket = self._at(second)
        if bucket.time_to_login is None:
            bucket.time_to_login = new_histogram()
        low, high = HISTOGRAM_RANGE_MS
        bucket.time_to_login.record_value(int(min(max(milliseconds, low), high)))

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
        for second in range(0, max(self.seconds) + 1):
            bucket = self.seconds.get(second, SecondMetrics())
            row: dict[str, Any] = {"second": second, "clock": clock_of_second(second) if clock_of_second else ""}
            row.update({name.value: bucket.counters.get(name, 0) for name in Counter})
            row.update({name.value: bucket.gauges.get(name, 0) for name in Gauge})
            row["start_delay_max_ms"] = round(bucket.start_delay_max_ms)
            for p in TIME_TO_LOGIN_PERCENTILES:
                histogram = bucket.time_to_login
                row[f"time_to_login_p{p}_ms"] = (
                    histogram.get_value_at_percentile(p) if histogram and histogram.get_total_count() else ""
                )
            yield row


def write_sessions_csv(ledger: Ledger, path: Path, clock_of_second: Any = None) -> None:
    with atomic_file(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=SESSIONS_COLUMNS)
        writer.writeheader()
        writer.writerows(ledger.rows(clock_of_second))


def write_histograms(ledger: Ledger, path: Path) -> None:
    """The raw time-to-login histograms, one JSON line per second, so any window can be merged later."""
    with atomic_file(path) as handle:
        for second in sorted(ledger.seconds):
            histogram = ledger.seconds[second].time_to_login
            if histogram is not None and histogram.get_total_count():
                encoded = base64.b64encode(histogram.encode()).decode("ascii")
                handle.write(json.dumps({"second": second, "time_to_login": encoded}) + "\n")


def read_histograms(path: Path) -> dict[int, HdrHistogram]:
    """Per-second time-to-login histograms written by write_histograms; ValueError names a corrupt line."""
    histograms: dict[int, HdrHistogram] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
                histograms[int(record["second"])] = HdrHistogram.decode(base64.b64decode(record["time_to_login"]))
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"line {number} is not a time-to-login record ({error})") from None
    return histograms


def merged(histograms: Iterable[HdrHistogram]) -> HdrHistogram:
    total = new_histogram()
    for histogram in histograms:
        total.add(histogram)
    return total
