"""How the capacity answer words its numbers: rates, people, durations, latencies and step lists, as a planner
pastes them into a memo (the cards' sentences and tables, capacity/sweep_card.py and run_card.py)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def significant(value: float, digits: int = 3) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def rate_text(value: float | None) -> str:
    """A rate as a memo writes it: 11,400 / 1,849 / 41 / 1.2 / 0.035."""
    if value is None or not math.isfinite(value):
        return "?"
    size = abs(value)
    if size >= 10_000:
        return f"{significant(value):,.0f}"
    if size >= 10:
        return f"{value:,.0f}"
    if size >= 1:
        return f"{value:.1f}"
    return "0" if size == 0 else f"{value:.2g}"


def people_text(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "?"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f} million"
    if abs(value) >= 10_000:
        return f"{significant(value):,.0f}"
    return f"{value:,.0f}"


def count_text(value: float) -> str:
    return f"{value:,.0f}"


def ms_text(value: float | None) -> str:
    return "?" if value is None else "never (people gave up)" if math.isinf(value) else f"{value:,.0f} ms"


def ms_cell(value: float) -> str:
    return "gave up" if math.isinf(value) else f"{value:,.0f}"


def duration_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def or_dash(value: float | None, show: Callable[[float], str]) -> str:
    return "-" if value is None else show(value)


def coefficient_text(value: float, interval: tuple[float, float] | None) -> str:
    if interval is None:
        return f"{value:.4g}"
    return f"{value:.4g} [{interval[0]:.3g}, {interval[1]:.3g}]"


def steps_text(steps: Sequence[int]) -> str:
    if len(steps) == 1:
        return f"Step {steps[0]}"
    return f"Steps {', '.join(str(s) for s in steps[:-1])} and {steps[-1]}"


def were(steps: Sequence[int]) -> str:
    return "was" if len(steps) == 1 else "were"
