"""National expectations over the morning, second by second: logins, open sessions, requests.

Population x participation people log in within the window along the group's login-time curve. Sessions open
at t are the convolution of the arrivals with the session-length survival function (Little's law in its
time-varying form: on a flat stretch, open sessions = arrival rate x mean session length). Each open session
asks for a page once per think time; each login costs the SSO flow's requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schoolsurge.models.curves import session_survival, window_cdf
from schoolsurge.models.incidents import bot_attempts_per_second
from schoolsurge.scenario import Group, Scenario, Window

# The reference client's login: SSO form, credentials, ticket callback, then the dashboard it lands on.
REQUESTS_PER_LOGIN = 4
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
    kernel = session_survival(group.session, np.arange(len(arrivals)) + 0.5)
    size = 2 * len(arrivals)
    # FFT convolution: a whole morning second by second is 10^4-10^5 points.
    full = np.fft.irfft(np.fft.rfft(arrivals, size) * np.fft.rfft(kernel, size), size)
    return np.clip(full[: len(arrivals)], 0.0, None)


def requests_per_second(group: Group, arrivals: np.ndarray, concurrent: np.ndarray) -> np.ndarray:
    """Expected requests per second: the logins' SSO flows plus one page per think time per open session."""
    return arrivals * REQUESTS_PER_LOGIN + concurrent / group.think.mean_seconds


@dataclass(frozen=True)
class NationalCurves:
    """A scenario's national expectations, one value per second of its window."""

    start_s: int
    arrivals: dict[str, np.ndarray]  # group -> logins in second i
    concurrent: dict[str, np.ndarray]  # group -> open sessions at the end of second i
    requests: dict[str, np.ndarray]  # group -> requests in second i
    bot_attempts: np.ndarray  # bot-flood login attempts in second i
    bot_requests: np.ndarray

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
    arrivals, concurrent, requests = {}, {}, {}
    for group in scenario.groups:
        arrivals[group.name] = arrivals_per_second(group, window)
        concurrent[group.name] = concurrent_sessions(group, arrivals[group.name])
        requests[group.name] = requests_per_second(group, arrivals[group.name], concurrent[group.name])
    bots = bot_attempts_per_second(scenario)
    return NationalCurves(window.start_s, arrivals, concurrent, requests, bots, bots * REQUESTS_PER_BOT_ATTEMPT)


def virtual_classes(scenario: Scenario) -> tuple[float, float]:
    """(virtual classes opened, pupils joining one) expected nationally: teachers open, students join."""
    opened = joined = 0.0
    for group in scenario.groups:
        count = logins_expected(group) * group.virtual_class
        if group.persona == "teacher":
            opened += count
        elif group.persona == "student":
            joined += count
    return opened, joined
