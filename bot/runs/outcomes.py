"""How a run's beginning and end are recorded: run state, incident state, owed messages.

Each function is one transaction: the run's new state, the incident following it, and the
messages the thread is owed. No Slack I/O (messages go through the outbox).
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.incidents import store
from bot.incidents.approvals import refresh_root
from bot.lifecycle import CLOSED_STATES, TRANSITIONS, Event, State
from bot.runs import render as run_blocks
from bot.runs import store as run_store
from bot.runs.queue import has_message, thread_of
from bot.runs.report import RunReporter, progress_key
from bot.services import Services
from bot.slack import outbox


async def begin(services: Services, run, reporter: RunReporter, refusal: str | None) -> bool:
    """First start: the thread's progress message; the incident moves to rolling back.

    False when the incident was closed after the run was claimed: no step may run.
    """
    async with services.pool.acquire() as conn, conn.transaction():
        incident = await _lock_incident(conn, run)
        if incident is not None and incident["state"] in CLOSED_STATES:
            return False
        if incident is not None and incident["state"] == State.ROLLBACK_QUEUED:
            incident = await store.apply_transition(
                conn,
                incident=incident,
                event=Event.START_RUN,
                actor="bot",
                detail={"run_id": run["id"]},
            )
            await refresh_root(conn, services, incident)
        if run["next_step"] == 0 and not await run_store.step_results(conn, run_id=run["id"]):
            fresh = await run_store.get_run(conn, run_id=run["id"])
            text, blocks = run_blocks.progress(
                dict(fresh), done=0, current=None, now=datetime.now(UTC), state="running"
            )
            if run["kind"] == "backup" and not await has_message(conn, thread_of(run)):
                root_text, root = run_blocks.backup_root(run["requested_by"], len(reporter.names))
                await _say(conn, run, text=root_text, blocks=root, key=thread_of(run))
            await _say(
                conn,
                run,
                text=text,
                blocks=blocks,
                key=progress_key(run["id"]),
                thread_key=thread_of(run),
            )
    return True


async def hand_on(services: Services, run, reporter: RunReporter, index: int) -> None:
    """This process is stopping between steps: queue the run for another process."""
    async with services.pool.acquire() as conn, conn.transaction():
        queued = await run_store.leave_running(
            conn,
            run_id=run["id"],
            holder=services.process_id,
            state="queued",
        )
        if queued is None or not run["channel"]:
            return
        await reporter.progress(conn, done=index, current=None, state="queued", force=True)
        await _say(
            conn, run,
            text=f":arrows_counterclockwise: The bot process running this {run['kind']} is "
            f"restarting. Step {index} finished and was recorded; step {index + 1} starts in "
            "another bot process, or when the bot is back.",
            thread_key=thread_of(run),
        )  # fmt: skip


async def stopped_at_failure(
    services: Services, run, reporter: RunReporter, index: int, steps
) -> None:
    """A step failed: stop the run, ask approvers Retry / Skip / Abort.

    A command-line run has nobody to ask (no thread, no buttons): it ends as failed, so it
    does not hold the project; the CLI prints what failed and it is run again when fixed.
    """
    if not run["channel"]:
        async with services.pool.acquire() as conn:
            await run_store.leave_running(
                conn,
                run_id=run["id"],
                holder=services.process_id,
                state="failed",
                ended_at=datetime.now(UTC),
            )
        return
    async with services.pool.acquire() as conn, conn.transaction():
        stopped = await run_store.leave_running(
            conn,
            run_id=run["id"],
            holder=services.process_id,
            state="waiting",
        )
        if stopped is None:
            return
        await reporter.progress(conn, done=index, current=None, state="waiting", force=True)
        name = steps[index].name
        makes_artifact = run["kind"] == "backup" and steps[index].artifact is not None
        text, blocks = run_blocks.controls(
            run["id"],
            index,
            name,
            reason=f"Step {index + 1} ({name}) failed; the run is stopped."
            + (" It makes the backup's artifact, so it can't be skipped." * makes_artifact),
            skippable=not makes_artifact,
        )
        await _post_controls(conn, run, text, blocks)
        await _move_incident(
            conn, services, run, Event.STEP_FAILED, {"run_id": run["id"], "step": index}
        )


async def finish(
    services: Services,
    run,
    reporter: RunReporter,
    state: str,
    *,
    verified: bool | None = None,
    next_index: int | None = None,
    reason: str | None = None,
) -> None:
    """The run ended: its final state, the thread's last lines, the incident following."""
    async with services.pool.acquire() as conn, conn.transaction():
        now = datetime.now(UTC)
        done = await run_store.leave_running(
            conn,
            run_id=run["id"],
            holder=services.process_id,
            state=state,
            ended_at=now,
            verification_passed=verified,
        )
        if done is None:
            return
        total = done["total_steps"]
        if await has_message(conn, progress_key(run["id"])):  # none if stopped before begin
            await reporter.progress(
                conn,
                done=total if state == "succeeded" else (next_index or done["next_step"]),
                current=None,
                state=state,
                force=True,
            )
        if reporter.checks:
            text, blocks = run_blocks.verification(reporter.checks)
            await _say(conn, run, text=text, blocks=blocks, thread_key=thread_of(run))
        text, blocks = run_blocks.finished(dict(done), state=state, verified=verified, ended_at=now)
        if reason:
            text = f":no_entry: {reason}"
            blocks = run_blocks.control_decided(text)[1]
        elif state == "cancelled" and done["stop_requested_by"]:
            text = (
                f":octagonal_sign: Cancelled by <@{done['stop_requested_by']}> before step "
                f"{(next_index or 0) + 1}; the steps before it completed."
            )
            blocks = run_blocks.control_decided(text)[1]
        await _say(conn, run, text=text, blocks=blocks, thread_key=thread_of(run))
        event = Event.RUN_SUCCEEDED if state == "succeeded" else Event.RUN_FAILED
        await _move_incident(
            conn,
            services,
            run,
            event,
            {"run_id": run["id"], "verified": verified, "state": state},
        )
    services.run_finished(run["id"])


async def interrupted(services: Services, conn, run) -> None:
    """Tell the thread which step a dead process cut, and offer Resume / Abort.

    If the run's incident was closed meanwhile, nothing can continue it: it is aborted.
    """
    cut = await run_store.interrupt_running_steps(conn, run_id=run["id"])
    incident = await _lock_incident(conn, run)
    if incident is not None and incident["state"] in CLOSED_STATES:
        await run_store.set_run_state(
            conn, run_id=run["id"], state="aborted", from_states=("interrupted",),
            ended_at=datetime.now(UTC),
        )  # fmt: skip
        await store.record_event(
            conn, incident_id=run["incident_id"], run_id=run["id"], actor="bot",
            kind="run_abort", detail={"why": f"the incident is {incident['state']}"},
        )  # fmt: skip
        return
    index = cut[0]["step_index"] if cut else run["next_step"]
    rollback = run["kind"] == "rollback"
    scenario = services.runbook.scenario(run["scenario"]) if rollback else None
    steps = scenario.steps if scenario else ([] if rollback else services.runbook.backup_steps)
    if rollback and scenario is None:
        name = f"scenario {run['scenario']}"
        what = (
            f"its scenario `{run['scenario']}` is no longer in the runbook, so Resume will "
            "refuse to start it until the scenario is back; Abort ends the run"
        )
    elif index >= len(steps):  # every step had finished: only the verification is left
        name = "the verification checks"
        what = "every step had finished; the verification checks had not completed"
    else:
        name = steps[index].name
        what = (
            f"step {index + 1} ({name}) was running and may have partly run"
            if cut
            else f"no step was running; the next is step {index + 1} ({name})"
            + (" — it stopped before its first step; Resume starts it" if index == 0 else "")
        )
    text, blocks = run_blocks.controls(
        run["id"],
        index,
        name,
        interrupted=True,
        reason=f":warning: The bot process running this {run['kind']} stopped: {what}. "
        "Nothing will be re-run without a decision.",
    )
    await _post_controls(conn, run, text, blocks)
    await store.record_event(
        conn,
        incident_id=run["incident_id"],
        run_id=run["id"],
        actor="bot",
        kind="run_interrupted",
        detail={"step": index},
    )
    await _move_incident(
        conn, services, run, Event.INTERRUPTED, {"run_id": run["id"], "step": index}
    )


async def interrupted_plainly(conn, run) -> None:
    """The fallback when reporting an interruption failed: record it, no messages.

    The run is interrupted (so `rollback-bot runs` shows it and `rollback-bot abort` ends it),
    and its incident is left as it was.
    """
    await run_store.interrupt_running_steps(conn, run_id=run["id"])
    await store.record_event(
        conn,
        incident_id=run["incident_id"],
        run_id=run["id"],
        actor="bot",
        kind="run_interrupted",
        detail={"step": run["next_step"], "reported": False},
    )


async def _say(conn, run, **message) -> str | None:
    """Owe a message about a run; runs started from the command line have no channel."""
    if not run["channel"]:
        return None
    return await outbox.post(conn, channel=run["channel"], **message)


async def _post_controls(conn, run, text: str, blocks: list) -> None:
    """Owe the decision buttons; the run remembers the message so the decision can edit it."""
    key = await _say(conn, run, text=text, blocks=blocks, thread_key=thread_of(run))
    await conn.execute("update runs set controls_key = $2 where id = $1", run["id"], key)


async def _lock_incident(conn, run):
    if not run["incident_id"]:
        return None
    return await store.lock_incident(conn, incident_id=run["incident_id"])


async def _move_incident(conn, services: Services, run, event: Event, detail: dict) -> None:
    """Make the incident follow its run (backups have no incident).

    An incident that can't follow (closed, or in a state the table has no move for) stays
    where it is; the run's own state is what decides what comes next, and the audit says so.
    """
    incident = await _lock_incident(conn, run)
    if incident is None:
        return
    if (State(incident["state"]), event) not in TRANSITIONS:
        await store.record_event(
            conn, incident_id=incident["id"], run_id=run["id"], actor="bot",
            kind="incident_not_moved", detail={**detail, "event": event.value},
        )  # fmt: skip
        return
    incident = await store.apply_transition(
        conn, incident=incident, event=event, actor="bot", detail=detail
    )
    await refresh_root(conn, services, incident)
