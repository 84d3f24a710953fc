"""Declare and escalate: each one transaction, audit row included.

Closing an incident and firing a deadline hand off to runs and comms, so they are in bot.app.flow.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import asyncpg

from actions.durations import format_duration
from bot.incidents import access, approval_store, store
from bot.incidents.approvals import (
    approval_key,
    refresh_root,
    request_approval,
    root_key,
    thread_note,
)
from bot.lifecycle import Event, InvalidTransition, Severity, State, format_id, policy_for
from bot.services import Refusal, Services
from bot.slack import blocks, outbox

HIGH_DEADLINE = "high_rollback"


async def declare(
    services: Services,
    *,
    channel: str,
    user: str,
    severity: Severity,
    scenario: str | None,
    summary: str,
    detected_at: datetime | None,
    response_url: str | None = None,
) -> str:
    """Open an incident in `channel` and apply the severity policy; return the answer."""
    await access.may_declare(services, user)
    decision = policy_for(severity)
    if decision.needs_scenario and scenario is None:
        if len(services.runbook.scenarios) != 1:
            keys = ", ".join(s.key for s in services.runbook.scenarios)
            raise Refusal(f"A {severity} incident needs a rollback scenario. Say which: {keys}.")
        scenario = services.runbook.scenarios[0].key
    # Rendered before the row exists, the id and time left as marks the insert fills in.
    unwritten = store.unwritten_incident(
        channel=channel,
        severity=severity.value,
        scenario=scenario,
        summary=summary,
        declared_by=user,
        detected_at=detected_at,
    )
    text, root = blocks.incident_root(unwritten, services.scenario_title(scenario))
    owed = outbox.OwedPost(
        channel, text, root, key=root_key(unwritten["id"]), failure_response_url=response_url
    )
    # The policy's own writes (a deadline, an approval request) commit with the incident, all
    # at one database time; without them the insert is one statement, atomic alone.
    more = decision.request_approval_now or decision.schedule_high_deadline
    async with (
        services.pool.acquire() as conn,
        conn.transaction() if more else contextlib.nullcontext(),
    ):
        incident = await store.insert_incident(conn, unwritten, root=owed)
        deadlines = await _apply_policy(conn, services, incident, severity, actor=user)
    for deadline in deadlines:
        services.schedule_deadline(deadline)
    return f"Declared {format_id(incident['id'])}. Its thread is the incident's log."


async def _apply_policy(conn, services: Services, incident, severity: Severity, *, actor: str):
    decision = policy_for(severity)
    if decision.request_approval_now:
        await store.cancel_deadlines(conn, incident_id=incident["id"], kind=HIGH_DEADLINE)
        return await request_approval(conn, services, incident, actor=actor, reason=severity.value)
    if decision.schedule_high_deadline:
        after = services.runbook.policy.high_rollback_after
        deadline = await store.insert_deadline(
            conn, incident_id=incident["id"], kind=HIGH_DEADLINE, due_in=after
        )
        await thread_note(
            conn,
            incident,
            f"HIGH: if {format_id(incident['id'])} is not resolved by "
            f"{blocks.slack_time(deadline['due_at'])} ({format_duration(after)}), I will ask for "
            f"approval to roll back `{incident['scenario']}`.",
        )
        return [deadline]
    return []


async def pick_incident(
    conn: asyncpg.Connection, *, incident_id: int | None, channel: str, verb: str
) -> asyncpg.Record:
    """The named incident, or the channel's only open one; Refusal says what to type."""
    if incident_id is not None:
        incident = await store.get_incident(conn, incident_id=incident_id)
        if incident is None:
            raise Refusal(
                f"There is no incident {format_id(incident_id)}. `/rollback history` lists them."
            )
        return incident
    candidates = await store.open_incidents(conn, channel=channel)
    if not candidates:
        raise Refusal("There is no open incident in this channel. Name one, like `RB-12`.")
    if len(candidates) > 1:
        ids = ", ".join(format_id(i["id"]) for i in candidates[:10])
        raise Refusal(
            f"This channel has {len(candidates)} open incidents ({ids}). "
            f"Say which: `/rollback {verb} {format_id(candidates[0]['id'])}`."
        )
    return candidates[0]


async def escalate(
    services: Services,
    *,
    incident_id: int,
    user: str,
    severity: Severity,
    scenario: str | None,
    channel: str | None,
) -> str:
    """Raise an incident's severity; CRITICAL asks for approval at once, HIGH starts the clock.

    `declarers` governs escalate as it does declare; whoever escalates (or asks again) becomes
    a requester of the incident's rollback, so they can't approve it.
    """
    await access.may_declare(services, user, "escalate")
    async with services.pool.acquire() as conn, conn.transaction():
        incident = await store.lock_incident(conn, incident_id=incident_id)
        if incident is None:
            raise Refusal(f"There is no incident {format_id(incident_id)}.")
        rid = format_id(incident_id)
        access.in_own_channel(incident, channel, "escalate")
        current = Severity(incident["severity"])
        retry_critical = current is Severity.CRITICAL and severity is Severity.CRITICAL
        if severity.rank <= current.rank and not retry_critical:
            raise Refusal(f"{rid} is already {current}; escalate means a higher severity.")
        if incident["state"] == State.AWAITING_APPROVAL and severity is Severity.CRITICAL:
            raise Refusal(f"{rid} already has a rollback request waiting in its thread.")
        scenario = scenario or incident["scenario"]
        if policy_for(severity).needs_scenario and scenario is None:
            keys = ", ".join(s.key for s in services.runbook.scenarios)
            raise Refusal(
                f"{rid} has no scenario. Say which: `/rollback escalate {rid} {severity} <{keys}>`."
            )
        try:
            incident = await store.apply_transition(
                conn,
                incident=incident,
                event=Event.ESCALATE,
                actor=user,
                detail={"from": current.value, "to": severity.value, "scenario": scenario},
                severity=severity.value,
                scenario=scenario,
            )
        except InvalidTransition as error:
            raise Refusal(f"{rid}: {error}.") from None
        again = retry_critical or State(incident["state"]) is State.ROLLBACK_FAILED
        await approval_store.add_requester(
            conn, incident_id=incident_id, user=user, part="asked_again" if again else "escalated"
        )
        await thread_note(
            conn, incident, f"{blocks.mention(user)} escalated {rid} to {severity.value.upper()}."
        )
        deadlines = await _apply_policy(conn, services, incident, severity, actor=user)
        await refresh_root(conn, services, incident)
    for deadline in deadlines:
        services.schedule_deadline(deadline)
    return f"{rid} is now {severity.value.upper()}."


__all__ = ["approval_key", "declare", "escalate", "pick_incident"]
