"""One operation at a time per project: runs held behind the active one, and their turn.

The rule is the `runs_one_operation` unique index (migration 005): at most one run is
queued, running or stopped waiting for a person. A run asked for meanwhile is 'held'; when
the project is free, whichever process gets there first queues the oldest held run (one
UPDATE, the index deciding ties). Each function writes in the caller's transaction and owes
its messages through the outbox; no Slack I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from bot.incidents.approvals import root_key, thread_note
from bot.lifecycle import format_id
from bot.runs import render as run_blocks
from bot.runs import store as run_store
from bot.services import Services
from bot.slack import blocks, outbox

_STATE_WORDS = {
    "queued": "about to start",
    "running": "running",
    "waiting": "stopped at a failed step, waiting for Retry, Skip or Abort",
    "interrupted": "interrupted, waiting for Resume or Abort",
    "held": "waiting for its turn",
}


def thread_of(run) -> str:
    """The thread a run reports in: its incident's, or the backup's own."""
    return root_key(run["incident_id"]) if run["incident_id"] else f"run/{run['id']}/root"


def describe(run) -> str:
    """A run in words, for people: which one, whose, where, and what it is doing."""
    state = _STATE_WORDS.get(run["state"], run["state"])
    lease = run["lease_until"]
    if run["state"] == "running" and lease is not None and lease < datetime.now(UTC):
        state = f"running, but its process stopped renewing its lease at {lease:%H:%M:%S} UTC"
    if run["incident_id"]:
        where = f" in its thread in <#{run['channel']}>" if run["channel"] else ""
        return f"{format_id(run['incident_id'])}'s rollback (run {run['id']}, {state}){where}"
    if not run["channel"]:
        return (
            f"a backup started from the command line by {run['requested_by']} "
            f"(run {run['id']}, {state}; it has no Slack thread)"
        )
    return f"the backup (run {run['id']}, {state}) in its thread in <#{run['channel']}>"


def cli_hint(run) -> str:
    """What to do about a command-line run, which has no thread and no buttons."""
    return (
        f"On the bot's host, `rollback-bot runs` shows it; `rollback-bot abort {run['id']}` "
        "ends it if it is stopped or its process is gone."
    )


async def enqueue(conn: asyncpg.Connection, services: Services, **fields) -> asyncpg.Record:
    """Insert a run: queued when the project is free, else held, its thread saying behind what."""
    run = await run_store.enqueue_run(conn, **fields)
    if run["state"] != "held":
        return run
    active = await run_store.get_run(conn, run_id=run["waits_for"]) if run["waits_for"] else None
    what = "This rollback" if run["kind"] == "rollback" else "This backup"
    ahead = describe(active) if active else "another operation"
    hint = f" {cli_hint(active)}" if active is not None and not active["channel"] else ""
    text = (
        f":hourglass: One operation at a time on this project: {ahead} is active. "
        f"{what} (run {run['id']}) waits behind it and starts by itself when it ends.{hint}"
    )
    await _note(conn, run, text, opening=True)
    return run


async def queue_rollback(
    conn: asyncpg.Connection, services: Services, incident, approval, user: str
) -> asyncpg.Record:
    """The run of a request `user` just approved: queued, or held behind the active operation."""
    scenario = services.runbook.scenario(approval["scenario"])
    restore_point = approval["backup_run_id"]  # pinned at request time: restored, always
    return await enqueue(
        conn,
        services,
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


async def promote(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """If the project is free, queue the oldest held run and say so in its thread."""
    run = await run_store.promote_held(conn)
    if run is not None:
        await _note(conn, run, f":arrow_forward: The project is free: run {run['id']} starts now.")
    return run


async def _note(conn, run, text: str, *, opening: bool = False) -> None:
    if not run["channel"]:
        return
    if run["incident_id"]:
        incident = await conn.fetchrow("select * from incidents where id = $1", run["incident_id"])
        await thread_note(conn, incident, text)
        return
    if opening:  # a held backup's thread opens now, so the wait can be said in it
        root_text, root = run_blocks.backup_root(run["requested_by"], run["total_steps"])
        await outbox.post(conn, channel=run["channel"], text=root_text, blocks=root,
                          key=thread_of(run))  # fmt: skip
    fallback, note = blocks.note(text)
    await outbox.post(
        conn, channel=run["channel"], text=fallback, blocks=note, thread_key=thread_of(run)
    )


async def has_message(conn: asyncpg.Connection, key: str) -> bool:
    """Whether a message with this logical key is already owed or posted."""
    return bool(await conn.fetchval("select 1 from messages where key = $1", key))
