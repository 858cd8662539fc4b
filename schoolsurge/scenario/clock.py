"""The morning's clock: 'HH:MM' <-> seconds since midnight."""

from __future__ import annotations

import re

CLOCK_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def clock_to_seconds(text: str) -> int:
    """'08:30' -> seconds since midnight."""
    match = CLOCK_PATTERN.match(text)
    if not match:
        raise ValueError(f"expected a clock time HH:MM, got {text!r}")
    return int(match[1]) * 3600 + int(match[2]) * 60


def seconds_to_clock(seconds: float) -> str:
    """Seconds since midnight -> 'HH:MM' (the minute it falls in)."""
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
