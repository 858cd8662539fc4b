"""Distributions of the scenario as vectorised functions: when people log in, how long they stay.

Pure numpy; no import of the scenario package at run time, so the scenario's own checks can use these.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from schoolsurge.scenario.schema import LoginTime, SessionLength, Window

_erf = np.frompyfunc(math.erf, 1, 1)


def standard_normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(np.asarray(z, dtype=float) / math.sqrt(2)).astype(float))


def login_cdf(curve: LoginTime, clock_s: np.ndarray) -> np.ndarray:
    """Share of a group's logins done by each clock time (seconds since midnight), ignoring the window."""
    clock_s = np.asarray(clock_s, dtype=float)
    if curve.distribution == "normal":
        return standard_normal_cdf((clock_s - curve.mean_s) / (curve.sd_minutes * 60))
    if curve.distribution == "lognormal":
        delay_min = np.maximum(clock_s - curve.after_s, 0.0) / 60
        with np.errstate(divide="ignore"):
            z = (np.log(delay_min) - math.log(curve.median_minutes)) / curve.sigma
        return np.where(delay_min > 0, standard_normal_cdf(np.where(delay_min > 0, z, 0.0)), 0.0)
    points = curve.points_s
    return np.interp(clock_s, [p[0] for p in points], [p[1] for p in points], left=0.0, right=1.0)


def share_in_window(curve: LoginTime, window: Window) -> float:
    """Share of the logins the curve puts inside the window."""
    ends = login_cdf(curve, np.array([window.start_s, window.end_s]))
    return float(ends[1] - ends[0])


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
