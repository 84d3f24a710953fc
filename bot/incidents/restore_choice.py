"""The approval request's "Restore another backup" menu: an approver pins another backup."""

from __future__ import annotations

import re

import asyncpg
from slack_bolt.async_app import AsyncApp

from bot.incidents import access, approval_store, approvals, restore_points, store
from bot.lifecycle import format_id
from bot.services import Refusal, Services
from bot.slack import outbox
from bot.slack.guard import clicked_channel, done_then_answer
from bot.slack.ids import Action

_ID = re.compile(r"[0-9]{1,12}")
_BLOCK = re.compile(r"restore-point-([0-9]{1,12})")


def chosen(body: dict) -> tuple[str, int, int]:
    """(user, approval id, backup run id) from a menu choice; Refusal when malformed."""
    user = (body.get("user") or {}).get("id")
    action = (body.get("actions") or [{}])[0]
    block = _BLOCK.fullmatch(str(action.get("block_id") or ""))
    value = str((action.get("selected_option") or {}).get("value") or "")
    if not user or block is None or not _ID.fullmatch(value):
        raise Refusal("That restore-point choice is malformed; nothing changed.")
    return user, int(block.group(1)), int(value)


async def choose(services: Services, body: dict) -> str:
    """Pin the chosen backup on the pending request, record who chose it, show it."""
    user, approval_id, backup_id = chosen(body)
    async with services.pool.acquire() as conn:
        approval = await store.get_approval(conn, approval_id=approval_id)
        if approval is None:
            raise Refusal("That approval request doesn't exist; nothing changed.")
        incident = await store.get_incident(conn, incident_id=approval["incident_id"])
        access.in_own_channel(incident, clicked_channel(body), "choose its restore point")
        await access.may_decide(conn, services, user=user, incident=incident)
        async with conn.transaction():
            # The same lock as an Approve: a choice and a vote never interleave.
            await store.lock_incident(conn, incident_id=incident["id"])
            try:
                changed = await restore_points.choose(
                    conn, approval_id=approval_id, backup_run_id=backup_id, user=user
                )
            except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError):
                raise Refusal(
                    f"{restore_points.backup_label(backup_id)} is not a completed backup, so it "
                    "can't be restored; nothing changed. `/rollback backups` lists them."
                ) from None
            if changed is None:
                raise Refusal(
                    "This request is no longer pending (approved, rejected or expired), so its "
                    "restore point can't change; nothing changed."
                )
            backup = await restore_points.backup_row(conn, backup_id)
            # Approvals given so far were for the previous restore point: they don't carry over.
            withdrawn = await approval_store.clear_votes(conn, approval_id=approval_id)
            await store.record_event(
                conn,
                incident_id=incident["id"],
                actor=user,
                kind="restore_point_chosen",
                detail={"approval_id": approval_id, "backup_run_id": backup_id,
                        "previous": approval["backup_run_id"], "votes_withdrawn": withdrawn},
            )  # fmt: skip
            text, request = await approvals.request_message(conn, services, incident, changed)
            key = approvals.approval_key(incident["id"], approval_id)
            await outbox.update(conn, key=key, text=text, blocks=request)
            cleared = (
                " The approvals already given were for the previous restore point and were "
                f"withdrawn ({', '.join(f'<@{u}>' for u in withdrawn)}): approve again."
                if withdrawn
                else ""
            )
            await approvals.thread_note(
                conn,
                incident,
                f"{restore_points.describe(backup)} is now the restore point of "
                f"{format_id(incident['id'])}'s rollback request, chosen by <@{user}>.{cleared}",
            )
    return f"The rollback request now restores {restore_points.backup_label(backup_id)}."


def register(app: AsyncApp, services: Services) -> None:
    """Attach the restore-point menu."""

    @app.action(Action.CHOOSE_BACKUP)
    async def choose_backup(ack, body, respond) -> None:
        await done_then_answer(ack, respond, choose(services, body), after=services.after_ack)
