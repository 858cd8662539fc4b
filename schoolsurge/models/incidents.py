"""The scenario's timeline of incidents as numbers: bot login attempts per second, capacity left.

A bot flood's rate is national (attempts per second of the scenario's clock, for the whole country), like every
other figure of a scenario, so a run offers it at the same load fraction as the people: national rate x scale x
speed attempts per run second. That keeps the ratio of bots to people the run rehearses.
"""

from __future__ import annotations

import numpy as np

from schoolsurge.scenario import BotFlood, Scenario


def bot_rate_at(scenario: Scenario, clock_s: float) -> float:
    """National bot login attempts per second at a clock time (floods add up), start included, end excluded."""
    return sum(f.national_rate_per_s for f in scenario.bot_floods if f.start_s <= clock_s < f.end_s)


def bot_attempts_per_second(scenario: Scenario) -> np.ndarray:
    """National bot login attempts in each second of the window."""
    window = scenario.window
    attempts = np.zeros(window.duration_s)
    for flood in scenario.bot_floods:
        attempts[flood.start_s - window.start_s : flood.end_s - window.start_s] += flood.national_rate_per_s
    return attempts


def scaled_bot_rate(flood: BotFlood, scale: float, speed: float) -> float:
    """Bot login attempts per run second a run at this scale and speed offers during the flood."""
    return flood.national_rate_per_s * scale * speed


def capacity_available(scenario: Scenario, clock_s: float) -> float:
    """Share of the platform's capacity left at a clock time: 1 minus the losses in force (at least 0)."""
    lost = sum(
        loss.fraction
        for loss in scenario.capacity_losses
        if loss.at_s <= clock_s and (loss.restored_s is None or clock_s < loss.restored_s)
    )
    return max(0.0, 1.0 - lost)


def capacity_timeline(scenario: Scenario, speed: float) -> list[tuple[float, float]]:
    """(run second, share of capacity available from then on) at the start and at each change, in order."""
    window = scenario.window
    changes = {window.start_s}
    for loss in scenario.capacity_losses:
        changes.add(loss.at_s)
        if loss.restored_s is not None:
            changes.add(loss.restored_s)
    return [((clock - window.start_s) / speed, capacity_available(scenario, clock)) for clock in sorted(changes)]
