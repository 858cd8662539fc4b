"""The platform's Prometheus metrics the report reads, and the reasons it sheds requests: one home for both sides.

The embedded platform declares these families (platform/metrics.py, platform/routes/ops.py) and sheds with these
reasons (platform/admission.py, platform/profile_limits.py); the run scrapes them into target_metrics.jsonl and
target_metrics.prom (engine/target_metrics.py: `scrape_line`); the report reads them back (report/platform/,
report/outcome/health.py). A counter's sample is its family name + `_total` (`total`), a histogram's `_sum` and
`_count`.

    target_metrics.jsonl    one scrape a line: {"unix": 1617692400.2, "samples": [[name, {labels}, value], ...]}
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

# ---- families of the embedded platform ------------------------------------------------------------------------

HTTP_REQUESTS = "schoolsurge_http_requests"  # counter, labels route and status
IN_FLIGHT = "schoolsurge_in_flight_requests"  # gauge
QUEUE_DEPTH = "schoolsurge_admission_queue_depth"  # gauge: requests waiting for a slot
RATE_GATE_WAITING = "schoolsurge_rate_gate_waiting"  # gauge, label gate: waiting for a token of the profile's rates
SHED = "schoolsurge_requests_shed"  # counter, label reason (ShedReason)
SHED_BY_LIMIT = "schoolsurge_requests_shed_by_limit"  # counter, label limit (ShedLimit)
PLATFORM_CPU_SECONDS = "schoolsurge_platform_cpu_seconds"  # counter: user + system CPU of the platform's workers
LOGINS = "schoolsurge_logins"  # counter, label outcome (LoginOutcome)
DB_STATEMENT_SECONDS = "schoolsurge_db_statement_duration_seconds"  # histogram
CPU_CORES = "schoolsurge_platform_cpu_cores"  # gauge, at scrape time
IN_FLIGHT_LIMIT = "schoolsurge_in_flight_limit"  # gauge, at scrape time: all workers
QUEUE_LIMIT = "schoolsurge_queue_limit"  # gauge, at scrape time: all workers
LOGIN_RATE_LIMIT = "schoolsurge_login_rate_limit"  # gauge: logins/s the profile admits at the run's level (+Inf: none)
# Any other target's standard process metric (prometheus_client's process collector, most exporters).
PROCESS_CPU_SECONDS_TOTAL = "process_cpu_seconds_total"


def total(counter: str) -> str:
    """The sample name of a counter family: `schoolsurge_logins` -> `schoolsurge_logins_total`."""
    return f"{counter}_total"


class LoginOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    THROTTLED = "throttled"  # refused with 429 before the credentials were checked


# ---- why a request was refused with 503 before it reached an endpoint -------------------------------------------


class ShedLimit(StrEnum):
    PROFILE = "profile"  # the profile's limits, in national units scaled to the run: meant to bind (the rehearsal)
    MACHINE = "machine"  # this machine's own limits (slots, queue): when they bind, the run measured the laptop


class ShedReason(StrEnum):
    LOGIN_RATE = "login_rate"
    REQUEST_RATE = "request_rate"
    SESSIONS_FULL = "sessions_full"
    QUEUE_FULL = "queue_full"
    QUEUE_TIMEOUT = "queue_timeout"

    @property
    def limit(self) -> ShedLimit:
        return ShedLimit.MACHINE if self in MACHINE_REASONS else ShedLimit.PROFILE


PROFILE_REASONS = frozenset({ShedReason.LOGIN_RATE, ShedReason.REQUEST_RATE, ShedReason.SESSIONS_FULL})
MACHINE_REASONS = frozenset({ShedReason.QUEUE_FULL, ShedReason.QUEUE_TIMEOUT})
SHED_REASONS = tuple(ShedReason)  # the profile's, then the machine's, each in alphabetical order


# ---- target_metrics.jsonl --------------------------------------------------------------------------------------


def scrape_line(unix: float, samples: list[list[Any]]) -> str:
    """One line of target_metrics.jsonl: a scrape's time and its samples, [name, labels, value] each."""
    return json.dumps({"unix": round(unix, 3), "samples": samples}, separators=(",", ":")) + "\n"


def parse_scrape_line(line: str) -> tuple[float, list[list[Any]]]:
    """(unix, samples) of a line; ValueError, KeyError or TypeError when it is not a scrape (a write cut short)."""
    record = json.loads(line)
    return float(record["unix"]), record["samples"]
