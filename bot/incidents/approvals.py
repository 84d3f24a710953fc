"""Rollback approval: request, decide (at most once), expire, and hand off to the runner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

from bot.incidents import access, approval_store, restore_points, store
from bot.lifecycle import Event, InvalidTransition, State, format_id
from bot.services import Refusal, Services
from bot.slack import blocks, outbox

# Queues an approved request's rollback run in the caller's transaction and returns the run
# (bot.app.flow passes bot.runs' queue: runs sit above incidents, so it can't be imported here).
QueueRun = Callable[[asyncpg.Connection, Services, asyncpg.Record, asyncpg.Record, str],
                    Awaitable[asyncpg.Record]]  # fmt: skip


def root_key(incident_id: int) -> str:
    """The logical key of the incident's declaration message (its thread root)."""
    return f"{format_id(incident_id)}/root"


def approval_key(incident_id: int, approval_id: int) -> str:
    """The logical key of an approval request message."""
    return f"{format_id(incident_id)}/approval/{approval_id}"


async def refresh_root(conn: asyncpg.Connection, services: Services, incident) -> None:
    """Owe an edit of the declaration message so it shows the incident's current state."""
    text, root = blocks.incident_root(incident, services.scenario_title(incident["scenario"]))
    await outbox.update(conn, key=root_key(incident["id"]), text=text, blocks=root)


async def thread_note(conn: asyncpg.Connection, incident, text: str) -> None:
    """Owe a bot-written line in the incident's thread."""
    fallback, note = blocks.note(text)
    await outbox.post(
        conn,
        channel=incident["channel"],
        text=fallback,
        blocks=note,
        thread_key=root_key(incident["id"]),
    )


async def request_approval(
    conn: asyncpg.Connection, services: Services, incident, *, actor: str, reason: str
) -> list[asyncpg.Record]:
    """Post the approval request in the thread, paging contacts; return deadlines to schedule."""
    scenario = services.runbook.scenario(incident["scenario"])
    if scenario is None:
        raise Refusal(
            f"{format_id(incident['id'])} has no rollback scenario. Name one: "
            f"`/rollback escalate {format_id(incident['id'])} critical <scenario>`."
        )
    policy = services.runbook.policy
    approval = await store.insert_approval(
        conn,
        incident_id=incident["id"],
        scenario=scenario.key,
        reason=reason,
        expires_after=policy.approval_expires_after,
        approvals_required=policy.approvals_required,
    )
    incident = await store.apply_transition(
        conn,
        incident=incident,
        event=Event.REQUEST_APPROVAL,
        actor=actor,
        detail={"approval_id": approval["id"], "reason": reason, "scenario": scenario.key},
    )
    approval = await restore_points.pin_default(conn, approval_id=approval["id"])
    text, request = await request_message(conn, services, incident, approval)
    await outbox.post(
        conn,
        channel=incident["channel"],
        text=text,
        blocks=request,
        key=approval_key(incident["id"], approval["id"]),
        thread_key=root_key(incident["id"]),
    )
    await refresh_root(conn, services, incident)
    expiry = await store.insert_deadline(
        conn,
        incident_id=incident["id"],
        kind="approval_expiry",
        ref_id=approval["id"],
        due_in=policy.approval_expires_after,
    )
    return [expiry]


async def request_message(
    conn: asyncpg.Connection, services: Services, incident, approval, *, approved_by=()
) -> tuple[str, list[dict]]:
    """The request as it stands: steps, refusal, who approved so far, its pinned restore point."""
    scenario = services.runbook.scenario(approval["scenario"])
    refusal = None
    if services.scenario_refusal is not None and scenario is not None:
        refusal = await services.scenario_refusal(conn, scenario, approval["backup_run_id"])
    text, request = blocks.approval_request(
        incident,
        approval,
        scenario_title=scenario.title if scenario else "",
        steps=[step.name for step in scenario.steps] if scenario else [],
        contacts=services.runbook.contacts.values(),
        approvers=services.runbook.policy.approvers,
        refusal=refusal,
        approved_by=list(approved_by),
    )
    section = await restore_points.request_section(conn, approval)
    at = next((i for i, b in enumerate(request) if b["type"] == "actions"), len(request))
    return text, request[:at] + section + request[at:]


async def decide(
    services: Services,
    *,
    approval_id: int,
    user: str,
    approve: bool,
    channel: str | None,
    shown_backup: int | None = None,
    queue_run: QueueRun,
) -> str:
    """Approve or reject a pending request; return the answer for the clicker.

    Everything is decided and committed before this returns: the caller acknowledges after.
    An approval is one vote (refused by SQL for a requester or a second vote by the same
    person); the request is approved, and its run queued (`queue_run`, in this transaction),
    by the vote that completes it.
    """
    async with services.pool.acquire() as conn:
        approval = await store.clicked_approval(conn, approval_id=approval_id)
        if approval is None:
            raise Refusal("That approval request doesn't exist (it may be from another bot).")
        where = {"id": approval["incident_id"], "channel": approval["incident_channel"]}
        access.in_own_channel(where, channel, "approve or reject its rollback")
        if approval["state"] != "pending":
            raise Refusal(_said_of(approval, where, approval["pending_id"]))
        incident = await store.get_incident(conn, incident_id=approval["incident_id"])
        await access.may_decide(conn, services, user=user, incident=incident)
        scenario = services.runbook.scenario(approval["scenario"])
        if approve and services.scenario_refusal is not None and scenario is not None:
            refusal = await services.scenario_refusal(conn, scenario, approval["backup_run_id"])
            if refusal is not None:
                raise Refusal(f"This rollback can't start yet, so nothing was approved: {refusal}")
        run_id = answer = refusal = None
        async with conn.transaction():  # a refusal found here still commits an expiry
            incident = await store.lock_incident(conn, incident_id=incident["id"])
            current = await store.get_approval(conn, approval_id=approval_id)
            if (
                approve
                and shown_backup is not None
                and ((current["backup_run_id"] or 0) != shown_backup)
            ):
                raise Refusal(_restore_point_changed(current, shown_backup))
            if approve:
                refusal, answer, run_id = await _approve(
                    conn, services, incident, approval_id, user, queue_run
                )
            else:
                claimed = await store.claim_approval(
                    conn, approval_id=approval_id, to_state="rejected", actor=user
                )
                if claimed is None:
                    refusal = await _why_not(conn, services, approval_id, incident)
                else:
                    await _record_decision(conn, services, incident, claimed, user, queue_run)
    if refusal is not None:
        raise Refusal(refusal)
    rid = format_id(incident["id"])
    if answer is not None:
        return answer
    if run_id is not None:
        services.run_queued(run_id)
        return f"Approved. {rid}'s rollback is starting; follow the thread."
    return f"Rejected. {rid} stays open without a rollback."


def _restore_point_changed(approval, shown: int) -> str:
    """Why an Approve on the request as it was before a new restore point was chosen fails."""
    was = restore_points.backup_label(shown) if shown else "no backup"
    now = (
        restore_points.backup_label(approval["backup_run_id"])
        if approval["backup_run_id"]
        else "no backup"
    )
    return (
        f"The restore point changed since you saw this request ({was} then, {now} now), so "
        "nothing was approved. Read the request again and approve it if that is what you want."
    )


async def _approve(
    conn, services: Services, incident, approval_id: int, user: str, queue_run: QueueRun
):
    """(refusal, answer, run id): the vote, then the claim when it was the last one needed."""
    vote = await approval_store.add_vote(conn, approval_id=approval_id, user=user)
    if vote is None:
        return await _why_no_vote(conn, services, approval_id, incident, user), None, None
    claimed = await approval_store.claim_if_enough(conn, approval_id=approval_id, user=user)
    if claimed is not None:
        decided = await _record_decision(conn, services, incident, claimed, user, queue_run)
        return None, None, decided
    approval = await store.get_approval(conn, approval_id=approval_id)
    approved_by = await approval_store.counted_votes(conn, approval_id=approval_id)
    await store.record_event(
        conn,
        incident_id=incident["id"],
        actor=user,
        kind="approval_vote",
        detail={
            "approval_id": approval_id,
            "votes": len(approved_by),
            "required": approval["approvals_required"],
        },
    )
    text, request = await request_message(
        conn, services, incident, approval, approved_by=approved_by
    )
    await outbox.update(
        conn, key=approval_key(incident["id"], approval_id), text=text, blocks=request
    )
    tally = f"{len(approved_by)} of {approval['approvals_required']} approvals"
    await thread_note(
        conn,
        incident,
        f"{blocks.mention(user)} approved the rollback ({tally}); "
        "it starts when the rest have approved too.",
    )
    missing = approval["approvals_required"] - len(approved_by)
    more = f"{missing} more approver{'s approve' if missing > 1 else ' approves'}"
    answer = (
        f"Approval recorded ({tally}). {format_id(incident['id'])}'s rollback starts once {more}."
    )
    return None, answer, None


async def _why_no_vote(conn, services: Services, approval_id: int, incident, user: str) -> str:
    """Explain a vote the database refused: decided or expired meanwhile, or a second vote."""
    approval = await store.get_approval(conn, approval_id=approval_id)
    if approval["state"] != "pending" or approval["expires_at"] <= datetime.now(UTC):
        return await _why_not(conn, services, approval_id, incident)
    if await approval_store.requester_parts(conn, incident_id=incident["id"], user=user):
        return "You took part in asking for this rollback, so you can't approve it."
    approved_by = await approval_store.counted_votes(conn, approval_id=approval_id)
    return (
        f"You already approved this request ({len(approved_by)} of "
        f"{approval['approvals_required']} approvals); another approver must approve too."
    )


async def _state_now(conn, approval, incident) -> str:
    """What a stale click is told: the request's state now, and any newer request."""
    newer = await store.pending_approval(conn, incident_id=incident["id"])
    return _said_of(approval, incident, newer["id"] if newer is not None else None)


def _said_of(approval, incident, pending_id: int | None) -> str:
    """A decided request's state, said to whoever clicked it; `pending_id`: the incident's
    request still waiting, if any."""
    rid = format_id(incident["id"])
    state = approval["state"]
    who = f" by {blocks.mention(approval['decided_by'])}" if approval["decided_by"] else ""
    if state == "expired":
        said = (
            "This approval request has expired, so nothing was started. Ask for a new one with "
            f"`/rollback escalate {rid} critical`."
        )
    elif state == "withdrawn":
        said = f"This approval request was withdrawn when {rid} was closed; nothing changed."
    else:
        said = f"This request was already {state}{who}; nothing changed."
    if pending_id is not None and pending_id != approval["id"]:
        said += " A newer request is waiting in the thread; use its buttons."
    return said


async def _record_decision(
    conn, services: Services, incident, approval, user: str, queue_run: QueueRun
) -> int | None:
    approved = approval["state"] == "approved"
    event = Event.APPROVE if approved else Event.REJECT
    incident = await store.apply_transition(
        conn, incident=incident, event=event, actor=user, detail={"approval_id": approval["id"]}
    )
    await store.cancel_deadlines(conn, incident_id=incident["id"], kind="approval_expiry")
    await _show_decision(conn, services, incident, approval)
    await refresh_root(conn, services, incident)
    rid = format_id(incident["id"])
    if not approved:
        await thread_note(
            conn,
            incident,
            f"{blocks.mention(user)} rejected the rollback. "
            f"{rid} stays open; `/rollback escalate {rid} critical` asks again.",
        )
        return None
    run = await queue_run(conn, services, incident, approval, user)
    await thread_note(
        conn,
        incident,
        f"{blocks.mention(user)} approved the rollback "
        f"(`{approval['scenario']}`, {run['total_steps']} steps, restoring "
        f"{restore_points.restored(approval['backup_run_id'])}). It is queued.",
    )
    return run["id"]


async def _show_decision(conn, services: Services, incident, approval) -> None:
    text, decided = blocks.approval_decided(
        incident,
        approval,
        scenario_title=services.scenario_title(approval["scenario"]),
        approved_by=await approval_store.votes(conn, approval_id=approval["id"]),
    )
    decided = decided + await restore_points.decided_section(conn, approval)
    key = approval_key(incident["id"], approval["id"])
    await outbox.update(conn, key=key, text=text, blocks=decided)


async def _why_not(conn, services: Services, approval_id: int, incident) -> str:
    """Explain a lost claim; an expired request is marked expired on the way."""
    approval = await store.get_approval(conn, approval_id=approval_id)
    if approval["state"] == "pending":  # still pending: the claim failed because it expired
        await expire(conn, services, approval_id=approval_id, incident=incident)
        approval = await store.get_approval(conn, approval_id=approval_id)
    return await _state_now(conn, approval, incident)


async def expire(conn, services: Services, *, approval_id: int, incident) -> bool:
    """Mark a pending request expired and show it; False when it was no longer pending."""
    expired = await store.claim_approval(
        conn, approval_id=approval_id, to_state="expired", actor=None
    )
    if expired is None:
        return False
    if incident["state"] == State.AWAITING_APPROVAL:
        incident = await store.apply_transition(
            conn,
            incident=incident,
            event=Event.EXPIRE,
            actor="bot",
            detail={"approval_id": approval_id},
        )
        await refresh_root(conn, services, incident)
    await _show_decision(conn, services, incident, expired)
    await thread_note(conn, incident, "The rollback request expired unused.")
    return True


async def withdraw_pending(conn, services: Services, incident) -> None:
    """Close the incident's pending request (the incident is being closed)."""
    pending = await store.pending_approval(conn, incident_id=incident["id"])
    if pending is None:
        return
    withdrawn = await store.claim_approval(
        conn, approval_id=pending["id"], to_state="withdrawn", actor=None
    )
    if withdrawn is not None:
        await _show_decision(conn, services, incident, withdrawn)


__all__ = ["InvalidTransition", "QueueRun", "decide", "request_approval"]
