"""The incident lifecycle table, the severity policy and incident ids. Pure."""

from __future__ import annotations

import itertools

import pytest

from bot.lifecycle import (
    APPROVAL_TRANSITIONS,
    CLOSED_STATES,
    TRANSITIONS,
    ApprovalState,
    Event,
    InvalidTransition,
    PolicyDecision,
    Severity,
    State,
    format_id,
    next_state,
    policy_for,
)
from bot.slack.parsing import parse_incident_id

S, E = State, Event

# The lifecycle as the seed plan describes it, written out independently of the code's table.
EXPECTED = {
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
    (S.ROLLBACK_QUEUED, E.INTERRUPTED): S.ROLLBACK_STOPPED,
    (S.ROLLBACK_QUEUED, E.STEP_FAILED): S.ROLLBACK_STOPPED,
    (S.ROLLBACK_QUEUED, E.RESUME): S.ROLLBACK_QUEUED,
    (S.ROLLBACK_QUEUED, E.RUN_FAILED): S.ROLLBACK_FAILED,
    (S.ROLLBACK_QUEUED, E.RESOLVE): S.RESOLVED,
    (S.ROLLBACK_QUEUED, E.CANCEL): S.CANCELLED,
    (S.ROLLING_BACK, E.STEP_FAILED): S.ROLLBACK_STOPPED,
    (S.ROLLING_BACK, E.INTERRUPTED): S.ROLLBACK_STOPPED,
    (S.ROLLING_BACK, E.RUN_SUCCEEDED): S.ROLLED_BACK,
    (S.ROLLING_BACK, E.RUN_FAILED): S.ROLLBACK_FAILED,
    (S.ROLLBACK_STOPPED, E.RESUME): S.ROLLING_BACK,
    (S.ROLLBACK_STOPPED, E.RUN_FAILED): S.ROLLBACK_FAILED,
    (S.ROLLBACK_STOPPED, E.RESOLVE): S.RESOLVED,
    (S.ROLLBACK_STOPPED, E.CANCEL): S.CANCELLED,
    (S.ROLLED_BACK, E.RESOLVE): S.RESOLVED,
    (S.ROLLBACK_FAILED, E.RESOLVE): S.RESOLVED,
    (S.ROLLBACK_FAILED, E.ESCALATE): S.ROLLBACK_FAILED,
    (S.ROLLBACK_FAILED, E.REQUEST_APPROVAL): S.AWAITING_APPROVAL,
}
INVALID = [
    (state, event)
    for state, event in itertools.product([None, *State], Event)
    if (state, event) not in EXPECTED
]


def test_transition_table_is_exactly_the_documented_lifecycle():
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "event"), list(EXPECTED), ids=str)
def test_every_valid_transition_leads_to_its_next_state(state, event):
    assert next_state(state, event) is EXPECTED[(state, event)]


@pytest.mark.parametrize(("state", "event"), INVALID, ids=str)
def test_every_other_transition_is_refused(state, event):
    with pytest.raises(InvalidTransition):
        next_state(state, event)


@pytest.mark.parametrize(
    ("state", "event", "message"),
    [
        (S.RESOLVED, E.RESOLVE, "can't resolve: it is already resolved"),
        (S.CANCELLED, E.RESOLVE, "can't resolve: it was cancelled"),
        (S.OPEN, E.APPROVE, "can't approve: it is open"),
        (S.OPEN, E.START_RUN, "can't start run: it is open"),
        (S.ROLLED_BACK, E.REQUEST_APPROVAL, "can't request approval: it is rolled back"),
        (S.ROLLBACK_QUEUED, E.APPROVE, "can't approve: its rollback is approved and waiting"),
        (S.ROLLING_BACK, E.RESOLVE, "use the Cancel button in the thread"),
        (S.ROLLBACK_STOPPED, E.APPROVE, "decide in the thread"),
        (S.AWAITING_APPROVAL, E.REQUEST_APPROVAL, "it is awaiting approval"),
    ],
)
def test_refused_transition_explains_why_in_words(state, event, message):
    with pytest.raises(InvalidTransition, match=message):
        next_state(state, event)


@pytest.mark.parametrize(("state", "event"), [p for p in INVALID if p[0] is not None], ids=str)
def test_refusal_text_is_plain_words_for_people(state, event):
    with pytest.raises(InvalidTransition) as caught:
        next_state(state, event)
    text = str(caught.value)
    assert text.startswith(f"can't {event.value.replace('_', ' ')}: ")
    assert "_" not in text
    assert "State." not in text and "Event." not in text


def test_closed_states_are_resolved_and_cancelled():
    assert {S.RESOLVED, S.CANCELLED} == CLOSED_STATES


@pytest.mark.parametrize("state", sorted(CLOSED_STATES))
def test_a_closed_incident_accepts_no_event(state):
    for event in Event:
        with pytest.raises(InvalidTransition):
            next_state(state, event)


def test_every_state_is_reachable_and_every_open_state_can_still_close():
    reachable = {None}
    while True:
        grown = reachable | {to for (frm, _), to in EXPECTED.items() if frm in reachable}
        if grown == reachable:
            break
        reachable = grown
    assert reachable - {None} == set(State)
    for state in set(State) - CLOSED_STATES:
        seen, frontier = {state}, {state}
        while frontier:
            frontier = {to for (frm, _), to in TRANSITIONS.items() if frm in frontier} - seen
            seen |= frontier
        assert seen & CLOSED_STATES, f"{state} can never be closed"


def test_an_approval_is_decided_once_from_pending():
    assert APPROVAL_TRANSITIONS == {
        (ApprovalState.PENDING, "approve"): ApprovalState.APPROVED,
        (ApprovalState.PENDING, "reject"): ApprovalState.REJECTED,
        (ApprovalState.PENDING, "expire"): ApprovalState.EXPIRED,
        (ApprovalState.PENDING, "withdraw"): ApprovalState.WITHDRAWN,
    }


@pytest.mark.parametrize(
    ("severity", "decision"),
    [
        (Severity.CRITICAL, PolicyDecision(request_approval_now=True, needs_scenario=True)),
        (Severity.HIGH, PolicyDecision(schedule_high_deadline=True, needs_scenario=True)),
        (Severity.MEDIUM, PolicyDecision()),
        (Severity.LOW, PolicyDecision()),
    ],
)
def test_policy_follows_the_seed_plan_for_each_severity(severity, decision):
    assert policy_for(severity) == decision


def test_medium_and_low_propose_no_rollback():
    for severity in (Severity.MEDIUM, Severity.LOW):
        decision = policy_for(severity)
        assert not decision.request_approval_now
        assert not decision.schedule_high_deadline


def test_severity_rank_orders_critical_above_high_above_medium_above_low():
    assert Severity.CRITICAL.rank > Severity.HIGH.rank > Severity.MEDIUM.rank > Severity.LOW.rank
    assert sorted(Severity, key=lambda s: s.rank, reverse=True) == list(Severity)


def test_severities_are_listed_most_severe_first():
    assert list(Severity) == [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]


@pytest.mark.parametrize(("number", "text"), [(1, "RB-1"), (12, "RB-12"), (999999, "RB-999999")])
def test_format_id_is_the_id_people_type(number, text):
    assert format_id(number) == text
    assert parse_incident_id(format_id(number)) == number
