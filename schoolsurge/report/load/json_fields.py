"""The small JSON files of a run directory (timeline.json, capacity.json, compare.json) read as a reader that
must never fail on them: an object, or {} when the file is missing, unreadable, not an object, or not a regular
file (noted, when the caller keeps notes); and a number from a field written by us or edited by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from schoolsurge.files import read_regular_text, readable


def read_json_object(path: Path, notes: list[str] | None = None) -> dict[str, Any]:
    if not readable(path, notes):
        return {}
    try:
        data = json.loads(read_regular_text(path))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def number_or_none(value: Any) -> float | None:
    """A finite number from a JSON field written by us or edited by hand ("36", 36, "x" -> None)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
