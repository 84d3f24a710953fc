"""`/rollback checklist [pre|during|post]`: the runbook's checklists, ticked from what happened."""

from __future__ import annotations

import contextlib
import logging
import re

import aiohttp
import asyncpg
from slack_bolt.async_app import AsyncApp

from bot.comms import store as comms_store
from bot.comms.checklist_rules import PHASES, TITLES, Facts, Item, items_ticked_by, tick
from bot.incidents import access, store
from bot.lifecycle import format_id
from bot.runs import data_facts
from bot.runs import store as run_store
from bot.services import Refusal, Services
from bot.slack import blocks
from bot.slack.guard import clicked_channel, done_then_answer
from bot.slack.ids import Action
from bot.slack.parsing import USAGE

log = logging.getLogger(__name__)
_VALUE = re.compile(r"([0-9]{1,12}):(pre|during|post):([0-9]{1,4}):(all|pre|during|post)")
MAX_ITEMS = 44  # with headers and a context line, under Slack's 50 blocks per message


async def facts(conn: asyncpg.Connection, services: Services, incident) -> Facts:
    """What happened, for the incident's checklists (or the global pre list when None)."""
    runbook = services.runbook
    backup_items: frozenset[str] = frozenset()
    latest = await run_store.latest_backup(conn)
    if latest is not None:
        results = await run_store.step_results(conn, run_id=latest[0]["id"])
        done = [r["name"] for r in results if r["status"] == "succeeded"]
        backup_items = items_ticked_by(runbook.backup_steps, done)
    incident_id = incident["id"] if incident else None
    manual = await comms_store.checklist_ticks(conn, incident_id=incident_id)
    rehearsed = await comms_store.rehearsal_passed(conn)
    if incident is None:
        return Facts(backup_items=backup_items, rehearsed=rehearsed, manual=manual)
    runs = await comms_store.incident_runs(conn, incident_id=incident_id)
    steps = await comms_store.run_steps(conn, run_ids=[r["id"] for r in runs])
    step_items: set[str] = set()
    for run in runs:
        scenario = runbook.scenario(run["scenario"]) if run["scenario"] else None
        ok = [s["name"] for s in steps if s["run_id"] == run["id"] and s["status"] == "succeeded"]
        step_items |= items_ticked_by(scenario.steps if scenario else (), ok)
    last = runs[-1] if runs else None
    checks = await comms_store.run_checks(conn, run_ids=[last["id"]] if last else [])
    made = await comms_store.get_postmortem(conn, incident_id=incident_id)
    compared = await data_facts.comparison_of(conn, run_id=last["id"]) if last else None
    return Facts(
        backup_items=backup_items,
        step_items=frozenset(step_items),
        rehearsed=rehearsed,
        verified=bool(last and last["verification_passed"]),
        passed_checks=frozenset(c["name"].lower() for c in checks if c["passed"]),
        notified=bool(await comms_store.delivered_notices(conn, incident_id=incident_id)),
        postmortem=made is not None and made["state"] == "created",
        no_data_lost=data_facts.data_facts(compared)["no_loss"],
        manual=manual,
    )


def checklist_blocks(incident, items: list[Item], shown: str) -> list[dict]:
    """The checklist: one line per item, a Tick button on those not ticked yet."""
    owner = format_id(incident["id"]) if incident else "the integration (no open incident here)"
    result = [blocks.section(f"*Rollback checklist* for {owner}")]
    for phase in dict.fromkeys(item.phase for item in items):
        mine = [i for i in items if i.phase == phase]
        done = sum(1 for i in mine if i.why)
        result.append(blocks.section(f"*{TITLES[phase]}* ({done}/{len(mine)})"))
        for item in mine[:MAX_ITEMS]:
            result.append(_line(incident, item, shown))
    return result[:50]


def _line(incident, item: Item, shown: str) -> dict:
    name = blocks.escape(item.name, limit=200)
    if item.why:
        by = f"ticked by {blocks.mention(item.by)}" if item.by else item.why
        return blocks.section(f":ballot_box_with_check: {name} · _{by}_")
    value = f"{incident['id'] if incident else 0}:{item.phase}:{item.index}:{shown}"
    line = blocks.section(f":white_large_square: {name}")
    line["accessory"] = blocks.button("Tick", Action.TICK_CHECKLIST, value)
    return line


async def _view(services: Services, incident, shown: str) -> list[dict]:
    phases = PHASES if shown == "all" else (shown,)
    if incident is None:
        phases = ("pre",)
    async with services.pool.acquire() as conn:
        found = await facts(conn, services, incident)
    return checklist_blocks(incident, tick(services.runbook.checklists, found, phases), shown)


async def command(services: Services, parsed, *, channel: str, respond) -> None:
    """Show the channel's open incident's checklists (else the global pre list), privately."""
    if not services.runbook.checklists:
        raise Refusal("The runbook has no `[checklists]` (pre, during, post).")
    async with services.pool.acquire() as conn:
        open_here = await store.open_incidents(conn, channel=channel)
    if len(open_here) > 1:  # like every verb: an omitted id means the only open incident
        ids = ", ".join(format_id(i["id"]) for i in open_here[:10])
        raise Refusal(
            f"This channel has {len(open_here)} open incidents ({ids}); the checklist is shown "
            "for one at a time. Resolve the others, or run it in the incident's own channel."
        )
    incident = open_here[0] if open_here else None
    if incident is None and parsed.phase in ("during", "post"):
        raise Refusal(
            f"The {parsed.phase} checklist belongs to an incident, and this channel has no open "
            "one. `/rollback checklist pre` shows the pre-integration list."
        )
    view = await _view(services, incident, parsed.phase or "all")
    await respond(text="Rollback checklist", blocks=view, response_type="ephemeral")


async def tick_clicked(services: Services, body: dict, respond) -> None:
    """A Tick button: record who ticked which item (audit log), then show the list again."""
    user = (body.get("user") or {}).get("id")
    match = _VALUE.fullmatch(str(((body.get("actions") or [{}])[0]).get("value") or ""))
    if not user or not match:
        raise Refusal("That button's payload is malformed; nothing changed.")
    incident_id, phase, index, shown = int(match[1]) or None, match[2], int(match[3]), match[4]
    names = services.runbook.checklists.get(phase, ())
    if index >= len(names):
        raise Refusal("That checklist item is no longer in the runbook; nothing changed.")
    async with services.pool.acquire() as conn:
        incident = None
        if incident_id is not None:
            incident = await store.get_incident(conn, incident_id=incident_id)
            if incident is None:
                raise Refusal("That incident doesn't exist; nothing changed.")
            access.in_own_channel(incident, clicked_channel(body), "tick its checklist")
        await store.record_event(
            conn,
            incident_id=incident_id,
            actor=user,
            kind="checklist_tick",
            detail={"phase": phase, "item": names[index]},
        )
    # Shown again once acknowledged: however that goes, the tick is recorded.
    services.after_ack.start(_show_again(services, incident, shown, respond))


async def _show_again(services: Services, incident, shown: str, respond) -> None:
    """Redraw the list the Tick was pressed in; if that fails, say the tick still counts."""
    try:
        view = await _view(services, incident, shown)
        await respond(text="Rollback checklist", blocks=view, replace_original=True)
    except (OSError, TimeoutError, aiohttp.ClientError, asyncpg.PostgresError) as error:
        log.warning("checklist not shown again after a tick: %s", error)
        with contextlib.suppress(OSError, TimeoutError, aiohttp.ClientError):
            await respond(
                text=":warning: Your tick is recorded, but I couldn't show the list again "
                f"({type(error).__name__}). `{USAGE['checklist']}` shows it.",
                response_type="ephemeral",
                replace_original=False,
            )


def register(app: AsyncApp, services: Services) -> None:
    """Attach the Tick button."""

    @app.action(Action.TICK_CHECKLIST)
    async def tick_item(ack, body, respond) -> None:
        # The tick is recorded before the acknowledgement, like every button's change; the
        # list is shown again after it.
        await done_then_answer(
            ack, respond, tick_clicked(services, body, respond), after=services.after_ack
        )
