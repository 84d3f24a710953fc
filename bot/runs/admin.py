"""`rollback-bot runs` and `rollback-bot abort RUN`: runs seen and ended from the command line.

A command-line backup has no Slack thread and no buttons, so this is where a person finds a
stopped or interrupted run and ends it. Aborting is one transaction: the UPDATE's WHERE is
the rule (a stopped, interrupted, queued or held run; a running one only once its lease
has lapsed by more than the resume grace, i.e. its process is gone), with the audit row,
the incident following, and the thread told when there is one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from bot.incidents import store
from bot.incidents.approvals import refresh_root, root_key, thread_note
from bot.lifecycle import TRANSITIONS, Event, State, format_id
from bot.runs import queue as run_queue
from bot.runs import store as run_store
from bot.services import Services
from bot.slack import blocks, outbox

RECENT = 10  # ended runs listed after the active ones


class AbortRefused(Exception):
    """The run can't be aborted from here; str() says why and what to do."""


async def run_lines(conn: asyncpg.Connection) -> list[str]:
    """Active and held runs, then the most recent ended ones: one line each, with a header."""
    rows = await conn.fetch(
        "(select *, true as live from runs where ended_at is null order by id)"
        " union all (select *, false from runs where ended_at is not null"
        " order by id desc limit $1) order by live desc, id desc",
        RECENT,
    )
    lines = [f"{'ID':>5}  {'KIND':<8}  {'INCIDENT':<8}  {'STATE':<12}  {'STARTED (UTC)':<19}  STEP"]
    for run in rows:
        step = await run_store.current_step(conn, run_id=run["id"])
        incident = format_id(run["incident_id"]) if run["incident_id"] else "-"
        started = (
            f"{run['started_at'].astimezone(UTC):%Y-%m-%d %H:%M:%S}" if run["started_at"] else "-"
        )
        lines.append(
            f"{run['id']:>5}  {run['kind']:<8}  {incident:<8}  {_state(run):<12}  {started:<19}  "
            + _step(run, step)
        )
    if len(lines) == 1:
        lines.append("(no runs yet)")
    return lines


def _state(run) -> str:
    lease = run["lease_until"]
    if run["state"] == "running" and lease is not None and lease < datetime.now(UTC):
        return "running?"  # its lease lapsed: the process is gone (a footnote says so)
    return run["state"]


def _step(run, step) -> str:
    total = run["total_steps"]
    if step is None:
        text = f"{min(run['next_step'] + 1, max(total, 1))}/{total} not started"
    else:
        text = f"{step['step_index'] + 1}/{total} {step['name']} ({step['status']})"
    if run["state"] == "held" and run["waits_for"]:
        text += f"; waits for run {run['waits_for']}"
    if _state(run) == "running?":
        text += "; lease lapsed, its process is gone: `rollback-bot abort` ends it"
    return text


async def abort(services: Services, *, run_id: int, actor: str, grace: float) -> str:
    """Abort one run as `actor`; AbortRefused says why not. Returns the line to print."""
    async with services.pool.acquire() as conn:
        async with conn.transaction():
            run = await run_store.get_run(conn, run_id=run_id)
            if run is None:
                raise AbortRefused(f"there is no run {run_id}; `rollback-bot runs` lists them.")
            incident = (
                await store.lock_incident(conn, incident_id=run["incident_id"])
                if run["incident_id"]
                else None
            )
            aborted = await conn.fetchrow(
                "update runs set state = 'aborted', owner = null, ended_at = now()"
                " where id = $1 and (state in ('waiting', 'interrupted', 'queued', 'held')"
                " or (state = 'running' and lease_until < now() - make_interval(secs => $2)))"
                " returning *",
                run_id,
                grace,
            )
            if aborted is None:
                raise AbortRefused(await _why_not(conn, run_id, grace))
            await run_store.interrupt_running_steps(conn, run_id=run_id)
            await store.record_event(
                conn,
                incident_id=run["incident_id"],
                run_id=run_id,
                actor=actor,
                kind="run_abort",
                detail={"step": run["next_step"], "was": run["state"], "from": "cli"},
            )
            await _tell_thread(conn, services, run, aborted, incident, actor)
        async with conn.transaction():
            await run_queue.promote(conn)  # the project may be free for a held run now
    what = f"{format_id(run['incident_id'])}'s rollback" if run["incident_id"] else "backup"
    return f"aborted run {run_id} ({what}, was {run['state']}); recorded as {actor}."


async def _tell_thread(conn, services: Services, run, aborted, incident, actor: str) -> None:
    text = (
        f":octagonal_sign: Aborted from the command line by {actor} at step "
        f"{run['next_step'] + 1} (the run was {run['state']}). Steps after it did not run."
    )
    if aborted["controls_key"]:
        fallback, decided = blocks.note(text)
        await outbox.update(conn, key=aborted["controls_key"], text=fallback, blocks=decided)
    if incident is not None:
        if await run_queue.has_message(conn, root_key(incident["id"])):
            await thread_note(conn, incident, text)
        if (State(incident["state"]), Event.RUN_FAILED) in TRANSITIONS:
            incident = await store.apply_transition(
                conn, incident=incident, event=Event.RUN_FAILED, actor=actor,
                detail={"run_id": run["id"]},
            )  # fmt: skip
            if await run_queue.has_message(conn, root_key(incident["id"])):
                await refresh_root(conn, services, incident)
    elif run["channel"]:
        fallback, note = blocks.note(text)
        await outbox.post(conn, channel=run["channel"], text=fallback, blocks=note,
                          thread_key=run_queue.thread_of(run))  # fmt: skip


async def _why_not(conn, run_id: int, grace: float) -> str:
    run = await run_store.get_run(conn, run_id=run_id)
    if run["state"] == "running":
        until = run["lease_until"].astimezone(UTC)
        return (
            f"run {run_id} is running in process {run['owner']} (its lease runs until "
            f"{until:%H:%M:%S} UTC), so it is not aborted from here: that process would go on. "
            "Use Cancel in its Slack thread, or stop that process; once its lease has lapsed "
            f"(plus {grace:g} s), `rollback-bot abort {run_id}` ends it."
        )
    return f"run {run_id} already ended ({run['state']}); there is nothing to abort."
