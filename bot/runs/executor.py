"""Runs backups and approved rollbacks: one process per run (a claim plus a renewed lease).

The executor never talks to Slack: it stores results and owes messages through the outbox.
A run whose owner stops renewing its lease is marked interrupted by any process, and the
thread offers Resume / Abort: nothing is re-run without a person deciding.

The fence, with L the lease: the owner renews every L/4 s; when it has not renewed within
L/2 s of the last renewal it sent, it stops the step's process group (SIGTERM, SIGKILL
after KILL_GRACE), so the group is dead before L/2 + KILL_GRACE. Another process takes the
run as interrupted only once `lease_until` is more than KILL_GRACE in the past (L + KILL_GRACE
after that renewal), and a step is only started or recorded while the lease is unexpired.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from actions.runner import KILL_GRACE, run_steps
from actions.verify import run_checks
from bot.lifecycle import format_id
from bot.runs import clock as run_clock
from bot.runs import data_facts, outcomes
from bot.runs import queue as run_queue
from bot.runs import store as run_store
from bot.runs.outcomes import thread_of
from bot.runs.report import BackupArtifact, RunReporter
from bot.services import Services

log = logging.getLogger(__name__)
RESUME_GRACE = KILL_GRACE  # another process waits this long past a lapsed lease
_BOT_SECRETS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DATABASE_URL")


def step_environment() -> dict[str, str]:
    """The bot's environment without its own secrets: what every step runs with."""
    return {k: v for k, v in os.environ.items() if k not in _BOT_SECRETS}


def masker_for(workdir: Path) -> Masker:
    """Mask the bot's secrets and every value in the project's `.env` files and their copies."""
    # Copies live in each backup's folder and each rollback's failed-state folder, at any depth.
    env_files = [*workdir.glob(".env*"), *(workdir / "backup").rglob(".env*")]
    own = [os.environ[k] for k in _BOT_SECRETS if os.environ.get(k)]
    return Masker(own).with_env_files(env_files)


class RunExecutor:
    """Takes queued runs, drives them, and recovers runs whose process died."""

    def __init__(
        self,
        services: Services,
        *,
        lease: float,
        poll_interval: float,
        clock_after: float = run_clock.SHOW_AFTER,
    ) -> None:
        self.services, self.lease, self.poll_interval = services, lease, poll_interval
        self.clock_after = clock_after  # ROLLBACK_STEP_CLOCK_AFTER
        self.tasks: dict[int, asyncio.Task] = {}
        self.draining = False  # set on SIGTERM: finish the current step, start no other
        self._unreported: set[int] = set()  # orphans whose report failed (logged once each)

    def kick(self, run_id: int) -> None:
        """Start a queued run in this process, if nobody else has (the one hand-off)."""
        if run_id in self.tasks or self.draining:
            return
        task = asyncio.create_task(self._execute_then_look(run_id), name=f"run-{run_id}")
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
        """Queue a held run if the project is free, kick queued runs (lost kicks), and mark
        runs whose lease lapsed interrupted, each in its own transaction."""
        async with self.services.pool.acquire() as conn:
            async with conn.transaction():
                await run_queue.promote(conn)
            for row in await run_store.queued_runs(conn):
                self.kick(row["id"])
            for run_id in await run_store.stale_runs(conn, grace=RESUME_GRACE):
                await self._report_orphan(conn, run_id)

    async def _report_orphan(self, conn, run_id: int) -> None:
        """One orphan, one transaction: a row that can't be reported never blocks the others.

        If the report fails, the run is still marked interrupted (no messages) so a person
        can find it (`rollback-bot runs`) and end it; the error is logged once.
        """
        try:
            async with conn.transaction():
                run = await run_store.take_orphan(conn, run_id=run_id, grace=RESUME_GRACE)
                if run is not None:
                    await outcomes.interrupted(self.services, conn, run)
            return
        except (OSError, asyncpg.InterfaceError):
            raise  # the database is unavailable: the next poll tries again
        except Exception:
            if run_id not in self._unreported:
                self._unreported.add(run_id)
                log.exception("run %s: its interruption could not be reported in its thread; "
                              "marking it interrupted without a message", run_id)  # fmt: skip
        try:
            async with conn.transaction():
                run = await run_store.take_orphan(conn, run_id=run_id, grace=RESUME_GRACE)
                if run is not None:
                    await outcomes.interrupted_plainly(conn, run)
        except (OSError, asyncpg.InterfaceError):
            raise
        except Exception:  # already logged above; `rollback-bot runs` still lists it
            pass

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
            sent = asyncio.get_running_loop().time()  # lease_until >= this + lease
            run = await run_store.claim_run(conn, run_id=run_id, owner=me, lease=self.lease)
        if run is None:
            return  # another process took it, or it is no longer queued
        renewer = asyncio.create_task(self._renew(run_id, asyncio.current_task(), sent))
        try:
            await self._drive(run)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run %s failed inside the bot; marking it interrupted", run_id)
            await self._interrupt(run_id)
        finally:
            renewer.cancel()

    async def _execute_then_look(self, run_id: int) -> None:
        await self.execute(run_id)
        if not self.draining:  # the project may be free now: the next run need not wait a poll
            try:
                await self.poll()
            except Exception as error:  # the poll loop tries again
                log.warning("executor: could not look for the next run (%s)", error)

    async def _interrupt(self, run_id: int) -> None:
        """Our run hit an error inside the bot: interrupted, with Resume / Abort offered."""
        async with self.services.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    if (stopped := await self._stop_running(conn, run_id)) is not None:
                        await outcomes.interrupted(self.services, conn, stopped)
                return
            except (OSError, asyncpg.InterfaceError):
                raise
            except Exception:
                log.exception("run %s: the interruption could not be reported", run_id)
            async with conn.transaction():
                if (stopped := await self._stop_running(conn, run_id)) is not None:
                    await outcomes.interrupted_plainly(conn, stopped)

    async def _stop_running(self, conn, run_id: int):
        """Our running run, now interrupted and released (None when it isn't ours running)."""
        return await run_store.leave_running(
            conn,
            run_id=run_id,
            holder=self.services.process_id,
            state="interrupted",
        )

    async def _renew(self, run_id: int, runner: asyncio.Task, claimed: float) -> None:
        """Keep the lease; if it can't be kept, stop our step before another process may act.

        Renewals go out every lease/4 s from their own task. The fence is a timer that never
        waits on the database: it is measured from when the last successful renewal was
        *sent* (its `lease_until` is at least that + lease); if no renewal has succeeded by
        then + lease/2, or one found the run no longer ours, the run's task is cancelled,
        which stops the step's process group (SIGTERM, then SIGKILL after KILL_GRACE).
        Another process only takes the run as interrupted after lease + RESUME_GRACE.
        """
        loop = asyncio.get_running_loop()
        last = {"sent": claimed}  # the claim itself set lease_until = now() + lease
        lost = asyncio.Event()

        async def renewals() -> None:
            while True:
                await asyncio.sleep(self.lease / 4)
                sent = loop.time()
                try:
                    async with self.services.pool.acquire() as conn:
                        kept = await run_store.renew_lease(
                            conn, run_id=run_id, owner=self.services.process_id, lease=self.lease
                        )
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    continue
                if not kept:
                    lost.set()
                    return
                last["sent"] = max(last["sent"], sent)

        renewing = asyncio.create_task(renewals(), name=f"lease-{run_id}")
        try:
            while not lost.is_set():
                remaining = last["sent"] + self.lease / 2 - loop.time()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await lost.wait()
            log.error("run %s: lease not renewed in time; stopping its step so no other "
                      "process overlaps", run_id)  # fmt: skip
            runner.cancel()
        finally:
            renewing.cancel()  # not awaited: it may be stuck on the database

    async def _drive(self, run) -> None:
        # One run's SSH connections: opened on first use, reused by every step, closed here.
        async with HostPool(self.services.runbook.hosts) as pool:
            await self._drive_with(run, pool)

    async def _drive_with(self, run, pool: HostPool) -> None:
        runbook = self.services.runbook
        rollback = run["kind"] == "rollback"
        scenario = runbook.scenario(run["scenario"]) if rollback else None
        steps = (scenario.steps if scenario else []) if rollback else runbook.backup_steps
        identities = [
            run_clock.step_identity(run["kind"], run["scenario"], s.name, s.run) for s in steps
        ]
        async with self.services.pool.acquire() as conn:
            pinned = await run_store.pinned_backup(conn, run=run)
            last = await run_store.last_durations(conn, identities=identities)
        backup = {name: rec.reference for name, (rec, _) in (pinned or {}).items()}
        ctx = RenderContext(
            runbook=runbook,
            ts=run["ts"],
            date=run["ts"][:8],
            backup=backup,
            incident_id=format_id(run["incident_id"]) if run["incident_id"] else None,
            run_id=run["id"],
        )
        prepared, checks, refusal = [], [], None
        try:
            prepared = prepare_steps(runbook, steps, ctx)
            checks = prepare_checks(runbook, ctx) if rollback else []
            if rollback and scenario is None:
                refusal = f"the scenario `{run['scenario']}` is no longer in the runbook"
            elif rollback:  # on every start: a Retry must not restore from a changed file
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
            identities=identities,
            last_times=[last.get(i) for i in identities],
            clock_after=self.clock_after,
        )
        if not await outcomes.begin(self.services, run, reporter, refusal):
            return await outcomes.finish(
                self.services, run, reporter, "cancelled",
                reason=f"{format_id(run['incident_id'])} was closed before this rollback's "
                "first step, so no step ran.",
            )  # fmt: skip
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
        if not rollback:
            problem = await data_facts.record_manifest(self.services, run, ctx)
            if problem is not None:
                problem = masker_for(runbook.workdir).mask(problem)
                reason = (
                    f"The backup's steps ran, but its manifest could not be recorded: {problem}"
                )
                return await outcomes.finish(self.services, run, reporter, "failed", reason=reason)
        verified = None
        if rollback:  # what the restore discarded, before the checks (stored, then said)
            await data_facts.compare_after_restore(
                self.services,
                run,
                ctx,
                masker=masker_for(runbook.workdir),
                thread_key=thread_of(run) if run["channel"] else None,
            )
        if checks:
            async with self.services.pool.acquire() as conn:
                manifest = await data_facts.manifest_of(conn, backup_run_id=run["backup_run_id"])
            results = await run_checks(
                checks,
                workdir=runbook.workdir,
                masker=masker_for(runbook.workdir),
                on_event=reporter,
                env=step_environment(),
                default_dsn=runbook.vars.get("db_url"),
                pool=pool,
                manifest=manifest,
            )
            verified = all(r.passed for r in results)
        if not rollback and (missing := await self._missing_artifacts(run, steps)):
            return await outcomes.finish(
                self.services, run, reporter, "failed",
                reason="The backup is NOT complete: no artifact was recorded for "
                f"{', '.join(missing)} (its step was skipped or failed). Rollbacks keep using "
                "the last complete backup.",
            )  # fmt: skip
        await outcomes.finish(self.services, run, reporter, "succeeded", verified=verified)

    async def _missing_artifacts(self, run, steps) -> list[str]:
        """The artifacts a backup's steps declare that this run did not record."""
        async with self.services.pool.acquire() as conn:
            recorded = await run_store.backup_artifacts(conn, backup_run_id=run["id"])
        return [s.artifact.name for s in steps if s.artifact and s.artifact.name not in recorded]
