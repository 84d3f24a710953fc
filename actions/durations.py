"""Durations as the runbook writes them (`30s`, `10m`, `2h`, `1h30m`) and as messages show them."""

from __future__ import annotations

import math
import re

MAX_DURATION = 7 * 24 * 3600.0  # a week: anything longer is a typo, not a timeout
_UNITS = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_EXPECTED = "expected a duration such as 30s, 10m, 2h or 1h30m"


def parse_duration(text: str) -> float:
    """Seconds in a duration like `30s`, `10m`, `2h` or `1h30m`; ValueError says what's wrong."""
    if not isinstance(text, str):
        raise ValueError(f'{text!r} is not a duration: write it as a string, e.g. "10m"')
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration ({_EXPECTED})")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    total = float(hours * 3600 + minutes * 60 + seconds)
    if total <= 0:
        raise ValueError(f"{text!r} is not a duration: it must be longer than zero ({_EXPECTED})")
    if total > MAX_DURATION:
        raise ValueError(f"{text!r} is too long: at most {format_duration(MAX_DURATION)}")
    return total


def format_duration(seconds: float) -> str:
    """Short human text for a number of seconds: `2h`, `30m`, `1m 05s`, `0.4s`."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    rest = round(seconds)
    parts: list[str] = []
    for unit, size in _UNITS.items():
        amount, rest = divmod(rest, size)
        if amount or (unit == "s" and not parts):
            parts.append(f"{amount:02d}{unit}" if parts else f"{amount}{unit}")
    return " ".join(parts)
