"""The maintenance notice: rendered from its template, posted once per run and notice channel."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import asyncpg
from slack_bolt.async_app import AsyncApp

from bot.comms import store as comms_store
from bot.comms.render import Moment, Text, Who, render, sections
from bot.incidents import access, store
from bot.incidents.approvals import root_key
from bot.incidents.flow import pick_incident
from bot.lifecycle import format_id
from bot.runs import data_facts
from bot.runs import store as run_store
from bot.services import Refusal, Services
from bot.slack import blocks, outbox
from bot.slack.guard import clicked_channel, done_then_answer
from bot.slack.ids import Action

TEMPLATE = "maintenance_notice.md.j2"


def notice_key(incident_id: int, run_id: int, channel: str) -> str:
    """The outbox key of one run's notice in one channel (also its claim in `notices`)."""
    return f"{format_id(incident_id)}/notice/{run_id}/{channel}"


async def notice_context(conn: asyncpg.Connection, services: Services, incident, run) -> dict:
    """Everything the notice template shows, from stored rows."""
    checks = await comms_store.run_checks(conn, run_ids=[run["id"]])
    on_call = services.runbook.contacts.get("on_call")
    next_attempt = incident["next_attempt"]
    return {
        "project": Text(services.runbook.project_name),
        "incident": format_id(incident["id"]),
        "severity": incident["severity"].upper(),
        "scenario": Text(run["scenario"] or ""),
        "scenario_title": Text(services.scenario_title(run["scenario"])),
        "reason": Text(incident["summary"] or ""),
        "completed": run["state"] == "succeeded",
        "run_state": run["state"],
        "verified": run["verification_passed"] is True,
        "checks_ran": bool(checks),
        "failed_checks": [Text(c["name"]) for c in checks if not c["passed"]],
        "ended_at": Moment(run["ended_at"] or datetime.now(UTC)),
        "next_attempt": next_attempt.isoformat() if next_attempt else None,
        "on_call": Who(on_call) if on_call else None,
        "data": await notice_data(conn, run_id=run["id"]),
    }


async def notice_data(conn: asyncpg.Connection, *, run_id: int) -> dict:
    """What the notice may say about the data: from the run's stored comparison only."""
    facts = data_facts.data_facts(await data_facts.comparison_of(conn, run_id=run_id))
    return {
        "no_loss": facts["no_loss"],
        "compared": facts["compared"],
        "lost_rows": facts.get("lost_rows", 0),
        "lost": [Text(f"{rows} in {name}") for name, rows in facts["lost"]],
        "kept": Text(facts.get("kept") or ""),
    }


async def notice_text(conn: asyncpg.Connection, services: Services, incident, run) -> str:
    """The notice as Slack mrkdwn."""
    context = await notice_context(conn, services, incident, run)
    return render(TEMPLATE, context, target="slack", runbook=services.runbook.path)


def _fallback(services: Services) -> str:
    return f"System Maintenance Notice: {blocks.escape(services.runbook.project_name, limit=80)}"


async def post_notices(
    conn: asyncpg.Connection, services: Services, incident, run, *, user: str, refresh: bool
) -> tuple[list[str], list[str]]:
    """Owe the notice in each notice channel not posted yet (`refresh`: edit the others).

    Call inside a transaction; returns (channels posted, channels updated).
    """
    notice = sections(await notice_text(conn, services, incident, run))
    posted, updated = [], []
    for channel in services.runbook.notice_channels:
        key = notice_key(incident["id"], run["id"], channel)
        if await comms_store.claim_notice(
            conn, run_id=run["id"], channel=channel, message_key=key, user=user
        ):
            rid = format_id(incident["id"])
            await outbox.post(
                conn,
                channel=channel,
                text=_fallback(services),
                blocks=notice,
                key=key,
                failure_note=(
                    root_key(incident["id"]),
                    f"I couldn't post the maintenance "
                    f"notice in <#{channel}>, so nobody there was notified. Invite me "
                    f"to it, then `/rollback notice {rid}` and press Post notice.",
                ),
            )
            posted.append(channel)
        elif refresh:
            await outbox.update(conn, key=key, text=_fallback(services), blocks=notice)
            updated.append(channel)
    if posted or updated:
        where = ", ".join(f"<#{c}>" for c in posted)
        changed = ", ".join(f"<#{c}>" for c in updated)
        intro = " ".join(
            part
            for part in (
                f":mega: Maintenance notice sent to {where}." if posted else "",
                f":pencil2: Maintenance notice updated in {changed}." if updated else "",
            )
            if part
        )
        await outbox.post(
            conn,
            channel=incident["channel"],
            text=intro,
            blocks=[blocks.section(intro), *notice],
            thread_key=root_key(incident["id"]),
        )
        await store.record_event(
            conn,
            incident_id=incident["id"],
            run_id=run["id"],
            actor=user,
            kind="notice_posted",
            detail={"posted": posted, "updated": updated},
        )
    return posted, updated


async def preview(services: Services, parsed, *, user: str, channel: str) -> dict:
    """`/rollback notice ID [next DATE]`: the notice, shown privately with a Post button."""
    async with services.pool.acquire() as conn:
        incident = await pick_incident(
            conn, incident_id=parsed.incident_id, channel=channel, verb="notice"
        )
        access.in_own_channel(incident, channel, "prepare its notice")
        if parsed.next_attempt:
            async with conn.transaction():
                when = date.fromisoformat(parsed.next_attempt)
                await comms_store.set_next_attempt(conn, incident_id=incident["id"], when=when)
                await store.record_event(
                    conn,
                    incident_id=incident["id"],
                    actor=user,
                    kind="next_attempt_set",
                    detail={"date": parsed.next_attempt},
                )
            incident = await store.get_incident(conn, incident_id=incident["id"])
        run = await comms_store.latest_rollback(conn, incident_id=incident["id"], ended=True)
        if run is None:
            raise Refusal(
                f"{format_id(incident['id'])} has no finished rollback yet; its notice is posted "
                "by itself when the rollback ends."
            )
        text = await notice_text(conn, services, incident, run)
        done = {n["channel"] for n in await comms_store.notices(conn, run_id=run["id"])}
    return {
        "text": f"Preview of {format_id(incident['id'])}'s maintenance notice",
        "blocks": _preview_blocks(services, text, run["id"], done),
    }


def _preview_blocks(services: Services, text: str, run_id: int, done: set[str]) -> list[dict]:
    channels = services.runbook.notice_channels
    targets = ", ".join(
        f"<#{c}>" + (" (posted; will be updated)" if c in done else "") for c in channels
    )
    result: list[dict[str, Any]] = [blocks.context("Preview: only you see this.")]
    result += sections(text)
    if not channels:
        result.append(blocks.context("The runbook has no `[notify] notice_channels`."))
        return result
    result.append(blocks.context(f"Post notice sends it to {targets}."))
    post = blocks.button("Post notice", Action.POST_NOTICE, str(run_id), style="primary")
    result.append({"type": "actions", "block_id": f"notice-{run_id}", "elements": [post]})
    return result


async def post_clicked(services: Services, body: dict) -> str:
    """The preview's Post notice button: post where missing, update where already posted."""
    user = (body.get("user") or {}).get("id")
    value = str(((body.get("actions") or [{}])[0]).get("value") or "")
    if not user or not value.isdigit():
        raise Refusal("That button's payload is malformed; nothing changed.")
    if not services.runbook.notice_channels:
        raise Refusal("The runbook has no `[notify] notice_channels`, so there is nowhere to post.")
    async with services.pool.acquire() as conn, conn.transaction():
        run = await run_store.get_run(conn, run_id=int(value))
        if run is None or not run["incident_id"] or run["ended_at"] is None:
            raise Refusal("That rollback run doesn't exist or hasn't ended; nothing was posted.")
        incident = await store.lock_incident(conn, incident_id=run["incident_id"])
        access.in_own_channel(incident, clicked_channel(body), "post its notice")
        posted, updated = await post_notices(conn, services, incident, run, user=user, refresh=True)
    parts = [f"posted to {', '.join(f'<#{c}>' for c in posted)}" if posted else ""]
    parts.append(f"updated in {', '.join(f'<#{c}>' for c in updated)}" if updated else "")
    return "Notice " + " and ".join(p for p in parts if p) + "."


def register(app: AsyncApp, services: Services) -> None:
    """Attach the Post notice button."""

    @app.action(Action.POST_NOTICE)
    async def post_notice(ack, body, respond) -> None:
        await done_then_answer(ack, respond, post_clicked(services, body), after=services.after_ack)
