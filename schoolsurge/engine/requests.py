"""People's HTTP requests as the ledger counts them: by the second they completed, failures by kind.

The kinds tell a platform that refuses (503: shed, unavailable; 429: throttled) from one that cannot answer
(timeouts, other 5xx, connections refused or reset) and from answers that were wrong (other 4xx, content).
"""

from __future__ import annotations

from typing import Any

import gevent

from schoolsurge.rundir import BOT_STEP_PREFIX, CLIENT_CRASH_TYPE, LOGIN_FLOW_TYPE, Counter

TIMEOUT_STATUSES = frozenset({408, 504})
NOT_HTTP = frozenset({LOGIN_FLOW_TYPE, CLIENT_CRASH_TYPE})  # entries of people's steps that are no HTTP request


def is_people_request(request_type: str, name: str) -> bool:
    """HTTP requests of people: not the login flow's summary entry nor a step that crashed in the client, not the
    bots' requests."""
    return request_type not in NOT_HTTP and not name.startswith(BOT_STEP_PREFIX)


def failure_kind(response: Any, exception: BaseException | None) -> Counter | None:
    """The failure counter of a request, None when it succeeded."""
    if exception is None:
        return None
    status = getattr(response, "status_code", None) or 0
    if status == 503:
        return Counter.FAILURES_503
    if status == 429:
        return Counter.FAILURES_429
    if status in TIMEOUT_STATUSES:
        return Counter.FAILURES_TIMEOUT
    if 500 <= status < 600:
        return Counter.FAILURES_5XX
    if status == 0:  # no HTTP answer: the client timed out or the connection failed
        timed_out = isinstance(exception, TimeoutError | gevent.Timeout) or "timed out" in str(exception).lower()
        return Counter.FAILURES_TIMEOUT if timed_out else Counter.FAILURES_CONNECTION
    return Counter.FAILURES_OTHER
