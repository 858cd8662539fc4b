"""sessions.csv: the engine's per-second metrics of a run, one row per run second (0 = the test's start).

Counters (Counter) are counted in the row of the person's intended arrival (their cohort), except the
EVENT_COUNTERS, counted in the second they happen; gauges (Gauge) are sampled once a second by each process and
summed; the percentile columns are read from the merged histograms of that second (time_to_login.jsonl,
rundir/histograms.py). The engine's ledger writes it (engine/ledger.py); the report reads it.
"""

from __future__ import annotations

from enum import StrEnum


class Counter(StrEnum):
    """Per-second counters of sessions.csv. Most are counted in the row of the person's intended arrival (their
    cohort), so a row tells what became of the people due that second; those in EVENT_COUNTERS are counted in
    the second they happen, so they draw the load over time (the retry bubble)."""

    SCHEDULED = "scheduled"
    STARTED = "started"
    LATE = "late"
    DROPPED = "dropped"
    LOST = "lost"  # never started: the Locust worker whose part it was died or left (manifest lost_workers)
    LOGINS_SUCCEEDED = "logins_succeeded"
    LOGINS_FAILED = "logins_failed"
    ABANDONED = "abandoned"  # gave up logging in
    LOGIN_ATTEMPTS = "login_attempts"
    GAVE_UP_PAGE = "gave_up_page"  # logged in, then left when a page kept failing
    # Still logging in when the test ended (waiting for an answer, or to try again): never got in, not served.
    # A request still unanswered then counts as failed (failures_timeout), in the second the test ended.
    UNFINISHED = "unfinished"
    UNFINISHED_PAGE = "unfinished_page"  # logged in, then still waiting on a page when the test ended
    VIRTUAL_CLASSES_OPENED = "virtual_classes_opened"  # teachers who opened one
    VIRTUAL_CLASS_JOINS = "virtual_class_joins"  # pupils let into one
    # Teachers who came to hold a virtual class and pupils who came to join one, counted as they start, whether
    # they then get in or not: the population of 2021's figure (1,352,000 came, 500,000 reached one). Of them,
    # those who reached one: VIRTUAL_CLASS_REACHED.
    CAME_FOR_VIRTUAL_CLASS = "came_for_virtual_class"
    STEPS_NOT_SUPPORTED = "steps_not_supported"  # steps skipped: the client does not offer them (client_steps.json)
    # A step that raised in the client (any exception but StepFailed and StepNotSupported: a bug of the client,
    # such as a page it could not read), a failed step; the person's session ends there. Which step, the error and
    # the first example: client_steps.json.
    CLIENT_ERRORS = "client_errors"
    CLIENT_ERRORS_LOGIN = "client_errors_login"  # of those, while logging in: never got in, not served
    LOGIN_RETRIES = "login_retries"  # event time: a login attempt after a failed one
    PAGE_RETRIES = "page_retries"  # event time: a page asked again after it failed
    BOT_LOGIN_ATTEMPTS = "bot_login_attempts"  # event time
    BOT_ATTEMPTS_NOT_SENT = "bot_attempts_not_sent"  # event time
    # Event time, people's HTTP requests only (not the login flow entry, not bots): the load as it happened.
    REQUESTS = "requests"
    FAILURES_503 = "failures_503"  # refused: unavailable, shed
    FAILURES_429 = "failures_429"  # refused: throttled
    FAILURES_TIMEOUT = "failures_timeout"  # no answer in time (client timeout, 504, or none by the test's end)
    FAILURES_5XX = "failures_5xx"  # any other 5xx
    FAILURES_CONNECTION = "failures_connection"  # refused or reset connection, no HTTP answer
    FAILURES_OTHER = "failures_other"  # 4xx other than 429, wrong content
    GENERATOR_SATURATED_S = "generator_saturated_s"  # event time: a Locust process above 90% CPU that second


FAILURE_COUNTERS = (
    Counter.FAILURES_503,
    Counter.FAILURES_429,
    Counter.FAILURES_TIMEOUT,
    Counter.FAILURES_5XX,
    Counter.FAILURES_CONNECTION,
    Counter.FAILURES_OTHER,
)
# People who reached a virtual class: teachers who opened theirs, pupils let into one (each counted once, in their
# cohort row); all of them came for one (CAME_FOR_VIRTUAL_CLASS).
VIRTUAL_CLASS_REACHED = (Counter.VIRTUAL_CLASSES_OPENED, Counter.VIRTUAL_CLASS_JOINS)
EVENT_COUNTERS = frozenset(
    {
        Counter.LOGIN_RETRIES,
        Counter.PAGE_RETRIES,
        Counter.BOT_LOGIN_ATTEMPTS,
        Counter.BOT_ATTEMPTS_NOT_SENT,
        Counter.REQUESTS,
        *FAILURE_COUNTERS,
        Counter.GENERATOR_SATURATED_S,
    }
)


class Gauge(StrEnum):
    """Per-second gauges of sessions.csv, sampled once a second by each process and summed."""

    ACTIVE_SESSIONS = "active_sessions"
    IN_VIRTUAL_CLASS = "in_virtual_class"
    WAITING_FOR_AGENT = "waiting_for_agent"
    POOL_SIZE = "pool_size"
    GENERATOR_CPU_PERCENT = "generator_cpu_percent"  # summed over processes: 100 = one core busy


TIME_TO_LOGIN_PERCENTILES = (50, 95, 99)
SESSIONS_COLUMNS = (
    "second",
    "clock",
    *Counter,
    *Gauge,
    "start_delay_max_ms",
    *(f"time_to_login_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
    # people's HTTP requests completed in that second (event time), from the merged histograms
    *(f"request_latency_p{p}_ms" for p in TIME_TO_LOGIN_PERCENTILES),
)
