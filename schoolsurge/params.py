"""Run options checked as they are parsed, so a bad value is refused before anything is created or started.

Each function is an argparse `type=`: it returns the parsed value or raises ArgumentTypeError with what was
expected, which argparse prints as one line (`argument --scale: ...`) and exit status 2.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def scale_fraction(text: str) -> float:
    """--scale: the fraction of people simulated, in (0, 1]."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (a fraction of the people), got {text}")
    return value


def speed_factor(text: str) -> float:
    """--speed: time compression, scenario seconds per run second, above 0."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0 (scenario seconds per run second), got {text}")
    return value


def positive_seconds(text: str) -> float:
    """A duration in seconds, above 0 (e.g. --late-after)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text}")
    return value


def seed_number(text: str) -> int:
    """--seed: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def process_count(text: str) -> int:
    """--processes: Locust worker processes, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value
