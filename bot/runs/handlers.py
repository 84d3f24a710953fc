"""Retry / Skip / Abort / Resume / Cancel, and `/rollback backup` / `rehearse`: atomic claims."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import asyncpg
from slack_bolt.async_app import AsyncApp

from actions.masking import MASK
from actions.plan import rehearse as dry_run
from actions.remote import HostPool
from actions.remote_artifacts import artifact_hosts
from actions.remote_plan import rehearse_on_hosts
from actions.render import RenderContext
from bot.incidents import access, store
from bot.incidents.approvals import refresh_root, thread_note
from bot.lifecycle import CLOSED_STATES, TRANSITIONS, Event, State, format_id
from bot.runs import queue as run_queue
from bot.runs import render as run_blocks
from bot.runs import store as run_store
from bot.runs.executor import masker_for
from bot.runs.outcomes import thread_of
from bot.services import Refusal, Services
from bot.slack import blocks, outbox
from bot.slack.guard import clicked_channel, done_then_answer
from bot.slack.ids import Action

_VALUE = re.compile(r"([0-9]{1,12}):([0-9]{1,4})")
_CHOICE = {
    Action.RETRY: "Retry",
    Action.SKIP: "Skip",
    Action.ABORT: "Abort",
    Action.RESUME: "Resume",
}
# The run state each button is offered in: a click in any other state changes nothing.
_OFFERED_IN = {
    Action.RETRY: ("waiting",),
    Action.SKIP: ("waiting",),
    Action.RESUME: ("interrupted",),
    Action.ABORT: ("waiting", "interrupted"),
}
_NOW = {
    "waiting": "stopped at a failed step: Retry, Skip or Abort apply",
    "interrupted": "interrupted: only Resume or Abort apply",
    "queued": "queued to run",
    "held": "waiting for another operation to end",
    "running": "running",
}


def state_now(run) -> str:
    """The run's state now, in words, for a click that no longer applies."""
    step = f" at step {run['next_step'] + 1}" if run["state"] in ("waiting", "interrupted") else ""
    words = _NOW.get(run["state"], f"over ({run['state']})")
    return f"This run is {words}{step}; nothing changed."


def _in_run_channel(run, body: dict, verb: str) -> None:
    """Refuse a click on a run from outside its channel (a CLI backup has none)."""
    if not run["channel"] or clicked_channel(body) == run["channel"]:
        return
    if run["incident_id"]:
        access.in_own_channel(
            {"id": run["incident_id"], "channel": run["channel"]}, clicked_channel(body), verb
        )
    raise Refusal(f"This backup belongs to <#{run['channel']}>; {verb} it there. Nothing changed.")


def _clicked(body: dict) -> tuple[str, int, int]:
    user = (body.get("user") or {}).get("id")
    actions = body.get("actions") or [{}]
    match = _VALUE.fullmatch(str(actions[0].get("value") or ""))
    if not user or not match:
        raise Refusal("That button's payload is malformed; nothing changed.")
    return user, int(match.group(1)), int(match.group(2))


async def _authorise(
    services: Services, conn, run, user: str, *, stopping: bool = False, action=None
) -> None:
    """Who may act on a stopped or running run.

    Retry, Skip and Resume carry the approved rollback further, so they need someone who may
    approve it (an allowed approver who took no part in requesting it). Abort and Cancel stop
    it: any allowed approver may, and Cancel also the declarer."""
    incident = (
        await store.get_incident(conn, incident_id=run["incident_id"])
        if run["incident_id"]
        else None
    )
    if incident is None:  # a backup: its requester or an approver decides
        if user != run["requested_by"] and not await access.allowed_approver(services, user):
            raise Refusal("Only the runbook's approvers or whoever started the backup may decide.")
        return
    rid = format_id(incident["id"])
    if stopping and user == incident["declared_by"]:
        return  # stopping is always allowed to the declarer
    if stopping or action is Action.ABORT:
        await access.must_be_approver(services, user, f"stop {rid}'s rollback")
        return
    await access.may_decide(conn, services, user=user, incident=incident)


async def decide(services: Services, *, body: dict, action: Action) -> str:
    """Apply a decision on a stopped run exactly once; return the answer for the clicker."""
    user, run_id, index = _clicked(body)
    choice = _CHOICE[action]
    async with services.pool.acquire() as conn:
        run = await run_store.get_run(conn, run_id=run_id)
        if run is None:
            raise Refusal("That run doesn't exist.")
        _in_run_channel(run, body, choice.lower())
        await _authorise(services, conn, run, user, action=action)
        promoted = None
        async with conn.transaction():
            if run["incident_id"]:
                await store.lock_incident(conn, incident_id=run["incident_id"])
            if run["incident_id"]:
                incident = await store.get_incident(conn, incident_id=run["incident_id"])
                if incident["state"] in CLOSED_STATES and action is not Action.ABORT:
                    raise Refusal(
                        f"{format_id(incident['id'])} is {incident['state']}; its run can't "
                        "continue. Declare a new incident if needed."
                    )
            if action is Action.SKIP and _makes_artifact(services, run, index):
                raise Refusal(
                    f"Step {index + 1} makes the backup's artifact, so it can't be skipped: a "
                    "backup without it is not a backup. Retry it, or Abort (the last complete "
                    "backup stays the one rollbacks use)."
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
                + f" where id = $1 and next_step = $2 and state = any(${len(fields) + 4}::text[])"
                " returning *",
                run_id,
                index,
                "aborted" if action is Action.ABORT else "queued",
                *fields.values(),
                list(_OFFERED_IN[action]),
            )
            if claimed is None:
                now = await run_store.get_run(conn, run_id=run_id)
                if now["state"] in _OFFERED_IN[action] and now["next_step"] != index:
                    raise Refusal(
                        f"This run is no longer waiting at step {index + 1} (someone already "
                        "decided, or the button is old); nothing changed."
                    )
                raise Refusal(f"{choice} doesn't apply now. {state_now(now)}")
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
                if (State(incident["state"]), event) in TRANSITIONS:
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
                # The project is free: the oldest held run takes it in this transaction, so
                # nothing asked for after the Abort can start ahead of it.
                promoted = await run_queue.promote(conn)
    if action is Action.ABORT:
        services.run_finished(run_id)
        if promoted is not None:
            services.run_queued(promoted["id"])
        return "Aborted. No further step runs."
    services.run_queued(run_id)
    return f"{choice}: the run continues from step {index + 1 + (action is Action.SKIP)}."


def _makes_artifact(services: Services, run, index: int) -> bool:
    steps = services.runbook.backup_steps
    return run["kind"] == "backup" and index < len(steps) and steps[index].artifact is not None


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
        _in_run_channel(run, body, "cancel")
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
    async with services.pool.acquire() as conn, conn.transaction():
        _refuse_a_second_backup(await run_store.active_run(conn))
        try:  # one operation at a time (index runs_one_operation): else held behind it
            run = await run_queue.enqueue(
                conn,
                services,
                kind="backup",
                channel=channel,
                requested_by=user,
                ts=datetime.now(UTC).strftime("%Y%m%d_%H%M%S"),
                total_steps=len(steps),
            )
        except asyncpg.UniqueViolationError:
            raise Refusal(
                "A backup is already waiting for its turn (or was started a moment ago); "
                "nothing changed. Follow it in its thread."
            ) from None
        if run["state"] == "held":  # behind a backup that started a moment ago: refused too
            _refuse_a_second_backup(await run_store.get_run(conn, run_id=run["waits_for"] or 0))
    if run["state"] == "held":
        return (
            f"Backup queued ({len(steps)} steps): another operation is active on this project. "
            "Its thread says which; the backup starts when it ends."
        )
    services.run_queued(run["id"])
    return f"Backup started ({len(steps)} steps); follow it in the channel."


def _refuse_a_second_backup(active) -> None:
    if active is None or active["kind"] != "backup":
        return
    hint = "" if active["channel"] else f" {run_queue.cli_hint(active)}"
    raise Refusal(
        f"A backup is already in progress: {run_queue.describe(active)}. Let it finish "
        f"(or abort it), then try again.{hint}"
    )


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
    # Rendered commands hold the values of [vars]: masked like any step's output. A program
    # name the masked command no longer shows was read from a secret: it is masked too.
    masker = masker_for(runbook.workdir)
    lines = [f"Rehearsal of `{scenario_key}` — {report.scenario.title}. Nothing was run."]
    for n, step in enumerate(report.steps, 1):
        command = masker.mask(step.problem or step.command)
        names = [p if p in command else MASK for p in step.missing_programs]
        missing = f"  (not on PATH: {', '.join(dict.fromkeys(names))})" if names else ""
        lines.append(masker.mask(f"{n}. {step.name}{missing}"))
        lines.append(command)
    lines.append(f"Backup: {report.backup_problem or 'the artifacts it needs are intact'}")
    lines.append("Result: PASSED" if report.passed else "Result: problems found (see above)")
    return masker.mask("\n".join(lines)), report.passed


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
            await done_then_answer(
                ack,
                respond,
                decide(services, body=body, action=choice),
                after=services.after_ack,
            )

        return handler

    for choice in _CHOICE:
        app.action(choice.value)(handler_for(choice))

    @app.action(Action.CANCEL_RUN)
    async def cancel_run(ack, body, respond) -> None:
        await done_then_answer(ack, respond, cancel(services, body=body), after=services.after_ack)


__all__ = ["format_id"]
