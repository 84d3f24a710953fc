"""How long a running step has run, how long it took last time, and when the run may end. Pure.

A step's elapsed time is shown once it has run SHOW_AFTER seconds, then in coarse steps
(GRANULARITY), so its message changes a bounded number of times however long it runs:
11 times in the first minute, 18 more up to ten minutes, once a minute up to an hour, then
every five minutes. `next_change` says when the shown value next changes; nothing is
re-rendered in between.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SHOW_AFTER = 5.0  # seconds a step runs before its clock shows (ROLLBACK_STEP_CLOCK_AFTER)
# (shown while elapsed is under this many seconds, in steps of this many seconds); each bound
# is a multiple of the step below and above it, so the shown value never goes back.
GRANULARITY: tuple[tuple[float, float], ...] = ((60, 5), (600, 30), (3600, 60), (math.inf, 300))


def step_identity(kind: str, scenario: str | None, name: str, command: str) -> str:
    """What makes two steps "the same step": run kind, scenario, step name and the command as
    the runbook writes it (before placeholders are filled in)."""
    text = "\x1f".join((kind, scenario or "", name, command))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _step_of(seconds: float) -> float:
    return next(step for bound, step in GRANULARITY if seconds < bound)


def shown_elapsed(seconds: float, *, after: float = SHOW_AFTER) -> float | None:
    """The elapsed time a step's messages show (rounded down to its granularity), or None
    while the step has run less than `after` seconds."""
    if not math.isfinite(seconds) or seconds < after:
        return None
    step = _step_of(seconds)
    return max(after, math.floor(seconds / step) * step)


def next_change(seconds: float, *, after: float = SHOW_AFTER) -> float:
    """The elapsed time at which `shown_elapsed` next shows a different value."""
    if seconds < after:
        return after
    step = _step_of(seconds)
    return max(after, (math.floor(seconds / step) + 1) * step)


@dataclass(frozen=True)
class Estimate:
    """When the run's remaining steps should be done, judged by their last durations."""

    finish: datetime  # rounded up to the minute: it changes at most when its minute does
    left: float  # seconds of work left, by those durations


def estimate(
    now: datetime, *, current_elapsed: float, last_times: Sequence[float | None]
) -> Estimate | None:
    """The estimated finish of the steps still to run, the first of them running for
    `current_elapsed` s; None unless every one of them has a last duration."""
    if not last_times or any(t is None for t in last_times):
        return None
    first, *rest = last_times
    left = max(0.0, first - current_elapsed) + sum(rest)
    finish = now + timedelta(seconds=left)
    if finish.second or finish.microsecond:
        finish = finish.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return Estimate(finish=finish, left=left)
