"""One definition per figure: how time to log in, the error ratio and held/broke are computed and said, wherever
they are shown (report, sweep, comparison, index, JUnit, console). Pure: numbers in, numbers and words out.

- **Time to log in** is judged over everyone who tried: the people who logged in (their times, an HdrHistogram)
  and those who never did (gave up, or still logging in when the run ended), who count as never logged in.
  A percentile p needs at least `min_people(p)` people (so that its tail holds one person: 2 for p50, 20 for
  p95, 100 for p99); below that it is "not enough people" and judges nothing. When those who never logged in
  are more than the percentile's tail, it is "k of n gave up", never "inf".
- **Error ratio**: failed people's requests / people's requests.
- **Held / broke** are said on the load **offered** (people arriving to log in per second), never on the load
  achieved: a platform that sheds achieves less when offered more. The capacity range is [the highest offered
  load that held below the lowest that broke, the lowest that broke] (`offered_range`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

LOGIN_MEASURE = "time to log in from the intended arrival, over everyone who tried (gave up or unfinished: never)"


def min_people(percentile: float) -> int:
    """The fewest people a login percentile is judged on: its tail (100 - p %) must hold at least one person."""
    return math.ceil(100 / (100 - percentile) - 1e-9)


@dataclass(frozen=True)
class LoginPercentile:
    """A percentile of time to log in over everyone who tried."""

    percentile: int
    tried: int  # people who tried to log in
    never: int  # of them, people who never logged in (gave up or unfinished)
    value_ms: float | None  # ms; inf when those who never logged in fill the tail; None when not judged

    @property
    def enough_people(self) -> bool:
        return self.tried >= min_people(self.percentile)

    @property
    def judged(self) -> bool:
        return self.enough_people and self.value_ms is not None

    def meets(self, limit_ms: float) -> bool | None:
        """Whether it meets `limit_ms`; None when not judged (nobody tried, or too few people for it)."""
        if not self.judged:
            return None
        assert self.value_ms is not None
        return self.value_ms <= limit_ms

    def text(self) -> str:
        """`883 ms`, `1 of 46 gave up`, or `not enough people (46 < 100)`: never "inf"."""
        if not self.tried:
            return "nobody tried to log in"
        if not self.enough_people:
            return f"not enough people ({self.tried} < {min_people(self.percentile)})"
        if self.value_ms is None or math.isinf(self.value_ms):
            return f"{self.never} of {self.tried} never logged in (gave up or unfinished)"
        return f"{self.value_ms:,.0f} ms"


def login_percentile_value(succeeded: HdrHistogram | None, never: int, percentile: float) -> float | None:
    """The percentile of time to log in over everyone who tried: the people who logged in (`succeeded`, their
    times) and the `never` people who gave up or were still logging in at the end. inf when those who never
    logged in are more than the percentile's tail; None when nobody tried."""
    logged_in = succeeded.get_total_count() if succeeded is not None else 0
    tried = logged_in + never
    if not tried:
        return None
    rank = percentile / 100 * tried
    if succeeded is None or rank > logged_in or not logged_in:
        return math.inf
    return float(succeeded.get_value_at_percentile(100 * rank / logged_in))


def login_percentile(succeeded: HdrHistogram | None, never: int, percentile: int) -> LoginPercentile:
    """login_percentile_value with its people, to be judged and said one way."""
    logged_in = succeeded.get_total_count() if succeeded is not None else 0
    return LoginPercentile(
        percentile, int(logged_in + never), int(never), login_percentile_value(succeeded, never, percentile)
    )


def error_ratio(failures: float, requests: float) -> float | None:
    """Failed people's requests / people's requests; None when there were none."""
    return failures / requests if requests else None


@dataclass(frozen=True)
class OfferedRange:
    """Where the objectives stop being met, on offered load (people arriving per second, run terms)."""

    held: float | None  # the highest offered load that held, below the lowest that broke
    broke: float | None  # the lowest offered load that broke

    @property
    def within(self) -> float | None:
        """(broke - held) / held: how wide the range is; None when one end is missing."""
        if self.held is None or self.broke is None or self.held <= 0:
            return None
        return (self.broke - self.held) / self.held


def offered_range(judged: Iterable[tuple[float, bool]]) -> OfferedRange:
    """The capacity range from (offered load, held) pairs: the lowest offered load that broke, and the highest
    that held below it (a load that held above one that broke says nothing of the limit: luck, or a quieter
    moment)."""
    pairs = [(float(offered), bool(held)) for offered, held in judged]
    broke = min((offered for offered, held in pairs if not held), default=None)
    held = max((offered for offered, ok in pairs if ok and (broke is None or offered < broke)), default=None)
    return OfferedRange(held, broke)
