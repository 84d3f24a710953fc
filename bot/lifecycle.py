"""The incident and approval lifecycles as data, and the severity policy. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    """Where an incident is in its life."""

    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    ROLLBACK_QUEUED = "rollback_queued"
    ROLLING_BACK = "rolling_back"
    ROLLBACK_STOPPED = "rollback_stopped"  # a step failed, or the run was interrupted
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"  # aborted or cancelled: the system may be half-restored
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class Event(StrEnum):
    """What can happen to an incident; each is one audit-log row."""

    DECLARE = "declare"
    ESCALATE = "escalate"
    REQUEST_APPROVAL = "request_approval"
    APPROVE = "approve"
    REJECT = "reject"
    EXPIRE = "expire"
    START_RUN = "start_run"
    STEP_FAILED = "step_failed"
    INTERRUPTED = "interrupted"
    RESUME = "resume"
    RUN_SUCCEEDED = "run_succeeded"
    RUN_FAILED = "run_failed"
    RESOLVE = "resolve"
    CANCEL = "cancel"


S, E = State, Event
TRANSITIONS: dict[tuple[State | None, Event], State] = {
    (None, E.DECLARE): S.OPEN,
    (S.OPEN, E.ESCALATE): S.OPEN,
    (S.OPEN, E.REQUEST_APPROVAL): S.AWAITING_APPROVAL,
    (S.OPEN, E.RESOLVE): S.RESOLVED,
    (S.OPEN, E.CANCEL): S.CANCELLED,
    (S.AWAITING_APPROVAL, E.ESCALATE): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, E.APPROVE): S.ROLLBACK_QUEUED,
    (S.AWAITING_APPROVAL, E.REJECT): S.OPEN,
    (S.AWAITING_APPROVAL, E.EXPIRE): S.OPEN,
    (S.AWAITING_APPROVAL, E.RESOLVE): S.RESOLVED,
    (S.AWAITING_APPROVAL, E.CANCEL): S.CANCELLED,
    (S.ROLLBACK_QUEUED, E.START_RUN): S.ROLLING_BACK,
    # The run stopped before its first step (the process died during the artifact check, or
    # the run was aborted while it waited for the project): a person decides, as after a step.
    (S.ROLLBACK_QUEUED, E.INTERRUPTED): S.ROLLBACK_STOPPED,
    (S.ROLLBACK_QUEUED, E.STEP_FAILED): S.ROLLBACK_STOPPED,
    (S.ROLLBACK_QUEUED, E.RESUME): S.ROLLBACK_QUEUED,
    (S.ROLLBACK_QUEUED, E.RUN_FAILED): S.ROLLBACK_FAILED,
    (S.ROLLBACK_QUEUED, E.RESOLVE): S.RESOLVED,  # the queued or held run is aborted unstarted
    (S.ROLLBACK_QUEUED, E.CANCEL): S.CANCELLED,
    (S.ROLLING_BACK, E.STEP_FAILED): S.ROLLBACK_STOPPED,
    (S.ROLLING_BACK, E.INTERRUPTED): S.ROLLBACK_STOPPED,
    (S.ROLLING_BACK, E.RUN_SUCCEEDED): S.ROLLED_BACK,
    (S.ROLLING_BACK, E.RUN_FAILED): S.ROLLBACK_FAILED,
    (S.ROLLBACK_STOPPED, E.RESUME): S.ROLLING_BACK,
    (S.ROLLBACK_STOPPED, E.RUN_FAILED): S.ROLLBACK_FAILED,
    (S.ROLLBACK_STOPPED, E.RESOLVE): S.RESOLVED,  # fixed by hand; the stopped run is aborted
    (S.ROLLBACK_STOPPED, E.CANCEL): S.CANCELLED,  # a false alarm; the stopped run is aborted
    (S.ROLLED_BACK, E.RESOLVE): S.RESOLVED,
    (S.ROLLBACK_FAILED, E.RESOLVE): S.RESOLVED,
    (S.ROLLBACK_FAILED, E.ESCALATE): S.ROLLBACK_FAILED,  # `escalate ID critical` asks again
    (S.ROLLBACK_FAILED, E.REQUEST_APPROVAL): S.AWAITING_APPROVAL,
}

CLOSED_STATES = frozenset({S.RESOLVED, S.CANCELLED})

# Why an event is refused, by state, for the person who asked.
_REFUSALS = {
    S.RESOLVED: "it is already resolved",
    S.CANCELLED: "it was cancelled",
    S.ROLLBACK_QUEUED: "its rollback is approved and waiting to start (resolve or cancel the "
    "incident to drop it)",
    S.ROLLING_BACK: "its rollback is running (use the Cancel button in the thread to stop it)",
    S.ROLLBACK_STOPPED: "its rollback is stopped: decide in the thread (Retry, Skip, Resume or "
    "Abort), or resolve it if it was fixed by hand",
}


class InvalidTransition(Exception):
    """An event that the incident's current state does not allow; str() explains why."""


def next_state(state: State | None, event: Event) -> State:
    """The state after `event`, or InvalidTransition with a sentence for the user."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        why = _REFUSALS.get(state, f"it is {str(state).replace('_', ' ')}")
        raise InvalidTransition(f"can't {event.replace('_', ' ')}: {why}") from None


class ApprovalState(StrEnum):
    """Where a rollback approval request is."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the incident was resolved or cancelled first


APPROVAL_TRANSITIONS: dict[tuple[ApprovalState, str], ApprovalState] = {
    (ApprovalState.PENDING, "approve"): ApprovalState.APPROVED,
    (ApprovalState.PENDING, "reject"): ApprovalState.REJECTED,
    (ApprovalState.PENDING, "expire"): ApprovalState.EXPIRED,
    (ApprovalState.PENDING, "withdraw"): ApprovalState.WITHDRAWN,
}


class Severity(StrEnum):
    """The seed plan's severity levels, most severe first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """3 for critical down to 0 for low."""
        return {"critical": 3, "high": 2, "medium": 1, "low": 0}[self.value]


@dataclass(frozen=True)
class PolicyDecision:
    """What the seed plan's rollback policy asks for when a severity is set."""

    request_approval_now: bool = False
    schedule_high_deadline: bool = False
    needs_scenario: bool = False


def policy_for(severity: Severity) -> PolicyDecision:
    """CRITICAL rolls back now; HIGH at the deadline if unresolved; MEDIUM/LOW are tracked."""
    if severity is Severity.CRITICAL:
        return PolicyDecision(request_approval_now=True, needs_scenario=True)
    if severity is Severity.HIGH:
        return PolicyDecision(schedule_high_deadline=True, needs_scenario=True)
    return PolicyDecision()


def format_id(incident_id: int) -> str:
    """The id people type: RB-12."""
    return f"RB-{incident_id}"
