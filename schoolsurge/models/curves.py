"""Distributions of the scenario as vectorised functions: when people log in within the window, how long they
stay. A login-time curve's own CDF is the scenario's (scenario/curves.py: its checks need it)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from schoolsurge.scenario.curves import login_cdf, standard_normal_cdf

if TYPE_CHECKING:
    from schoolsurge.scenario.schema import LoginTime, SessionLength, Window


def window_cdf(curve: LoginTime, window: Window) -> np.ndarray:
    """The curve truncated to the window, on its second boundaries: value i is the share of the window's
    logins done by start + i seconds (0 at the start, 1 at the end).

    Everyone who logs in within the window is placed by the curve's shape: mass outside it is not lost but
    spread proportionally inside (participation counts the people who log in within the window)."""
    cdf = login_cdf(curve, np.arange(window.start_s, window.end_s + 1, dtype=float))
    mass = cdf[-1] - cdf[0]
    if mass <= 0:
        raise ValueError("the login-time curve has no mass inside the window")
    return (cdf - cdf[0]) / mass


def session_survival(session: SessionLength, seconds: np.ndarray) -> np.ndarray:
    """Probability that a session is still open `seconds` after its login."""
    seconds = np.asarray(seconds, dtype=float)
    mean_s = session.mean_minutes * 60
    if session.distribution == "exponential":
        return np.exp(-seconds / mean_s)
    sigma = session.sigma
    mu = lognormal_mu(mean_s, sigma)  # parameterised by its mean, so Little's law reads W directly
    positive = seconds > 0
    with np.errstate(divide="ignore"):
        z = (np.log(np.where(positive, seconds, 1.0)) - mu) / sigma
    return np.where(positive, 1.0 - standard_normal_cdf(z), 1.0)


def lognormal_mu(mean: float, sigma: float) -> float:
    """The log-mean mu of a log-normal distribution with this mean and shape sigma."""
    return math.log(mean) - sigma * sigma / 2
