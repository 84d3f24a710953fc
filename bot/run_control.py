"""Retry / Skip / Abort / Resume / Cancel, and `/rollback backup` / `rehearse`: atomic claims."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg
from slack_bolt.async_app import AsyncApp

from actions.plan import rehearse as dry_run
from actions.remote import HostPool
from actions.remote_artifacts import artifact_hosts
from actions.remote_plan import rehearse_on_hosts
from actions.render import RenderContext
from bot import blocks, outbox, run_blocks, run_store, store
from bot.approvals import may_approve, refresh_root, thread_note
from bot.guard import answer_safely
from bot.ids import Action
from bot.incidents import CLOSED_STATES, Event, format_id
from bot.run_outcomes import thread_of
from bot.services import Refusal, Services

_VALUE = re.compile(r"([0-9]{1,12}):([0-9]{1,4})")
_CHOICE = {
    Action.RETRY: "Retry",
    Action.SKIP: "Skip",
    Action.ABORT: "Abort",
    Action.RESUME: "Resume",
}


def _clicked(body: dict) -> tuple[str, int, int]:
    user = (body.get("user") or {}).get("id")
    actions = body.get("actions") or [{}]
    match = _VALUE.fullmatch(str(actions[0].get("value") or ""))
    if not user or not match:
        raise Refusal("That button's payload is malformed; nothing changed.")
    return user, int(match.group(1)), int(match.group(2))


async def _authorise(services: Services, conn, run, user: str, *, stopping: bool = False) -> None:
    incident = (
        await store.get_incident(conn, incident_id=run["incident_id"])
        if run["incident_id"]
        else None
    )
    if incident is None:  # a backup: its requester or an approver decides
        approvers = services.runbook.policy.approvers
        if approvers and user not in approvers and user != run["requested_by"]:
            raise Refusal("Only the runbook's approvers or whoever started the backup may decide.")
        return
    if stopping and user == incident["declared_by"]:
        return  # stopping is always allowed to the declarer
    await may_approve(services, user=user, incident=incident)


async def decide(services: Services, *, body: dict, action: Action) -> str:
    """Apply a decision on a stopped run exactly once; return the answer for the clicker."""
    user, run_id, index = _clicked(body)
    choice = _CHOICE[action]
    async with services.pool.acquire() as conn:
        run = await run_store.get_run(conn, run_id=run_id)
        if run is None:
            raise Refusal("That run doesn't exist.")
        await _authorise(services, conn, run, user)
        async with conn.transaction():
            if run["incident_id"]:
                await store.lock_incident(conn, incident_id=run["incident_id"])
            if run["incident_id"]:
                incident = await store.get_incident(conn, incident_id=run["incident_id"])
                if incident["state"] in CLOSED_STATES:
                    raise Refusal(
                        f"{format_id(incident['id'])} is {incident['state']}; its run can't "
                        "continue. Declare a new incident if needed."
                    )
            fields = (
                {"ended_at": datetime.now(UTC)}
                if action is Action.ABORT
                else {
                    "next_step": index + 1 if action is Action.SKIP else index,
                    "stop_requested_by": None,  # a new decision replaces an earlier Cancel
                }
            )
            claimed = await conn.fetchrow(
                "update runs set state = $3, "
                + ", ".join(f"{k} = ${i}" for i, k in enumerate(fields, 4))
                + " where id = $1 and next_step = $2 and state in ('waiting', 'interrupted')"
                " returning *",
                run_id,
                index,
                "aborted" if action is Action.ABORT else "queued",
                *fields.values(),
            )
            if claimed is None:
                raise Refusal(
                    "This run is no longer waiting at that step (someone already "
                    "decided, or the button is old); nothing changed."
                )
            when = blocks.slack_time(datetime.now(UTC))
            text, decided = run_blocks.control_decided(
                f"*{choice}* chosen by {blocks.mention(user)} {when} (step {index + 1})."
            )
            if claimed["controls_key"]:
                await outbox.update(conn, key=claimed["controls_key"], text=text, blocks=decided)
            await store.record_event(
                conn,
                incident_id=run["incident_id"],
                run_id=run_id,
                actor=user,
                kind=f"run_{choice.lower()}",
                detail={"step": index},
            )
            if run["incident_id"]:
                incident = await store.get_incident(conn, incident_id=run["incident_id"])
                event = Event.RUN_FAILED if action is Action.ABORT else Event.RESUME
                incident = await store.apply_transition(
                    conn, incident=incident, event=event, actor=user, detail={"run_id": run_id}
                )
                await refresh_root(conn, services, incident)
            if action is Action.ABORT:
                await outbox.post(
                    conn,
                    channel=run["channel"],
                    thread_key=thread_of(run),
                    text=f":octagonal_sign: Aborted by {blocks.mention(user)} at "
                    f"step {index + 1}. Steps after it did not run.",
                )
    if action is Action.ABORT:
        services.run_finished(run_id)
        return "Aborted. No further step runs."
    services.run_queued(run_id)
    return f"{choice}: the run continues from step {index + 1 + (action is Action.SKIP)}."


async def cancel(services: Services, *, body: dict) -> str:
    """Ask a running rollback to stop between steps."""
    user = (body.get("user") or {}).get("id")
    value = str(((body.get("actions") or [{}])[0]).get("value") or "")
    if not user or not re.fullmatch(r"[0-9]{1,12}", value):
        raise Refusal("That button's payload is malformed; nothing changed.")
    async with services.pool.acquire() as conn:
        run = await run_store.get_run(conn, run_id=int(value))
        if run is None:
            raise Refusal("That run doesn't exist.")
        await _authorise(services, conn, run, user, stopping=True)
        async with conn.transaction():
            stopped = await run_store.request_stop(conn, run_id=run["id"], user=user)
            if stopped is None:
                raise Refusal("This run is not running (or a cancel was already requested).")
            current = await conn.fetchval(
                "select name from step_results where run_id = $1 and status = 'running'", run["id"]
            )
            step = (
                f"the running step ({blocks.escape(current)}) finishes or times out first"
                if current
                else "no further step starts"
            )
            await store.record_event(
                conn,
                incident_id=run["incident_id"],
                run_id=run["id"],
                actor=user,
                kind="run_cancel_requested",
            )
            if run["incident_id"]:
                incident = await store.get_incident(conn, incident_id=run["incident_id"])
                await thread_note(
                    conn,
                    incident,
                    f"{blocks.mention(user)} asked to cancel the "
                    f"rollback: {step}, then the run stops.",
                )
    return "Cancel requested; the thread says when the run has stopped."


async def start_backup(services: Services, *, user: str, channel: str) -> str:
    """Queue the runbook's backup steps as a run reporting in its own thread."""
    steps = services.runbook.backup_steps
    if not steps:
        raise Refusal("The runbook has no [backup] steps.")
    async with services.pool.acquire() as conn:
        try:  # a unique index allows one backup in progress: two would write the same files
            run = await store.insert_run(
                conn,
                kind="backup",
                channel=channel,
                requested_by=user,
                ts=datetime.now(UTC).strftime("%Y%m%d_%H%M%S"),
                total_steps=len(steps),
            )
        except asyncpg.UniqueViolationError:
            raise Refusal(
                "A backup is already in progress (or stopped, waiting for a decision in its "
                "thread). Let it finish, or abort it there, then try again."
            ) from None
    services.run_queued(run["id"])
    return f"Backup started ({len(steps)} steps); follow it in the channel."


async def rehearsal_text(services: Services, scenario_key: str) -> tuple[str, bool]:
    """The dry run of a scenario as text, and whether it passed."""
    runbook = services.runbook
    async with services.pool.acquire() as conn:
        latest = await run_store.latest_backup(conn)
    backup = {name: rec.reference for name, (rec, _) in (latest[1] if latest else {}).items()}
    ctx = RenderContext.at(runbook, datetime.now(UTC), incident_id="RB-0", backup=backup)
    scenario, pinned = runbook.scenario(scenario_key), latest[1] if latest else None
    if any(step.hosts for step in scenario.steps) or artifact_hosts(runbook):
        async with HostPool(runbook.hosts) as pool:  # host keys and programs, checked there
            report = await rehearse_on_hosts(runbook, scenario, ctx, pinned, pool)
    else:
        report = dry_run(runbook, scenario, ctx, pinned)
    lines = [f"Rehearsal of `{scenario_key}` — {report.scenario.title}. Nothing was run."]
    for n, step in enumerate(report.steps, 1):
        missing = (
            f"  (not on PATH: {', '.join(step.missing_programs)})" if step.missing_programs else ""
        )
        lines.append(f"{n}. {step.name}{missing}")
        lines.append(step.problem or step.command)
    lines.append(f"Backup: {report.backup_problem or 'the artifacts it needs are intact'}")
    lines.append("Result: PASSED" if report.passed else "Result: problems found (see above)")
    return "\n".join(lines), report.passed


async def rehearse_command(services: Services, parsed, *, user: str, channel: str) -> str:
    """`/rollback rehearse SCENARIO`: the dry run, answered privately, recorded when it passes."""
    text, passed = await rehearsal_text(services, parsed.scenario)
    if passed:
        async with services.pool.acquire() as conn:
            await store.record_event(
                conn,
                incident_id=None,
                actor=user,
                kind="rehearsal_passed",
                detail={"scenario": parsed.scenario},
            )
    return "```" + blocks.escape(text, limit=3500).replace("```", "'''") + "```"


def register(app: AsyncApp, services: Services) -> None:
    """Attach the run buttons."""

    def handler_for(choice: Action):
        # Bolt passes arguments by name (`action` is one), so the choice rides in a closure.
        async def handler(ack, body, respond) -> None:
            await ack()
            await answer_safely(respond, decide(services, body=body, action=choice))

        return handler

    for choice in _CHOICE:
        app.action(choice.value)(handler_for(choice))

    @app.action(Action.CANCEL_RUN)
    async def cancel_run(ack, body, respond) -> None:
        await ack()
        await answer_safely(respond, cancel(services, body=body))


__all__ = ["format_id"]
