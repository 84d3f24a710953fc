"""Restore points: the completed backups a rollback may restore, labelled, listed and chosen.

A backup taken while an incident was open (`runs.open_incidents`, set by the database) may
hold the failed state: it is labelled so and never the default. The default restore point is
the newest completed backup taken while no incident was open. An approval request pins its
restore point when it is made (`approvals.backup_run_id`); the rollback restores that one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from actions.artifacts import artifact_file
from actions.durations import format_duration
from bot.lifecycle import format_id
from bot.slack import blocks
from bot.slack.ids import Action

CHOICES = 10  # completed backups offered on a request (newest first)
LISTED = 15  # backups listed by `/rollback backups`


def backup_label(run_id: int) -> str:
    """How every message names a backup: `backup #7`."""
    return f"backup #{run_id}"


async def newest_clean(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The newest completed backup taken while no incident was open, or None."""
    return await conn.fetchrow(
        "select * from runs where kind = 'backup' and state = 'succeeded'"
        " and open_incidents = '{}' order by ended_at desc, id desc limit 1"
    )


async def completed(conn: asyncpg.Connection, *, limit: int = CHOICES) -> list[asyncpg.Record]:
    """The newest completed backups, newest first."""
    return await conn.fetch(
        "select * from runs where kind = 'backup' and state = 'succeeded'"
        " order by ended_at desc, id desc limit $1",
        limit,
    )


async def pin_default(conn: asyncpg.Connection, *, approval_id: int) -> asyncpg.Record:
    """Pin the default restore point on a new request (none when no clean backup exists)."""
    return await conn.fetchrow(
        "update approvals set backup_run_id = (select id from runs where kind = 'backup'"
        " and state = 'succeeded' and open_incidents = '{}' order by ended_at desc, id desc"
        " limit 1), backup_chosen_by = null where id = $1 returning *",
        approval_id,
    )


async def choose(
    conn: asyncpg.Connection, *, approval_id: int, backup_run_id: int, user: str
) -> asyncpg.Record | None:
    """Pin another restore point on a pending, unexpired request; None when it was decided.

    Raises asyncpg.CheckViolationError when the backup is not a completed backup.
    """
    return await conn.fetchrow(
        "update approvals set backup_run_id = $2, backup_chosen_by = $3 where id = $1"
        " and state = 'pending' and expires_at > now() returning *",
        approval_id,
        backup_run_id,
        user,
    )


async def backup_row(conn: asyncpg.Connection, run_id: int | None) -> asyncpg.Record | None:
    """The backup run, or None."""
    if run_id is None:
        return None
    return await conn.fetchrow("select * from runs where id = $1 and kind = 'backup'", run_id)


def during_label(backup) -> str | None:
    """':warning: taken while RB-3 was open', or None for a backup taken with none open."""
    ids = list(backup["open_incidents"] or [])
    if not ids:
        return None
    which = ", ".join(format_id(i) for i in ids)
    return f"taken while {which} {'was' if len(ids) == 1 else 'were'} open"


def describe(backup, *, now: datetime | None = None) -> str:
    """`backup #7, taken <date> by <@U>, 2h old` (+ the during-incident label)."""
    now = now or datetime.now(UTC)
    when = backup["ended_at"] or backup["started_at"] or backup["created_at"]
    age = format_duration(max(0.0, (now - when).total_seconds()))
    text = (
        f"{backup_label(backup['id'])}, taken {blocks.slack_time(when)} by "
        f"{blocks.mention(backup['requested_by'])}, {age} old"
    )
    label = during_label(backup)
    return text + (f" — :warning: *{label}*: it may hold the failed state" if label else "")


def option(backup) -> dict[str, Any]:
    """A static_select option for one backup (plain text, at most 75 characters)."""
    when = (backup["ended_at"] or backup["created_at"]).astimezone(UTC)
    text = f"#{backup['id']} · {when:%Y-%m-%d %H:%M} UTC"
    if label := during_label(backup):
        text += f" · {label}"
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": str(backup["id"])}


async def request_section(conn: asyncpg.Connection, approval) -> list[dict[str, Any]]:
    """The request's restore point: what it restores, who chose it, and a menu to change it."""
    pinned = await backup_row(conn, approval["backup_run_id"])
    choices = await completed(conn)
    if pinned is None:
        text = (
            "*Restore point:* none. No completed backup was taken while no incident was open"
            + (", so I won't pick one: choose one below if it is safe to restore." if choices
               else "; take one with `/rollback backup` when the system is healthy.")
        )  # fmt: skip
    else:
        chooser = approval["backup_chosen_by"]
        by = f"chosen by {blocks.mention(chooser)}" if chooser else "the default"
        text = f"*Restore point:* {describe(pinned)} ({by})."
        newer = [c for c in choices if c["ended_at"] > pinned["ended_at"]]
        if newer and not chooser:
            text += (
                f" Newer backups exist but were taken while an incident was open "
                f"({', '.join(backup_label(c['id']) for c in newer)}); they are not chosen "
                "unless an approver picks one."
            )
    result = [blocks.section(text)]
    if choices and approval["state"] == "pending":
        menu: dict[str, Any] = {
            "type": "static_select",
            "action_id": Action.CHOOSE_BACKUP,
            "placeholder": {"type": "plain_text", "text": "Restore another backup"},
            "options": [option(c) for c in choices],
        }
        if pinned is not None and any(c["id"] == pinned["id"] for c in choices):
            menu["initial_option"] = option(pinned)
        result.append(
            {"type": "actions", "block_id": f"restore-point-{approval['id']}", "elements": [menu]}
        )
    return result


def artifact_state(artifacts: list[asyncpg.Record]) -> str:
    """'intact' or what is wrong, by size and modification time (no re-hashing here)."""
    problems = []
    for a in artifacts:
        if a["kind"] != "file":
            continue
        path = artifact_file(a["path"], Path(a["workdir"]))
        try:
            stat = os.stat(path)
        except OSError:
            problems.append(f"{a['name']} missing")
            continue
        if stat.st_size != a["size"]:
            problems.append(f"{a['name']} changed size")
        elif a["mtime"] is not None and abs(stat.st_mtime - a["mtime"]) > 1e-3:
            problems.append(f"{a['name']} modified")
    return "files intact (size and mtime)" if not problems else "NOT intact: " + ", ".join(problems)


async def listing(conn: asyncpg.Connection) -> str:
    """`/rollback backups`: the newest backups with their state, label and artifacts."""
    rows = await conn.fetch(
        "select * from runs where kind = 'backup' order by created_at desc, id desc limit $1",
        LISTED,
    )
    if not rows:
        return "No backups yet. Take one with `/rollback backup` while the system is healthy."
    default = await newest_clean(conn)
    lines = ["*Restore points* (newest first):"]
    for row in rows:
        artifacts = await conn.fetch("select * from artifacts where run_id = $1", row["id"])
        state = {"succeeded": "completed"}.get(row["state"], row["state"])
        line = f"• {describe(row)} — *{state}*"
        if row["state"] == "succeeded":
            line += f"; {artifact_state(list(artifacts))}"
        if default is not None and row["id"] == default["id"]:
            line += "; *the default restore point*"
        lines.append(line)
    lines.append(
        "_A rollback restores the restore point shown on its approval request; the default is "
        "the newest completed backup taken while no incident was open. Files are checked here "
        "by size and modification time; their sha256 is checked in full before a restore._"
    )
    return "\n".join(lines)


def restored(backup_run_id: int | None) -> str:
    """How the approval note names what the run restores."""
    return backup_label(backup_run_id) if backup_run_id is not None else "no backup"


async def decided_section(conn: asyncpg.Connection, approval) -> list[dict[str, Any]]:
    """The decided request's line naming the restore point it pinned (and who chose it)."""
    pinned = await backup_row(conn, approval["backup_run_id"])
    if pinned is None:
        return [blocks.context("Restore point: none pinned.")]
    chooser = approval["backup_chosen_by"]
    by = f", chosen by {blocks.mention(chooser)}" if chooser else " (the default)"
    return [blocks.context(f"Restore point: {describe(pinned)}{by}.")]
