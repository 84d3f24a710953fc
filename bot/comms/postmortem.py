"""The post-mortem document: written to the data dir, then a canvas (or a file in the thread).

Creating it is claimed in SQL (`postmortems`), so a run's end and a `/rollback postmortem`
never make two. The Slack calls happen outside any transaction; their result is recorded,
and a failure is logged and told in the thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.comms import reminders
from bot.comms import store as comms_store
from bot.comms.postmortem_facts import TEMPLATE, postmortem_context
from bot.comms.render import render
from bot.incidents import access, store
from bot.incidents.approvals import root_key, thread_note
from bot.lifecycle import format_id
from bot.services import Refusal, Services

log = logging.getLogger(__name__)
ROOT_WAIT = 30.0  # seconds to wait for the thread's root to reach Slack before uploading
_FAILURES = (SlackApiError, SlackRequestError, aiohttp.ClientError, TimeoutError, OSError)
_BUSY = ("held", "queued", "running", "waiting", "interrupted")


def document_path(services: Services, incident_id: int) -> Path:
    """ROLLBACK_DATA_DIR/postmortems/RB-N.md."""
    base = services.data_dir or Path.cwd()
    return base / "postmortems" / f"{format_id(incident_id)}.md"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".md.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


async def _documents(services: Services, incident_id: int) -> tuple[dict, str, str]:
    async with services.pool.acquire() as conn:
        incident = await store.get_incident(conn, incident_id=incident_id)
        context = await postmortem_context(conn, services, incident)
    markdown = render(TEMPLATE, context, target="markdown", runbook=services.runbook.path)
    canvas = render(TEMPLATE, context, target="canvas", runbook=services.runbook.path)
    return dict(incident), markdown, canvas


async def create(services: Services, *, incident_id: int, run_id: int | None, actor: str) -> str:
    """Create the incident's post-mortem unless it exists; return a sentence saying where."""
    rid = format_id(incident_id)
    async with services.pool.acquire() as conn:
        claim = await comms_store.claim_postmortem(
            conn, incident_id=incident_id, run_id=run_id, owner=services.process_id
        )
        existing = (
            None if claim else await comms_store.get_postmortem(conn, incident_id=incident_id)
        )
    path = document_path(services, incident_id)
    if claim is None:
        if existing["state"] == "creating":
            return f"{rid}'s post-mortem is being created right now; it will appear in the thread."
        _, markdown, canvas = await _documents(services, incident_id)
        _write(path, markdown)  # the local copy follows the latest facts
        if existing["state"] == "created" and existing["kind"] == "canvas":
            try:  # the canvas follows them too (a file already uploaded can't be edited)
                await services.slack.canvases_edit(
                    canvas_id=existing["slack_id"],
                    changes=[
                        {
                            "operation": "replace",
                            "document_content": {"type": "markdown", "markdown": canvas},
                        }
                    ],
                )
            except SlackApiError as refusal:
                return (
                    f"{rid}'s canvas couldn't be updated ({_reason(refusal)}); `{path}` "
                    "has the latest facts."
                )
            return f"{rid}'s post-mortem is updated with the latest facts ({_where(existing)})."
        return f"{rid}'s post-mortem already exists ({_where(existing)}); `{path}` was refreshed."
    try:
        return await _create_claimed(services, incident_id, run_id, actor, path)
    except BaseException as failure:
        # Whatever stopped us (shutdown, disk, a bug), the claim must not stay 'creating':
        # mark it failed, so the sweep or `/rollback postmortem` can try again.
        await asyncio.shield(_release(services, incident_id, path, failure))
        raise


async def refresh(services: Services, *, incident_id: int) -> None:
    """Bring an existing post-mortem up to date (e.g. its resolution time); never create one.

    One still being created (it may have read the incident before this change) is waited
    for, up to ROOT_WAIT seconds, then brought up to date.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROOT_WAIT
    while True:
        async with services.pool.acquire() as conn:
            existing = await comms_store.get_postmortem(conn, incident_id=incident_id)
        if existing is None or existing["state"] != "creating" or loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    if existing is not None and existing["state"] == "created":
        await create(services, incident_id=incident_id, run_id=None, actor="bot")


async def _release(services: Services, incident_id: int, path: Path, failure: BaseException):
    reason = f"interrupted ({type(failure).__name__})"
    try:
        async with services.pool.acquire() as conn:
            await comms_store.finish_postmortem(
                conn, incident_id=incident_id, path=str(path), error=reason
            )
    except Exception:
        log.exception("%s: post-mortem claim not released", format_id(incident_id))


async def _create_claimed(
    services: Services, incident_id: int, run_id: int | None, actor: str, path: Path
) -> str:
    rid = format_id(incident_id)
    incident, markdown, canvas = await _documents(services, incident_id)
    _write(path, markdown)
    kind = slack_id = url = error = None
    try:
        kind, slack_id, url = await _publish(services, incident, markdown, canvas)
    except _FAILURES as failure:
        error = _reason(failure)
        log.warning("%s: post-mortem not created in Slack (%s); kept at %s", rid, error, path)
    async with services.pool.acquire() as conn, conn.transaction():
        row = await comms_store.finish_postmortem(
            conn,
            incident_id=incident_id,
            path=str(path),
            kind=kind,
            slack_id=slack_id,
            url=url,
            error=error,
        )
        if error:
            await thread_note(
                conn,
                incident,
                f":warning: I couldn't create {rid}'s post-mortem in Slack ({error}). It is saved "
                f"on the bot's host as `{path.name}`; `/rollback postmortem {rid}` tries again.",
            )
            return f"Slack refused the post-mortem ({error}); it is saved as `{path}`."
        await store.record_event(
            conn,
            incident_id=incident_id,
            run_id=run_id,
            actor=actor,
            kind="postmortem_created",
            detail={"kind": kind, "slack_id": slack_id, "path": str(path)},
        )
        await thread_note(conn, incident, f":memo: {rid}'s post-mortem: {_where(row)}.")
    return f"{rid}'s post-mortem: {_where(row)}."


def _where(row) -> str:
    if row["state"] != "created":
        return f"not in Slack yet ({row['error'] or 'being created'})"
    if row["kind"] == "canvas":
        return f"<{row['url']}|canvas>" if row["url"] else f"canvas {row['slack_id']}"
    return "a Markdown file uploaded to the incident's thread"


def _reason(failure: Exception) -> str:
    if isinstance(failure, SlackApiError):
        return str(failure.response.get("error", "slack_error"))
    return type(failure).__name__


async def _publish(
    services: Services, incident: dict, markdown: str, canvas: str
) -> tuple[str, str, str | None]:
    """A canvas where the workspace allows it, else the Markdown file in the thread."""
    client, rid = services.slack, format_id(incident["id"])
    title = f"{rid} post-mortem ({incident['declared_at']:%Y-%m-%d})"
    try:
        created = await client.canvases_create(
            title=title,
            document_content={"type": "markdown", "markdown": canvas},
            channel_id=incident["channel"],
        )
    except SlackApiError as refusal:
        log.info("%s: no canvas (%s); uploading a file instead", rid, _reason(refusal))
    else:
        canvas_id = created["canvas_id"]
        return "canvas", canvas_id, await _canvas_url(client, canvas_id)
    thread_ts = await _root_ts(services, incident["id"])
    uploaded = await client.files_upload_v2(
        filename=f"{rid}-postmortem.md",
        content=markdown.encode(),
        title=title,
        channel=incident["channel"],
        thread_ts=thread_ts,
        initial_comment=f"{rid} post-mortem (canvases are not available in this workspace).",
    )
    file = uploaded.get("file") or (uploaded.get("files") or [{}])[0]
    return "file", file.get("id"), None


async def _canvas_url(client, canvas_id: str) -> str | None:
    try:
        identity = await client.auth_test()
    except SlackApiError:
        return None
    return f"{identity['url'].rstrip('/')}/docs/{identity['team_id']}/{canvas_id}"


async def _root_ts(services: Services, incident_id: int) -> str:
    """The thread's ts; the root may still be on its way to Slack, so wait a little."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ROOT_WAIT
    while True:
        async with services.pool.acquire() as conn:
            ts = await comms_store.root_ts(conn, key=root_key(incident_id))
        if ts or loop.time() > deadline:
            break
        await asyncio.sleep(0.5)
    if not ts:
        raise TimeoutError("the incident's thread is not in Slack yet")
    return ts


async def command(services: Services, parsed, *, user: str, channel: str) -> str:
    """`/rollback postmortem ID [done]`."""
    if parsed.text == "done":
        return await reminders.mark_done(
            services, incident_id=parsed.incident_id, user=user, channel=channel
        )
    async with services.pool.acquire() as conn:
        incident = await store.get_incident(conn, incident_id=parsed.incident_id)
        if incident is None:
            raise Refusal(f"There is no incident {format_id(parsed.incident_id)}.")
        access.in_own_channel(incident, channel, "make its post-mortem")
        run = await comms_store.latest_rollback(conn, incident_id=incident["id"])
    if run is not None and run["state"] in _BUSY:
        raise Refusal(
            f"{format_id(incident['id'])}'s rollback is still in progress; the post-mortem is "
            "created when it ends."
        )
    return await create(
        services, incident_id=incident["id"], run_id=run["id"] if run else None, actor=user
    )
