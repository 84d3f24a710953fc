"""Runs backups and approved rollbacks: one process per run (a claim plus a renewed lease).

The executor never talks to Slack: it stores results and owes messages through the outbox.
A run whose owner stops renewing its lease is marked interrupted by any process, and the
thread offers Resume / Abort: nothing is re-run without a person deciding.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import asyncpg

from actions.masking import Masker
from actions.plan import (
    artifact_reference,
    prepare_checks,
    prepare_steps,
    step_workdir,
)
from actions.remote import HostPool
from actions.remote_artifacts import artifact_refusal_on_hosts
from actions.render import RenderContext, RenderError
from actions.runner import run_steps
from actions.verify import run_checks
from bot import run_outcomes as outcomes
from bot import run_store
from bot.incidents import format_id
from bot.run_outcomes import thread_of
from bot.run_report import BackupArtifact, RunReporter
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
            except Exception:  # keep watching for work whatever one poll hit
                log.exception("executor: poll failed; will retry")
            await asyncio.sleep(self.poll_interval)

    async def poll(self) -> None:
        """Kick queued runs; mark runs with an expired lease interrupted and ask what to do."""
        async with self.services.pool.acquire() as conn:
            for row in await run_store.queued_runs(conn):
                self.kick(row["id"])
            async with conn.transaction():
                for run in await run_store.orphan_runs(conn):
                    await outcomes.interrupted(self.services, conn, run)

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
        renewer = asyncio.create_task(self._renew(run_id, asyncio.current_task()))
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
                    await outcomes.interrupted(self.services, conn, stopped)
        finally:
            renewer.cancel()

    async def _renew(self, run_id: int, runner: asyncio.Task) -> None:
        """Keep the lease; if it can't be kept, stop our step before another process may act.

        Another process treats the run as interrupted once the lease has lapsed; we give up
        at 70 % of it, so two processes never run steps of one run at the same time.
        """
        loop = asyncio.get_running_loop()
        last_renewed = loop.time()
        while True:
            await asyncio.sleep(self.lease / 4)
            try:
                async with asyncio.timeout(self.lease / 4):
                    async with self.services.pool.acquire() as conn:
                        kept = await run_store.renew_lease(
                            conn, run_id=run_id, owner=self.services.process_id, lease=self.lease
                        )
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                kept = None
            if kept:
                last_renewed = loop.time()
            elif kept is False or loop.time() - last_renewed > 0.7 * self.lease:
                log.error("run %s: lease lost; stopping its step so no other process overlaps",
                          run_id)  # fmt: skip
                runner.cancel()
                return

    async def _drive(self, run) -> None:
        # One run's SSH connections: opened on first use, reused by every step, closed here.
        async with HostPool(self.services.runbook.hosts) as pool:
            await self._drive_with(run, pool)

    async def _drive_with(self, run, pool: HostPool) -> None:
        runbook = self.services.runbook
        rollback = run["kind"] == "rollback"
        steps = runbook.scenario(run["scenario"]).steps if rollback else runbook.backup_steps
        async with self.services.pool.acquire() as conn:
            pinned = await run_store.pinned_backup(conn, run=run)
        backup = {name: rec.reference for name, (rec, _) in (pinned or {}).items()}
        ctx = RenderContext(
            runbook=runbook,
            ts=run["ts"],
            date=run["ts"][:8],
            backup=backup,
            incident_id=format_id(run["incident_id"]) if run["incident_id"] else None,
        )
        try:
            prepared = prepare_steps(runbook, steps, ctx)
            checks = prepare_checks(runbook, ctx) if rollback else []
            refusal = None
            if rollback:  # on every start: a Retry must not restore from a changed file
                scenario = runbook.scenario(run["scenario"])
                refusal = await artifact_refusal_on_hosts(runbook, scenario, pinned, pool)
        except RenderError as error:
            refusal = str(error)
        artifacts = {
            i: BackupArtifact(
                s.artifact.name,
                "file" if s.artifact.is_file else "value",
                artifact_reference(s, ctx),
                step_workdir(runbook, s),
                s.hosts[0] if s.hosts else None,
            )
            for i, s in enumerate(steps)
            if not rollback and s.artifact
        }
        reporter = RunReporter(
            self.services,
            run,
            thread_key=thread_of(run) if run["channel"] else None,
            names=[s.name for s in steps],
            artifacts=artifacts,
            pool=pool,
        )
        await outcomes.begin(self.services, run, reporter, refusal)
        if refusal is not None:
            return await outcomes.finish(
                self.services, run, reporter, "failed", reason=f"Can't start: {refusal}"
            )

        async def stop_requested() -> bool:
            if self.draining or reporter.failed_index is not None:
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
            pool=pool,
        )
        if ended.status == "failed" or reporter.failed_index is not None:
            index = ended.next_index if ended.status == "failed" else reporter.failed_index
            return await outcomes.stopped_at_failure(self.services, run, reporter, index, steps)
        if ended.status == "cancelled":
            async with self.services.pool.acquire() as conn:
                person = await run_store.stop_requested(conn, run_id=run["id"])
            if person is None and self.draining:  # a deploy, not a person: hand the run on
                return await outcomes.hand_on(self.services, run, reporter, ended.next_index)
            return await outcomes.finish(
                self.services, run, reporter, "cancelled", next_index=ended.next_index
            )
        verified = None
        if checks:
            results = await run_checks(
                checks,
                workdir=runbook.workdir,
                masker=masker_for(runbook.workdir),
                on_event=reporter,
                env=step_environment(),
                default_dsn=runbook.vars.get("db_url"),
                pool=pool,
            )
            verified = all(r.passed for r in results)
        await outcomes.finish(self.services, run, reporter, "succeeded", verified=verified)
