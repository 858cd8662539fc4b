"""The reconnection bubble: how much of the login load was people trying again.

sessions.csv counts login attempts in the row of the person's intended arrival (cohort) but retries in the second
they were made (event time). Over time everything here is in event time: a person's first attempt is made when
their session starts, which is their arrival second unless they started late (counted apart, and rare in a run the
generator kept up with), so the attempts made in a second are the people who started in it plus the retries made
in it. Per person (attempts per person, who gave up) everything is by arrival cohort, as counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from schoolsurge.report.series.axis import TimeAxis
from schoolsurge.rundir import Counter
from schoolsurge.scenario import seconds_to_clock


@dataclass(frozen=True)
class RetrySeries:
    """Per bin of the time axis."""

    first_attempts_per_s: np.ndarray  # event time (people starting)
    login_retries_per_s: np.ndarray  # event time
    page_retries_per_s: np.ndarray  # event time
    retry_share: np.ndarray  # login retries / all login attempts made in the bin (NaN without any)
    attempts_per_person: np.ndarray  # by arrival cohort: login attempts / people who started
    gave_up_share: np.ndarray  # by arrival cohort: gave up logging in / people who started


@dataclass(frozen=True)
class RetryFigures:
    people: int  # started
    attempts: int  # login attempts (cohort counted; every attempt of every person)
    retries: int  # login retries
    page_retries: int
    gave_up: int
    bubble: tuple[float, float, float] | None  # (from, to, peak ratio) x where retries outnumbered first attempts

    @property
    def amplification(self) -> float | None:
        """Login attempts per person who started (1.0: nobody had to try again)."""
        return self.attempts / self.people if self.people else None

    def lines(self, clock: bool) -> list[tuple[str, str]]:
        def at(x: float) -> str:
            return seconds_to_clock(x) if clock else f"{x:,.0f} s"

        rows = [
            ("login attempts / people who started", f"{self.attempts:,} / {self.people:,}"),
            (
                "amplification (attempts per person)",
                f"{self.amplification:.2f}" if self.amplification is not None else "-",
            ),
            (
                "login retries (share of attempts)",
                f"{self.retries:,} ({self.retries / self.attempts:.0%})" if self.attempts else f"{self.retries:,}",
            ),
            ("page retries", f"{self.page_retries:,}"),
            (
                "people who gave up logging in",
                f"{self.gave_up:,} ({self.gave_up / self.people:.0%} of those who started)"
                if self.people
                else f"{self.gave_up:,}",
            ),
        ]
        if self.bubble is not None:
            start, end, peak = self.bubble
            rows.append(
                (
                    "reconnection bubble",
                    f"from {at(start)} to {at(end)} login retries outnumbered first attempts (up to {peak:,.1f} "
                    "retries per first attempt)",
                )
            )
        else:
            rows.append(("reconnection bubble", "none: retries never outnumbered first attempts"))
        return rows


def retry_series(sessions: pd.DataFrame, axis: TimeAxis) -> RetrySeries:
    per_second = sessions.set_index("second")
    started = axis.per_second(per_second[Counter.STARTED])
    retries = axis.per_second(per_second[Counter.LOGIN_RETRIES])
    attempts = started + retries
    people = axis.sum(per_second[Counter.STARTED])
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(attempts > 0, retries / attempts, np.nan)
        per_person = np.where(people > 0, axis.sum(per_second[Counter.LOGIN_ATTEMPTS]) / people, np.nan)
        gave_up = np.where(people > 0, axis.sum(per_second[Counter.ABANDONED]) / people, np.nan)
    return RetrySeries(started, retries, axis.per_second(per_second[Counter.PAGE_RETRIES]), share, per_person, gave_up)


def retry_figures(sessions: pd.DataFrame, axis: TimeAxis) -> RetryFigures:
    totals = sessions.sum(numeric_only=True)
    series = retry_series(sessions, axis)
    over = series.login_retries_per_s > np.maximum(series.first_attempts_per_s, 0)
    over &= series.login_retries_per_s > 0
    bubble = None
    if over.any():
        edges = axis.edges
        first, last = int(np.argmax(over)), len(over) - 1 - int(np.argmax(over[::-1]))
        with np.errstate(divide="ignore"):
            ratio = series.login_retries_per_s / np.maximum(series.first_attempts_per_s, 1 / axis.width)
        bubble = (float(edges[first]), float(edges[last + 1]), float(np.nanmax(ratio[over])))
    return RetryFigures(
        people=int(totals[Counter.STARTED]),
        attempts=int(totals[Counter.LOGIN_ATTEMPTS]),
        retries=int(totals[Counter.LOGIN_RETRIES]),
        page_retries=int(totals[Counter.PAGE_RETRIES]),
        gave_up=int(totals[Counter.ABANDONED]),
        bubble=bubble,
    )
