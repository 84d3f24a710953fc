"""The App Home tab: open incidents, the last completed backup and its age, runs in progress."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from actions.durations import format_duration
from bot.comms import store as comms_store
from bot.incidents import store
from bot.lifecycle import State, format_id
from bot.runs import store as run_store
from bot.services import Services
from bot.slack import blocks

log = logging.getLogger(__name__)
MAX_LINES = 20
_RUN_STATE = {
    "queued": "queued",
    "running": "running",
    "waiting": "stopped at a failed step, waiting for a decision",
    "interrupted": "interrupted, waiting for a decision",
    "held": "waiting for the operation ahead of it to end",
}


def run_line(run, now: datetime) -> str:
    """One run in progress: what it is, how far it got, since when."""
    what = (
        f"Rollback `{blocks.escape(run['scenario'] or '?')}` for {format_id(run['incident_id'])}"
        if run["kind"] == "rollback"
        else "Backup"
    )
    since = run["started_at"] or run["created_at"]
    return (
        f"{what} · step {min(run['next_step'] + 1, run['total_steps'])} of "
        f"{run['total_steps']} · {_RUN_STATE.get(run['state'], run['state'])} · since "
        f"{blocks.slack_time(since)} ({format_duration((now - since).total_seconds())})"
    )


def home_incident_line(incident) -> str:
    """An open incident as anyone may see it: no summary, and its channel as a link that Slack
    names only for the channel's members (a private channel's incident tells an outsider
    nothing more than that it exists)."""
    state = blocks.STATE_TEXT[State(incident["state"])]
    return f"{blocks.incident_title(incident)} · {state} · in <#{incident['channel']}>"


def home_blocks(
    *, project: str, incidents: list, backup, runs: list, now: datetime
) -> list[dict[str, Any]]:
    """The Home tab's blocks, from stored rows; no user-typed text is shown."""
    result: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Rollback bot · {project}"[:150]},
        }
    ]
    lines = [home_incident_line(i) for i in incidents[:MAX_LINES]]
    result.append(
        blocks.section("*Open incidents*\n" + ("\n".join(lines) if lines else "None. :sunny:"))
    )
    if backup is None:
        last = "No completed backup yet: `/rollback backup` makes one."
    else:
        age = format_duration((now - backup["ended_at"]).total_seconds())
        last = f"{blocks.slack_time(backup['ended_at'])} ({age} ago), run {backup['id']}"
    result.append(blocks.section(f"*Last completed backup*\n{last}"))
    running = [run_line(r, now) for r in runs[:MAX_LINES]]
    result.append(
        blocks.section("*Runs in progress*\n" + ("\n".join(running) if running else "None."))
    )
    result.append(blocks.context("`/rollback help` lists the commands."))
    return result


async def home_view(services: Services) -> dict[str, Any]:
    """The Home tab as a `home` view."""
    async with services.pool.acquire() as conn:
        incidents = await store.open_incidents(conn)
        latest = await run_store.latest_backup(conn)
        runs = await comms_store.active_runs(conn)
    return {
        "type": "home",
        "blocks": home_blocks(
            project=services.runbook.project_name,  # plain_text: never parsed
            incidents=list(incidents),
            backup=latest[0] if latest else None,
            runs=list(runs),
            now=datetime.now(UTC),
        ),
    }


def register(app: AsyncApp, services: Services) -> None:
    """Publish the Home tab whenever someone opens it."""

    @app.event("app_home_opened")
    async def home_opened(ack, event, client) -> None:
        await ack()
        if event.get("tab", "home") == "home" and event.get("user"):
            services.after_ack.start(publish(client, event["user"]))

    async def publish(client, user: str) -> None:
        try:
            await client.views_publish(user_id=user, view=await home_view(services))
        except (SlackApiError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("home tab for %s not published: %s", user, error)
