"""A capacity sweep ready to run: the sweep's model (models/sweep.py) with the roster the embedded platform needs
for it (accounts/roster.py). The one place the two meet, so that the model needs nothing from the accounts."""

from __future__ import annotations

from schoolsurge.accounts.roster import smallest_roster
from schoolsurge.models.sweep import SweepReplay, SweepSettings
from schoolsurge.scenario import Scenario


def sweep_replay(
    scenario: Scenario,
    settings: SweepSettings,
    scale: float,
    speed: float,
    expected_capacity: float | None = None,
) -> SweepReplay:
    """The sweep of a scenario at this scale and speed (its incidents left out: a sweep measures capacity), its
    accounts drawn from the smallest roster that holds them."""
    return SweepReplay.of(scenario, settings, scale, speed, smallest_roster, expected_capacity)
