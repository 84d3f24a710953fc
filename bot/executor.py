"""Runs backups and approved rollbacks: one process per run (a claim plus a renewed lease).

The executor never talks to Slack: it stores results and owes messages through the outbox.
A run whose owner stops renewing its lease is marked interrupted by any process, and the
thread offers Resume / Abort: nothing is re-run without a person deciding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from actions.masking import Masker
from actions.plan import (
    artifact_reference,
    artifact_refusal,
    prepare_checks,
    prepare_steps,
    step_workdir,
)
from actions.render import RenderContext, RenderError
from actions.runner import run_steps
from actions.verify import run_checks
from bot import outbox, run_blocks, run_store, store
from bot.approvals import refresh_root, root_key
from bot.incidents import Event, State, format_id
from bot.run_report import BackupArtifact, RunReporter, progress_key
from bot.services import Services

log = logging.getLogger(__name__)
_BOT_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DATABASE_URL")


def step_environment() -> dict[str, str]:
    """The bot's environment without its own secrets: what every step runs with."""
    return {k: v for k, v in os.environ.items() if k not in _BOT_SECRETS}


def masker_for(workdir: Path) -> Masker:
    """Mask the bot's secrets and every value in the project's `.env` files and their copies."""
    env_files = [*workdir.glob(".env*"), *(workdir / "backup").glob(".env*")]
    own = [os.environ[k] for k in _BOT_SECRETS if os.environ.get(k)]
    return Masker(own).with_env_files(env_files)


def thread_of(run) -> str:
    """The thread a run reports in: its incident's, or the backup's own."""
    return root_key(run["incident_id"]) if run["incident_id"] else f"run/{run['id']}/root"


class RunExecutor:
    """Takes queued runs, drives them, and recovers runs whose process died."""

    def __init__(self, services: Services, *, lease: float, poll_interval: float) -> None:
        self.services, self.lease, self.poll_interval = services, lease, poll_interval
        self.tasks: dict[int, asyncio.Task] = {}
        self.draining = False  # set on SIGTERM: finish the current step, start no other

    def kick(self, run_id: int) -> None:
        """Start a queued run in this process, if nobody else has (the one hand-off)."""
        if run_id in self.tasks or self.draining:
            return
        task = asyncio.create_task(self.execute(run_id), name=f"run-{run_id}")
        self.tasks[run_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(run_id, None))

    async def run_forever(self) -> None:
        """Poll for queued runs (lost kicks) and orphaned runs until cancelled."""
        while True:
            try:
                await self.poll()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("executor: database unavailable (%s)", error)
            await asyncio.sleep(self.poll_interval)

    async def poll(self) -> None:
        """Kick queued runs; mark runs with an expired lease interrupted and ask what to do."""
        async with self.services.pool.acquire() as conn:
            for row in await run_store.queued_runs(conn):
                self.kick(row["id"])
            async with conn.transaction():
                for run in await run_store.orphan_runs(conn):
                    await self._interrupted(conn, run)

    async def shutdown(self, grace: float) -> None:
        """Drain: let running steps finish (up to `grace` s) and hand their runs on."""
        self.draining = True
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=grace)
        for task in list(self.tasks.values()):
            task.cancel()  # past the grace: the step is killed; its lease lapses -> Resume
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)

    async def execute(self, run_id: int) -> None:
        """Claim and drive one run to its end (or to a stop that needs a decision)."""
        pool, me = self.services.pool, self.services.process_id
        async with pool.acquire() as conn:
            run = await run_store.claim_run(conn, run_id=run_id, owner=me, lease=self.lease)
        if run is None:
            return  # another process took it, or it is no longer queued
        renewer = asyncio.create_task(self._renew(run_id))
        try:
            await self._drive(run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s failed inside the bot; marking it interrupted", run_id)
            async with pool.acquire() as conn, conn.transaction():
                stopped = await run_store.set_run_state(
                    conn, run_id=run_id, state="interrupted", from_states=("running",), owner=None
                )
                if stopped is not None:
                    await self._interrupted(conn, stopped)
        finally:
            renewer.cancel()

    async def _renew(self, run_id: int) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                async with self.services.pool.acquire() as conn:
                    await run_store.renew_lease(
                        conn, run_id=run_id, owner=self.services.process_id, lease=self.lease
                    )

    async def _drive(self, run) -> None:
        runbook = self.services.runbook
        steps = (
            runbook.backup_steps
            if run["kind"] == "backup"
            else runbook.scenario(run["scenario"]).steps
        )
        async with self.services.pool.acquire() as conn:
            latest = await run_store.latest_backup(conn)
        backup = {name: rec.reference for name, (rec, _) in (latest[1] if latest else {}).items()}
        ctx = RenderContext(
            runbook=runbook,
            ts=run["ts"],
            date=run["ts"][:8],
            backup=backup,
            incident_id=format_id(run["incident_id"]) if run["incident_id"] else None,
        )
        try:
            prepared = prepare_steps(runbook, steps, ctx)
            checks = prepare_checks(runbook, ctx) if run["kind"] == "rollback" else []
            refusal = None
            if run["kind"] == "rollback" and run["next_step"] == 0:
                refusal = artifact_refusal(
                    runbook.scenario(run["scenario"]), latest[1] if latest else None
                )
        except RenderError as error:
            refusal = str(error)
        artifacts = {
            i: BackupArtifact(
                s.artifact.name,
                "file" if s.artifact.is_file else "value",
                artifact_reference(s, ctx),
                step_workdir(runbook, s),
            )
            for i, s in enumerate(steps)
            if run["kind"] == "backup" and s.artifact
        }
        reporter = RunReporter(
            self.services,
            run,
            thread_key=thread_of(run) if run["channel"] else None,
            names=[s.name for s in steps],
            artifacts=artifacts,
        )
        await self._begin(run, reporter, refusal)
        if refusal is not None:
            return await self._finish(run, reporter, "failed", reason=f"Can't start: {refusal}")

        async def stop_requested() -> bool:
            if self.draining:
                return True
            async with self.services.pool.acquire() as conn:
                return bool(await run_store.stop_requested(conn, run_id=run["id"]))

        ended = await run_steps(
            prepared,
            start=run["next_step"],
            on_event=reporter,
            masker=masker_for(runbook.workdir),
            env=step_environment(),
            stop_requested=stop_requested,
        )
        if ended.status == "failed" or reporter.artifact_failed:
            return await self._stopped_at_failure(run, reporter, ended.next_index, steps)
        if ended.status == "cancelled" and self.draining:
            return await self._hand_on(run, reporter, ended.next_index)
        if ended.status == "cancelled":
            return await self._finish(run, reporter, "cancelled", next_index=ended.next_index)
        verified = None
        if checks:
            results = await run_checks(
                checks,
                workdir=runbook.workdir,
                masker=masker_for(runbook.workdir),
                on_event=reporter,
                env=step_environment(),
                default_dsn=runbook.vars.get("db_url"),
            )
            verified = all(r.passed for r in results)
        await self._finish(run, reporter, "succeeded", verified=verified)

    async def _begin(self, run, reporter: RunReporter, refusal: str | None) -> None:
        """First start: the thread's progress message; the incident moves to rolling back."""
        async with self.services.pool.acquire() as conn, conn.transaction():
            incident = await _lock_incident(conn, run)
            if incident is not None and incident["state"] == State.ROLLBACK_QUEUED:
                incident = await store.apply_transition(
                    conn,
                    incident=incident,
                    event=Event.START_RUN,
                    actor="bot",
                    detail={"run_id": run["id"]},
                )
                await refresh_root(conn, self.services, incident)
            if run["next_step"] == 0 and not await run_store.step_results(conn, run_id=run["id"]):
                fresh = await run_store.get_run(conn, run_id=run["id"])
                text, blocks = run_blocks.progress(
                    dict(fresh), done=0, current=None, now=datetime.now(UTC), state="running"
                )
                if run["kind"] == "backup":
                    root_text, root = run_blocks.backup_root(
                        run["requested_by"], len(reporter.names)
                    )
                    await _say(conn, run, text=root_text, blocks=root, key=thread_of(run))
                await _say(
                    conn,
                    run,
                    text=text,
                    blocks=blocks,
                    key=progress_key(run["id"]),
                    thread_key=thread_of(run),
                )

    async def _hand_on(self, run, reporter: RunReporter, index: int) -> None:
        """This process is stopping between steps: queue the run for another process."""
        async with self.services.pool.acquire() as conn, conn.transaction():
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

    async def _stopped_at_failure(self, run, reporter: RunReporter, index: int, steps) -> None:
        async with self.services.pool.acquire() as conn, conn.transaction():
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
                conn, self.services, run, Event.STEP_FAILED, {"run_id": run["id"], "step": index}
            )

    async def _finish(
        self,
        run,
        reporter: RunReporter,
        state: str,
        *,
        verified: bool | None = None,
        next_index: int | None = None,
        reason: str | None = None,
    ) -> None:
        async with self.services.pool.acquire() as conn, conn.transaction():
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
            text, blocks = run_blocks.finished(
                dict(done), state=state, verified=verified, ended_at=now
            )
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
                self.services,
                run,
                event,
                {"run_id": run["id"], "verified": verified, "state": state},
            )
        self.services.run_finished(run["id"])

    async def _interrupted(self, conn, run) -> None:
        """Tell the thread which step a dead process cut, and offer Resume / Abort."""
        cut = await run_store.interrupt_running_steps(conn, run_id=run["id"])
        index = cut[0]["step_index"] if cut else run["next_step"]
        steps = (
            self.services.runbook.backup_steps
            if run["kind"] == "backup"
            else self.services.runbook.scenario(run["scenario"]).steps
        )
        index = min(index, len(steps) - 1) if steps else 0
        name = steps[index].name if steps else "?"
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
            conn, self.services, run, Event.INTERRUPTED, {"run_id": run["id"], "step": index}
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
