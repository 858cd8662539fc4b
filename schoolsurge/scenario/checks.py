"""Checks that need the whole scenario: curves and incidents against the window, actions against personas.

Each problem is (field path, what was expected); the loader turns the first into its one-line error.
"""

from __future__ import annotations

from collections.abc import Iterator

from schoolsurge.scenario.clock import clock_to_seconds
from schoolsurge.scenario.curves import share_in_window
from schoolsurge.scenario.schema import ACTIONS, VIRTUAL_CLASS_PERSONAS, BotFlood, Scenario, Window

# Below this share inside the window a curve is surely misplaced: truncating it to the window would blow a
# thin tail up into the whole group.
MIN_SHARE_IN_WINDOW = 0.01


def _outside(window: Window, clock: str) -> bool:
    return not window.contains(clock_to_seconds(clock))


def _window_text(window: Window) -> str:
    return f"{window.start}-{window.end}"


def problems(scenario: Scenario) -> Iterator[tuple[str, str]]:
    window = scenario.window
    for g, group in enumerate(scenario.groups):
        share = share_in_window(group.login_time, window)
        if share < MIN_SHARE_IN_WINDOW:
            yield (
                f"groups.{g}.login_time",
                f"only {share:.1%} of the logins fall inside the window {_window_text(window)}; "
                "expected a curve with its mass inside it (move the curve or widen the window)",
            )
        allowed = ACTIONS[group.persona]
        for action in group.behaviour:
            if action not in allowed:
                yield (
                    f"groups.{g}.behaviour.{action}",
                    f"not an action of a {group.persona}; expected some of: {', '.join(sorted(allowed))}",
                )
        if group.virtual_class and group.persona not in VIRTUAL_CLASS_PERSONAS:
            yield (
                f"groups.{g}.virtual_class",
                f"only teachers open and students join virtual classes, not a {group.persona}; expected 0",
            )
    for i, incident in enumerate(scenario.incidents):
        times = ("start", "end") if isinstance(incident, BotFlood) else ("at", "restored_at")
        for name in times:
            clock = getattr(incident, name)
            if clock is not None and _outside(window, clock):
                yield (
                    f"incidents.{i}.{name}",
                    f"{clock} is outside the window {_window_text(window)}; expected a time within it",
                )
    judged = scenario.slo.window
    if judged is not None:
        for name in ("start", "end"):
            clock = getattr(judged, name)
            if _outside(window, clock):
                yield (
                    f"slo.window.{name}",
                    f"{clock} is outside the window {_window_text(window)}; the SLOs are judged within it",
                )
