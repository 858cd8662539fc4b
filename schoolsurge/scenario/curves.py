"""What a group's login-time curve means: the share of its logins done by each clock time (its CDF), as a
vectorised function, so that the scenario's own checks can tell a curve misplaced against the window. The models
build on it (models/curves.py truncates it to the window)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from schoolsurge.scenario.schema import LoginTime, Window

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
