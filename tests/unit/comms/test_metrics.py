"""History figures on known timestamps: time to detect, decide, restore, and the means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.comms.metrics import IncidentTimes, figures, mean

T0 = datetime(2031, 11, 24, 3, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_a_verified_rollback_has_all_three_figures():
    times = IncidentTimes(
        declared_at=minutes(0),
        detected_at=minutes(-12),
        decided_at=minutes(4),
        run_ended_at=minutes(31),
        run_state="succeeded",
        verified=True,
        state="rolled_back",
    )
    result = figures(times)
    assert (result.to_detect, result.to_decide, result.to_restore) == (720.0, 240.0, 1860.0)
    assert result.outcome == "rolled back, verified"


def test_a_failed_rollback_restores_nothing():
    times = IncidentTimes(
        declared_at=minutes(0), decided_at=minutes(2), run_ended_at=minutes(9), run_state="aborted"
    )
    result = figures(times)
    assert result.to_restore is None and result.to_detect is None and result.to_decide == 120.0
    assert result.outcome == "rollback aborted"


def test_unverified_success_and_incidents_without_runs_are_named_plainly():
    unverified = IncidentTimes(
        declared_at=minutes(0), run_ended_at=minutes(5), run_state="succeeded", verified=False
    )
    assert figures(unverified).outcome == "rolled back, not verified"
    assert figures(unverified).to_restore is None  # not restored until verification passed
    resolved = IncidentTimes(declared_at=minutes(0), state="resolved")
    assert figures(resolved).outcome == "resolved without rollback"
    assert figures(IncidentTimes(declared_at=minutes(0), run_state="running")).outcome == (
        "rollback in progress"
    )


def test_a_detection_typed_after_the_declaration_counts_as_zero():
    assert figures(IncidentTimes(declared_at=minutes(0), detected_at=minutes(1))).to_detect == 0.0


def test_mean_ignores_unknown_values():
    assert mean([60.0, None, 180.0]) == 120.0
    assert mean([None, None]) is None
