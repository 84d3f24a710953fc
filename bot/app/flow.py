"""The steps of an incident's story that hand off to runs and comms, inside its transaction.

Incidents sit below runs and comms, so these live here: an approval's last vote queues its
rollback run (bot.incidents.approvals.decide, given bot.runs.queue.queue_rollback); closing an
incident ends its stopped runs and gives the project to the oldest held run; resolving one, and
a due reminder deadline, send post-mortem reminders (bot.comms.reminders).
"""

from __future__ import annotations

import functools
from datetime import datetime

import asyncpg
from slack_bolt.async_app import AsyncApp

from actions.durations import format_duration
from bot.comms import reminders
from bot.incidents import access, approvals, store
from bot.incidents.approvals import (
    expire,
    refresh_root,
    request_approval,
    thread_note,
    withdraw_pending,
)
from bot.incidents.flow import HIGH_DEADLINE, pick_incident
from bot.incidents.handlers import clicked
from bot.lifecycle import Event, InvalidTransition, State, format_id
from bot.runs import queue as run_queue
from bot.runs import store as run_store
from bot.services import Refusal, Services
from bot.slack import blocks, outbox
from bot.slack.guard import clicked_channel, done_then_answer
from bot.slack.ids import Action


def register(app: AsyncApp, services: Services) -> None:
    """Attach the approval buttons (run buttons are registered by bot.runs.handlers)."""

    @app.action(Action.APPROVE)
    async def approve(ack, body, respond) -> None:
        await done_then_answer(
            ack, respond, _decide(services, body, approve=True), after=services.after_ack
        )

    @app.action(Action.REJECT)
    async def reject(ack, body, respond) -> None:
        await done_then_answer(
            ack, respond, _decide(services, body, approve=False), after=services.after_ack
        )


async def _decide(services: Services, body: dict, *, approve: bool) -> str:
    user, approval_id, shown_backup = clicked(body)
    return await decide(
        services,
        approval_id=approval_id,
        user=user,
        approve=approve,
        channel=clicked_channel(body),
        shown_backup=shown_backup,
    )


# Approve or reject a pending request: bot.incidents.approvals.decide, whose vote that completes
# the request queues its rollback run (or holds it behind the active operation) in its transaction.
decide = functools.partial(approvals.decide, queue_run=run_queue.queue_rollback)


async def close(
    services: Services, *, incident_id: int | None, channel: str, user: str, note: str, event: Event
) -> str:
    """Resolve or cancel an incident: withdraw its request, end its stopped runs, cancel its
    deadlines, say so; resolving schedules post-mortem reminders."""
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
        # An aborted run freed the project: the oldest held run takes it now (bot.runs.queue).
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


__all__ = ["close", "decide", "fire_deadline", "register"]
