"""National expectations over the morning, second by second: logins, open sessions, requests.

Population x participation people log in within the window along the group's login-time curve. Sessions open
at t are the convolution of the arrivals with the session-length survival function (Little's law in its
time-varying form: on a flat stretch, open sessions = arrival rate x mean session length). Requests are what
the personas ask: each login the SSO flow and the page it lands on; each open session a page per think time,
or, inside a virtual class (virtual_classes.py), a keep-alive every HEARTBEAT_SECONDS; each session that ends
within the window a logout; each virtual class its creation, opening and end, each pupil its join and leave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schoolsurge.models.curves import window_cdf
from schoolsurge.models.incidents import bot_attempts_per_second
from schoolsurge.models.virtual_classes import (
    HEARTBEAT_SECONDS,
    VirtualClassCurves,
    convolve_survival,
    virtual_class_curves,
)
from schoolsurge.scenario import Group, Scenario, Window

# The reference client's login: SSO form, credentials, ticket callback, then the dashboard it lands on.
REQUESTS_PER_LOGIN = 4
REQUESTS_PER_VIRTUAL_CLASS = 3  # a teacher's create, open and leave
REQUESTS_PER_JOIN = 2  # a pupil's join and leave
# A bot's failed attempt: the SSO form and a refused credentials post.
REQUESTS_PER_BOT_ATTEMPT = 2


def logins_expected(group: Group) -> float:
    """People of the group who log in within the window (national)."""
    return group.population * group.participation


def arrivals_per_second(group: Group, window: Window) -> np.ndarray:
    """Expected national logins of the group in each second of the window (value i: [start+i, start+i+1))."""
    return logins_expected(group) * np.diff(window_cdf(group.login_time, window))


def concurrent_sessions(group: Group, arrivals: np.ndarray) -> np.ndarray:
    """Expected open sessions at the end of each second, from the arrivals per second.

    A login in second j is taken at its middle, so it is still open at the end of second i with the
    probability that its session lasts more than i - j + 0.5 seconds."""
    return convolve_survival(arrivals, group)


def requests_per_second(
    group: Group, arrivals: np.ndarray, concurrent: np.ndarray, in_class: np.ndarray | None = None
) -> np.ndarray:
    """Expected requests per second of a group that holds no virtual class: the logins' SSO flows and landing
    pages, a page per think time per open session (a keep-alive per HEARTBEAT_SECONDS for those in a virtual
    class), and a logout per session that ends."""
    in_class = np.zeros_like(concurrent) if in_class is None else in_class
    ended = arrivals - np.diff(concurrent, prepend=0.0)  # sessions that ended in second i
    pages = (concurrent - in_class) / group.think.mean_seconds + in_class / HEARTBEAT_SECONDS
    return arrivals * REQUESTS_PER_LOGIN + pages + np.clip(ended, 0.0, None)


@dataclass(frozen=True)
class NationalCurves:
    """A scenario's national expectations, one value per second of its window."""

    start_s: int
    arrivals: dict[str, np.ndarray]  # group -> logins in second i
    concurrent: dict[str, np.ndarray]  # group -> open sessions at the end of second i
    requests: dict[str, np.ndarray]  # group -> requests in second i
    bot_attempts: np.ndarray  # bot-flood login attempts in second i
    bot_requests: np.ndarray
    virtual_classes: VirtualClassCurves

    @property
    def seconds(self) -> int:
        return len(self.bot_attempts)

    @property
    def clock_s(self) -> np.ndarray:
        """Clock time (seconds since midnight) at which each second starts."""
        return self.start_s + np.arange(self.seconds)

    def total_arrivals(self) -> np.ndarray:
        return np.sum(list(self.arrivals.values()), axis=0)

    def total_concurrent(self) -> np.ndarray:
        return np.sum(list(self.concurrent.values()), axis=0)

    def total_requests(self) -> np.ndarray:
        """People's requests and the bots' together."""
        return np.sum(list(self.requests.values()), axis=0) + self.bot_requests

    def per_minute(self, per_second: np.ndarray) -> np.ndarray:
        """Mean of a per-second curve over each clock minute of the window."""
        return per_second.reshape(-1, 60).mean(axis=1)


def national_curves(scenario: Scenario) -> NationalCurves:
    window = scenario.window
    arrivals = {group.name: arrivals_per_second(group, window) for group in scenario.groups}
    classes = virtual_class_curves(scenario, arrivals)
    concurrent, requests = {}, {}
    for group in scenario.groups:
        concurrent[group.name] = concurrent_sessions(group, arrivals[group.name])
        requests[group.name] = requests_per_second(
            group, arrivals[group.name], concurrent[group.name], classes.in_class.get(group.name)
        )
        if group.persona == "teacher" and group.virtual_class:
            requests[group.name] += arrivals[group.name] * group.virtual_class * REQUESTS_PER_VIRTUAL_CLASS
        if group.name in classes.admitted:
            requests[group.name] += classes.admitted[group.name] * REQUESTS_PER_JOIN
    bots = bot_attempts_per_second(scenario)
    return NationalCurves(
        window.start_s, arrivals, concurrent, requests, bots, bots * REQUESTS_PER_BOT_ATTEMPT, classes
    )


def virtual_classes(scenario: Scenario) -> tuple[float, float]:
    """(virtual classes opened, pupils joining one) expected nationally: teachers open, students who wanted to
    join and whose teacher came within their patience join."""
    classes = national_curves(scenario).virtual_classes
    return classes.total_opened, classes.total_joined
