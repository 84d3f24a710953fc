"""Rollback approval: request, decide (at most once), expire, and hand off to the runner."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from slack_sdk.errors import SlackApiError

from bot import blocks, outbox, restore_points, store
from bot.incidents import Event, InvalidTransition, State, format_id
from bot.outbox import slack_error_code
from bot.services import Refusal, Services


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


async def request_message(conn: asyncpg.Connection, services: Services, incident, approval):
    """The approval request as it stands: steps, refusal, and its pinned restore point."""
    scenario = services.runbook.scenario(approval["scenario"])
    refusal = None
    if services.scenario_refusal is not None:
        refusal = await services.scenario_refusal(conn, scenario, approval["backup_run_id"])
    text, request = blocks.approval_request(
        incident,
        approval,
        scenario_title=scenario.title,
        steps=[step.name for step in scenario.steps],
        contacts=services.runbook.contacts.values(),
        approvers=services.runbook.policy.approvers,
        refusal=refusal,
    )
    section = await restore_points.request_section(conn, approval)
    at = next((i for i, b in enumerate(request) if b["type"] == "actions"), len(request))
    return text, request[:at] + section + request[at:]


async def may_approve(services: Services, *, user: str, incident) -> None:
    """Raise Refusal unless `user` may decide this incident's rollback."""
    rid = format_id(incident["id"])
    if user == incident["declared_by"]:
        raise Refusal(
            f"You declared {rid}, so a second person must approve its rollback. "
            "Ask a teammate to press Approve."
        )
    approvers = services.runbook.policy.approvers
    if not approvers or user in approvers:
        return
    for group in (a for a in approvers if a.startswith("S")):
        try:
            members = await services.members_of(group)
        except SlackApiError as error:
            code = slack_error_code(error)
            raise Refusal(
                f"I couldn't read the approver group {blocks.mention(group)} ({code}), "
                "so I can't tell whether you may approve. A Slack admin must grant the app "
                "`usergroups:read`; meanwhile an approver listed by user ID can decide."
            ) from None
        if user in members:
            return
    who = ", ".join(blocks.mention(a) for a in approvers)
    raise Refusal(f"Only the runbook's approvers may decide {rid}'s rollback: {who}.")


async def decide(services: Services, *, approval_id: int, user: str, approve: bool) -> str:
    """Approve or reject a pending request exactly once; return the answer for the clicker."""
    async with services.pool.acquire() as conn:
        approval = await store.get_approval(conn, approval_id=approval_id)
        if approval is None:
            raise Refusal("That approval request doesn't exist (it may be from another bot).")
        incident = await store.get_incident(conn, incident_id=approval["incident_id"])
        await may_approve(services, user=user, incident=incident)
        scenario = services.runbook.scenario(approval["scenario"])
        if approve and services.scenario_refusal is not None and scenario is not None:
            refusal = await services.scenario_refusal(conn, scenario, approval["backup_run_id"])
            if refusal is not None:
                raise Refusal(f"This rollback can't start yet, so nothing was approved: {refusal}")
        async with conn.transaction():
            incident = await store.lock_incident(conn, incident_id=incident["id"])
            claimed = await store.claim_approval(
                conn,
                approval_id=approval_id,
                to_state="approved" if approve else "rejected",
                actor=user,
            )
            if claimed is None:
                answer = await _why_not(conn, services, approval_id, incident)
            else:
                run_id = await _record_decision(conn, services, incident, claimed, user)
                answer = None
    if answer is not None:
        raise Refusal(answer)
    if run_id is not None:
        services.run_queued(run_id)
        return f"Approved. {format_id(incident['id'])}'s rollback is starting; follow the thread."
    return f"Rejected. {format_id(incident['id'])} stays open without a rollback."


async def _record_decision(conn, services: Services, incident, approval, user: str) -> int | None:
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
    scenario = services.runbook.scenario(approval["scenario"])
    restore_point = approval["backup_run_id"]  # pinned at request time: restored, always
    run = await store.insert_run(
        conn,
        kind="rollback",
        channel=incident["channel"],
        requested_by=user,
        ts=datetime.now(UTC).strftime("%Y%m%d_%H%M%S"),
        total_steps=len(scenario.steps) if scenario else 0,
        incident_id=incident["id"],
        approval_id=approval["id"],
        scenario=approval["scenario"],
        backup_run_id=restore_point,
    )
    await thread_note(
        conn,
        incident,
        f"{blocks.mention(user)} approved the rollback "
        f"(`{approval['scenario']}`, {run['total_steps']} steps, restoring "
        f"{restore_points.restored(restore_point)}). It is queued.",
    )
    return run["id"]


async def _show_decision(conn, services: Services, incident, approval) -> None:
    text, decided = blocks.approval_decided(
        incident, approval, scenario_title=services.scenario_title(approval["scenario"])
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
    if approval["state"] == "expired":
        return (
            "This approval request has expired, so nothing was started. Ask for a new one with "
            f"`/rollback escalate {format_id(incident['id'])} critical`."
        )
    who = blocks.mention(approval["decided_by"]) if approval["decided_by"] else "the bot"
    return f"This request was already {approval['state']} by {who}; nothing changed."


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


__all__ = ["InvalidTransition", "decide", "request_approval"]
