"""Expected arrivals and concurrent sessions per group over the morning's clock.

Each group logs in along a normal curve; a person stays logged in for the group's mean session length,
so concurrent sessions at t are the people who arrived in (t - W, t] (Little's law in its time-varying form).
"""

from __future__ import annotations

import math

from schoolsurge.scenario import Group, Persona, Scenario


def _normal_cdf(x: float, mean: float, sd: float) -> float:
    return 0.5 * (1 + math.erf((x - mean) / (sd * math.sqrt(2))))


def logins_expected(group: Group) -> float:
    """People of the group who log in that morning (national)."""
    return group.population * group.participation


def arrivals_before(group: Group, clock_s: float) -> float:
    """Expected national logins of the group before a clock time (seconds since midnight)."""
    curve = group.login_time
    return logins_expected(group) * _normal_cdf(clock_s, curve.mean_s, curve.sd_minutes * 60)


def arrival_rate(group: Group, clock_s: float) -> float:
    """Expected national logins per second of the group at a clock time."""
    curve = group.login_time
    sd = curve.sd_minutes * 60
    z = (clock_s - curve.mean_s) / sd
    return logins_expected(group) * math.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))


def concurrent_sessions(group: Group, clock_s: float) -> float:
    """Expected national sessions of the group open at a clock time."""
    session_s = group.session_minutes * 60
    return arrivals_before(group, clock_s) - arrivals_before(group, clock_s - session_s)


def concurrent_by_persona(scenario: Scenario, clock_s: float, scale: float = 1.0) -> dict[Persona, float]:
    """Expected open sessions per persona at a clock time, times the fraction of people simulated."""
    totals: dict[Persona, float] = {}
    for group in scenario.groups:
        totals[group.persona] = totals.get(group.persona, 0.0) + concurrent_sessions(group, clock_s) * scale
    return totals


def person_seconds_by_persona(scenario: Scenario) -> dict[Persona, float]:
    """Share of logged-in time each persona accounts for over the morning (logins x session length)."""
    totals: dict[Persona, float] = {}
    for group in scenario.groups:
        weight = logins_expected(group) * group.session_minutes * 60
        totals[group.persona] = totals.get(group.persona, 0.0) + weight
    return totals
