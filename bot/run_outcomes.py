"""How a run's beginning and end are recorded: run state, incident state, owed messages.

Each function is one transaction: the run's new state, the incident following it, and the
messages the thread is owed. No Slack I/O (messages go through the outbox).
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot import outbox, run_blocks, run_store, store
from bot.approvals import refresh_root, root_key
from bot.incidents import Event, State
from bot.run_report import RunReporter, progress_key
from bot.services import Services


def thread_of(run) -> str:
    """The thread a run reports in: its incident's, or the backup's own."""
    return root_key(run["incident_id"]) if run["incident_id"] else f"run/{run['id']}/root"


async def begin(services: Services, run, reporter: RunReporter, refusal: str | None) -> None:
    """First start: the thread's progress message; the incident moves to rolling back."""
    async with services.pool.acquire() as conn, conn.transaction():
        incident = await _lock_incident(conn, run)
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
            if run["kind"] == "backup":
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


async def hand_on(services: Services, run, reporter: RunReporter, index: int) -> None:
    """This process is stopping between steps: queue the run for another process."""
    async with services.pool.acquire() as conn, conn.transaction():
        queued = await run_store.set_run_state(
            conn, run_id=run["id"], state="queued", from_states=("running",), owner=None
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
    """A step failed: stop the run, ask approvers Retry / Skip / Abort."""
    async with services.pool.acquire() as conn, conn.transaction():
        stopped = await run_store.set_run_state(
            conn, run_id=run["id"], state="waiting", from_states=("running",), owner=None
        )
        if stopped is None:
            return
        await reporter.progress(conn, done=index, current=None, state="waiting", force=True)
        name = steps[index].name
        text, blocks = run_blocks.controls(
            run["id"],
            index,
            name,
            reason=f"Step {index + 1} ({name}) failed; the run is stopped.",
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
        done = await run_store.set_run_state(
            conn,
            run_id=run["id"],
            state=state,
            from_states=("running",),
            owner=None,
            ended_at=now,
            verification_passed=verified,
        )
        if done is None:
            return
        total = done["total_steps"]
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
    """Tell the thread which step a dead process cut, and offer Resume / Abort."""
    cut = await run_store.interrupt_running_steps(conn, run_id=run["id"])
    index = cut[0]["step_index"] if cut else run["next_step"]
    scenario = services.runbook.scenario(run["scenario"]) if run["kind"] == "rollback" else None
    steps = scenario.steps if scenario else services.runbook.backup_steps
    if index >= len(steps):  # every step had finished: only the verification is left
        name = "the verification checks"
        what = "every step had finished; the verification checks had not completed"
    else:
        name = steps[index].name
        what = (
            f"step {index + 1} ({name}) was running and may have partly run"
            if cut
            else f"no step was running; the next is step {index + 1} ({name})"
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
    """Make the incident follow its run (backups have no incident)."""
    incident = await _lock_incident(conn, run)
    if incident is None:
        return
    incident = await store.apply_transition(
        conn, incident=incident, event=event, actor="bot", detail=detail
    )
    await refresh_root(conn, services, incident)
