"""The per-second ledger adds up across processes exactly as if one process had recorded everything."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from schoolsurge.engine.ledger import Ledger, write_groups_csv, write_histograms, write_sessions_csv
from schoolsurge.rundir import FAILURE_COUNTERS, GROUPS_COLUMNS, SESSIONS_COLUMNS, Counter, read_histograms


def _record(ledger: Ledger, rng: random.Random, events: int) -> None:
    for _ in range(events):
        second = rng.uniform(0, 30)
        ledger.count(second, "started")
        ledger.count(second, "login_attempts", rng.randint(1, 3))
        ledger.time_to_login(second, rng.lognormvariate(5, 1))
        ledger.start_delay(second, rng.uniform(0, 500))
        for _ in range(rng.randint(1, 4)):
            failure = rng.choice([None, None, None, *FAILURE_COUNTERS])
            ledger.request(rng.uniform(0, 30), rng.lognormvariate(3, 1), failure)


def test_merging_worker_ledgers_equals_one_ledger() -> None:
    whole, parts = Ledger(), [Ledger(), Ledger(), Ledger()]
    for index, part in enumerate(parts):
        _record(part, random.Random(index), 200)
        _record(whole, random.Random(index), 200)
    merged = Ledger()
    for part in parts:
        # Through the wire format, as a worker's report reaches the master.
        merged.merge(Ledger.from_wire(part.take().to_wire()))
        assert not part.seconds, "a worker forgets what it has sent"
    assert merged.total("started") == whole.total("started") == 600
    assert merged.total("login_attempts") == whole.total("login_attempts")
    assert merged.total(Counter.REQUESTS) == whole.total(Counter.REQUESTS) > 600
    for kind in FAILURE_COUNTERS:
        assert merged.total(kind) == whole.total(kind) > 0
    assert list(merged.rows()) == list(whole.rows())
    assert merged.overall_time_to_login().get_value_at_percentile(95) == (
        whole.overall_time_to_login().get_value_at_percentile(95)
    )


def test_gauges_of_processes_sum_per_second() -> None:
    a, b, merged = Ledger(), Ledger(), Ledger()
    a.sample(3.2, "in_virtual_class", 7)
    b.sample(3.9, "in_virtual_class", 5)
    merged.merge(a)
    merged.merge(b)
    rows = list(merged.rows())
    assert rows[3]["in_virtual_class"] == 12
    assert rows[0]["in_virtual_class"] == 0, "seconds without data are written as zeros, not skipped"


def test_sessions_csv_has_documented_columns(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.count(0, "scheduled", 4)
    ledger.count(0, "started", 3)
    ledger.count(0, "dropped")
    ledger.time_to_login(0, 120)
    ledger.time_to_login(0, 4000)
    ledger.count(2, "scheduled")
    path = tmp_path / "sessions.csv"
    write_sessions_csv(ledger, path, lambda second: f"08:00:{second:02d}")
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0].keys()) == SESSIONS_COLUMNS
    assert [r["second"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["scheduled"] == "4" and rows[0]["started"] == "3" and rows[0]["dropped"] == "1"
    assert rows[0]["clock"] == "08:00:00"
    assert 3960 <= int(rows[0]["time_to_login_p99_ms"]) <= 4040
    assert rows[1]["time_to_login_p50_ms"] == "", "no login that second: no percentile, not zero"


def test_histogram_file_keeps_both_kinds_per_second(tmp_path: Path) -> None:
    ledger = Ledger()
    _record(ledger, random.Random(7), 100)
    path = tmp_path / "histograms.jsonl"
    write_histograms(ledger, path)
    logins, latency = read_histograms(path), read_histograms(path, "request_latency")
    assert sum(h.get_total_count() for h in logins.values()) == 100
    assert sum(h.get_total_count() for h in latency.values()) == ledger.total(Counter.REQUESTS)
    for second, histogram in latency.items():
        assert histogram.get_max_value() == ledger.seconds[second].request_latency.get_max_value()


def test_group_counts_cross_the_wire_and_add_up_per_group(tmp_path: Path) -> None:
    a, b, merged = Ledger(), Ledger(), Ledger()
    a.count(2.5, Counter.STARTED, group="teachers")
    b.count(2.1, Counter.STARTED, 2, group="teachers")
    b.count(2.9, Counter.LOGINS_SUCCEEDED, group="secondary-pupils")
    b.count(2.9, Counter.LOGIN_ATTEMPTS, group="secondary-pupils")  # not one of GROUP_COUNTERS: total only
    for part in (a, b):
        merged.merge(Ledger.from_wire(part.take().to_wire()))
    assert merged.seconds[2].groups == {
        "teachers": {Counter.STARTED: 3},
        "secondary-pupils": {Counter.LOGINS_SUCCEEDED: 1},
    }
    assert merged.total(Counter.STARTED) == 3 and merged.total(Counter.LOGIN_ATTEMPTS) == 1
    write_groups_csv(merged, tmp_path / "groups.csv")
    with (tmp_path / "groups.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == GROUPS_COLUMNS
    assert [(row["second"], row["group"], row["started"], row["logins_succeeded"]) for row in rows] == [
        ("2", "secondary-pupils", "0", "1"),
        ("2", "teachers", "3", "0"),
    ]
