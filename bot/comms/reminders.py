"""Post-mortem reminders: a persistent deadline after resolve, repeated until marked done."""

from __future__ import annotations

import asyncpg
from slack_bolt.async_app import AsyncApp

from bot.comms import store as comms_store
from bot.incidents import access, store
from bot.incidents.approvals import root_key, thread_note
from bot.incidents.handlers import clicked
from bot.lifecycle import format_id
from bot.services import Refusal, Services
from bot.slack import blocks, outbox
from bot.slack.guard import clicked_channel, done_then_answer
from bot.slack.ids import Action

REMINDER = "postmortem_reminder"


def reminder_prefix(incident_id: int) -> str:
    """The outbox keys of an incident's reminders start with this."""
    return f"{format_id(incident_id)}/postmortem-reminder/"


async def schedule_on_resolve(
    conn: asyncpg.Connection, services: Services, incident
) -> list[asyncpg.Record]:
    """The first reminder, for a resolved incident that had (or proposed) a rollback."""
    if incident["postmortem_done_at"] is not None:
        return []
    rolled_back = await comms_store.latest_rollback(conn, incident_id=incident["id"])
    if rolled_back is None and incident["severity"] not in ("critical", "high"):
        return []  # MEDIUM / LOW without a rollback: the plan asks for no post-mortem
    await store.cancel_deadlines(conn, incident_id=incident["id"], kind=REMINDER)
    deadline = await store.insert_deadline(
        conn,
        incident_id=incident["id"],
        kind=REMINDER,
        due_in=services.runbook.policy.postmortem_reminder_after,
    )
    return [deadline]


async def fire(
    conn: asyncpg.Connection, services: Services, incident, deadline
) -> list[asyncpg.Record]:
    """A claimed reminder: remind in the thread and schedule the next; nothing once done."""
    if incident["postmortem_done_at"] is not None or incident["state"] != "resolved":
        return []
    rid = format_id(incident["id"])
    people = [incident["declared_by"]]
    people += [a for a in await comms_store.approvers(conn, incident_id=incident["id"]) if a]
    who = " ".join(blocks.mention(p) for p in dict.fromkeys(people))
    made = await comms_store.get_postmortem(conn, incident_id=incident["id"])
    status = (
        "The document exists; fill in the root cause, impact and action items."
        if made is not None and made["state"] == "created"
        else f"It has not been created yet: `/rollback postmortem {rid}` creates it."
    )
    text = f":memo: {who} reminder: {rid}'s post-mortem is not marked done. {status}"
    done = blocks.button("Mark post-mortem done", Action.POSTMORTEM_DONE, str(incident["id"]))
    await outbox.post(
        conn,
        channel=incident["channel"],
        text=text,
        blocks=[blocks.section(text), {"type": "actions", "elements": [done]}],
        key=reminder_prefix(incident["id"]) + str(deadline["id"]),
        thread_key=root_key(incident["id"]),
    )
    await store.record_event(
        conn,
        incident_id=incident["id"],
        actor="bot",
        kind="postmortem_reminder",
        detail={"deadline_id": deadline["id"]},
    )
    following = await store.insert_deadline(
        conn,
        incident_id=incident["id"],
        kind=REMINDER,
        due_in=services.runbook.policy.postmortem_reminder_after,
    )
    return [following]


async def mark_done(services: Services, *, incident_id: int, user: str, channel: str | None) -> str:
    """Mark the post-mortem done (once, from the incident's channel): reminders stop."""
    rid = format_id(incident_id)
    async with services.pool.acquire() as conn, conn.transaction():
        incident = await store.lock_incident(conn, incident_id=incident_id)
        if incident is None:
            raise Refusal(f"There is no incident {rid}.")
        access.in_own_channel(incident, channel, "mark its post-mortem done")
        if await comms_store.mark_postmortem_done(conn, incident_id=incident_id, user=user) is None:
            by = blocks.mention(incident["postmortem_done_by"])
            raise Refusal(f"{rid}'s post-mortem was already marked done by {by}.")
        await store.record_event(conn, incident_id=incident_id, actor=user, kind="postmortem_done")
        await store.cancel_deadlines(conn, incident_id=incident_id, kind=REMINDER)
        retired = (
            f":white_check_mark: {rid}'s post-mortem was marked done by {blocks.mention(user)}."
        )
        for key in await comms_store.message_keys(conn, prefix=reminder_prefix(incident_id)):
            await outbox.update(conn, key=key, text=retired, blocks=[blocks.section(retired)])
        await thread_note(conn, incident, f"{retired} No more reminders.")
    return f"{rid}'s post-mortem is marked done; reminders stopped."


def register(app: AsyncApp, services: Services) -> None:
    """Attach the Mark post-mortem done button."""

    @app.action(Action.POSTMORTEM_DONE)
    async def postmortem_done(ack, body, respond) -> None:
        async def work() -> str:
            user, incident_id, _ = clicked(body)
            return await mark_done(
                services, incident_id=incident_id, user=user, channel=clicked_channel(body)
            )

        await done_then_answer(ack, respond, work(), after=services.after_ack)
