"""Incident figures from stored times: time to detect, to decide, to restore; outcome. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class IncidentTimes:
    """The stored moments of one incident (None when it never happened)."""

    declared_at: datetime
    detected_at: datetime | None = None  # incidents.detected_at, as the declarer gave it
    decided_at: datetime | None = None  # the first rollback approval decided (approved/rejected)
    run_ended_at: datetime | None = None  # the latest rollback run's end
    run_state: str | None = None  # that run's state
    verified: bool | None = None  # runs.verification_passed
    state: str = "open"  # the incident's state


@dataclass(frozen=True)
class Figures:
    """Durations in seconds (None when not applicable) and the outcome in words."""

    to_detect: float | None
    to_decide: float | None
    to_restore: float | None
    outcome: str


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def outcome(times: IncidentTimes) -> str:
    """What became of the incident, in a few words."""
    if times.run_state == "succeeded":
        return "rolled back, verified" if times.verified else "rolled back, not verified"
    if times.run_state in ("failed", "aborted", "cancelled"):
        return f"rollback {times.run_state}"
    if times.run_state in ("held", "queued", "running", "waiting", "interrupted"):
        return "rollback in progress"
    return {"resolved": "resolved without rollback", "cancelled": "cancelled"}.get(
        times.state, "open"
    )


def figures(times: IncidentTimes) -> Figures:
    """Time to detect = declared − detected; to decide = approval decided − declared;
    to restore (MTTR) = end of a rollback that succeeded and passed verification − declared
    (as the notice, history claims no restoration that was not verified)."""
    verified = times.run_state == "succeeded" and times.verified is True
    restored = times.run_ended_at if verified else None
    return Figures(
        to_detect=_seconds(times.detected_at, times.declared_at),
        to_decide=_seconds(times.declared_at, times.decided_at),
        to_restore=_seconds(times.declared_at, restored),
        outcome=outcome(times),
    )


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the known values, or None when there are none."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None
