"""The incident operations behind the commands: each is one transaction, audit row included."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from actions.durations import format_duration
from bot.comms import reminders
from bot.incidents import access, approval_store, store
from bot.incidents.approvals import (
    approval_key,
    expire,
    refresh_root,
    request_approval,
    root_key,
    thread_note,
    withdraw_pending,
)
from bot.lifecycle import Event, InvalidTransition, Severity, State, format_id, policy_for
from bot.runs import queue as run_queue
from bot.runs import store as run_store
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
    async with services.pool.acquire() as conn, conn.transaction():
        incident = await store.insert_incident(
            conn,
            channel=channel,
            severity=severity.value,
            scenario=scenario,
            summary=summary,
            declared_by=user,
            detected_at=detected_at,
        )
        await approval_store.add_requester(
            conn, incident_id=incident["id"], user=user, part="declared"
        )
        text, root = blocks.incident_root(incident, services.scenario_title(scenario))
        await outbox.post(
            conn,
            channel=channel,
            text=text,
            blocks=root,
            key=root_key(incident["id"]),
            failure_response_url=response_url,
        )
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


async def close(
    services: Services, *, incident_id: int | None, channel: str, user: str, note: str, event: Event
) -> str:
    """Resolve or cancel an incident: withdraw its request, cancel its deadlines, say so."""
    verb = "resolve" if event is Event.RESOLVE else "cancel"
    async with services.pool.acquire() as conn, conn.transaction():
        found = await pick_incident(conn, incident_id=incident_id, channel=channel, verb=verb)
        incident = await store.lock_incident(conn, incident_id=found["id"])
        rid = format_id(incident["id"])
        access.in_own_channel(incident, channel, verb)
        if await _has_stopped_run(conn, incident):
            await access.must_be_approver(
                services, user, f"{verb} {rid} while its rollback is stopped (that ends the run)"
            )
        try:
            changes = {"resolved_at": datetime.now().astimezone(), "resolution_note": note or None}
            incident = await store.apply_transition(
                conn,
                incident=incident,
                event=event,
                actor=user,
                detail={"note": note},
                **(changes if event is Event.RESOLVE else {}),
            )
        except InvalidTransition as error:
            raise Refusal(f"{rid}: {error}.") from None
        await withdraw_pending(conn, services, incident)
        ended = await run_store.abort_stopped_runs(conn, incident_id=incident["id"])
        for run in ended:
            if run["controls_key"]:
                closed = "resolved" if event is Event.RESOLVE else "cancelled"
                text = f"Closed: {rid} was {closed} by {blocks.mention(user)}; no step ran."
                await outbox.update(
                    conn, key=run["controls_key"], text=text, blocks=blocks.note(text)[1]
                )
        # An aborted run freed the project: the oldest held run takes it now (see run_control).
        promoted = await run_queue.promote(conn) if ended else None
        for kind in (HIGH_DEADLINE, "approval_expiry"):
            await store.cancel_deadlines(conn, incident_id=incident["id"], kind=kind)
        said = f": {blocks.escape(note)}" if note else "."
        done = "resolved" if event is Event.RESOLVE else "cancelled"
        await thread_note(conn, incident, f"{blocks.mention(user)} {done} {rid}{said}")
        await refresh_root(conn, services, incident)
        due = []
        if event is Event.RESOLVE:
            due = await reminders.schedule_on_resolve(conn, services, incident)
    for deadline in due:
        services.schedule_deadline(deadline)
    if promoted is not None:
        services.run_queued(promoted["id"])
    services.incident_closed(incident["id"])
    return f"{rid} is {done}."


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


async def _has_stopped_run(conn, incident) -> bool:
    """Whether closing the incident would end a run that waits for a person."""
    if State(incident["state"]) is State.ROLLBACK_STOPPED:
        return True
    return await conn.fetchval(
        "select exists (select 1 from runs where incident_id = $1"
        " and state in ('waiting', 'interrupted'))",
        incident["id"],
    )


async def fire_deadline(services: Services, *, deadline_id: int) -> bool:
    """Act on a due deadline if this process claims it first; True when it fired here."""
    scheduled: list[asyncpg.Record] = []
    async with services.pool.acquire() as conn, conn.transaction():
        pending = await conn.fetchrow(
            "select incident_id from deadlines where id = $1", deadline_id
        )
        if pending is None:
            return False
        # The incident is locked before the deadline is claimed: the same order as resolve,
        # escalate and approve, so they can't deadlock with a firing.
        incident = await store.lock_incident(conn, incident_id=pending["incident_id"])
        deadline = await store.claim_deadline(
            conn, deadline_id=deadline_id, owner=services.process_id
        )
        if deadline is None:
            return False
        if deadline["kind"] == HIGH_DEADLINE and incident["state"] == State.OPEN:
            rid = format_id(incident["id"])
            after = format_duration(services.runbook.policy.high_rollback_after)
            if services.runbook.scenario(incident["scenario"]) is None:
                await thread_note(
                    conn,
                    incident,
                    f"⏰ {rid} was not resolved within {after}, but its scenario "
                    f"`{incident['scenario']}` is no longer in the runbook. Ask for a rollback "
                    f"with `/rollback escalate {rid} critical <scenario>`.",
                )
                return True
            await thread_note(
                conn,
                incident,
                f"⏰ {rid} was not resolved "
                f"within {after}: asking for rollback approval, as the plan says.",
            )
            scheduled = await request_approval(
                conn, services, incident, actor="bot", reason="high_deadline"
            )
        elif deadline["kind"] == "approval_expiry":
            await expire(conn, services, approval_id=deadline["ref_id"], incident=incident)
        elif deadline["kind"] == reminders.REMINDER:
            scheduled = await reminders.fire(conn, services, incident, deadline)
    for extra in scheduled:
        services.schedule_deadline(extra)
    return True


__all__ = ["approval_key", "close", "declare", "escalate", "fire_deadline", "pick_incident"]
