"""The runner's event sink: store each result, then owe the thread its message. No Slack I/O."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from actions.artifacts import ArtifactError, record_artifact
from actions.events import CheckEnded, Event, RunEnded, RunStarted, StepEnded, StepStarted
from actions.remote import HostPool
from actions.remote_artifacts import record_remote_artifact
from bot.runs import clock as run_clock
from bot.runs import render as run_blocks
from bot.runs import store as run_store
from bot.services import Services
from bot.slack import outbox

log = logging.getLogger(__name__)
PROGRESS_EVERY = 2.0  # seconds between progress edits (the run's end always edits it)


def progress_key(run_id: int) -> str:
    """The logical key of a run's progress message."""
    return f"run/{run_id}/progress"


def step_key(run_id: int, index: int, attempt: int) -> str:
    """The logical key of one attempt's step message."""
    return f"run/{run_id}/step/{index}/{attempt}"


@dataclass(frozen=True)
class BackupArtifact:
    """What a backup step leaves, rendered for this run."""

    name: str
    kind: str
    reference: str
    workdir: Path  # on `host` when it is set
    host: str | None = None  # the [hosts.NAME] its backup step runs on; None: here


class RunReporter:
    """Called with every runner event; awaited, so a result is stored before the next step."""

    def __init__(
        self,
        services: Services,
        run,
        *,
        thread_key: str | None,
        names: list[str],
        artifacts: dict[int, BackupArtifact] | None = None,
        pool: HostPool | None = None,
        identities: list[str] | None = None,
        last_times: list[float | None] | None = None,
        clock_after: float = run_clock.SHOW_AFTER,
    ) -> None:
        self.services, self.run, self.thread_key, self.names = (
            services,
            dict(run),
            thread_key,
            names,
        )
        self.artifacts = artifacts or {}
        self.pool = pool  # the run's SSH connections, for artifacts on hosts
        self.checks: list[CheckEnded] = []
        self.failed_index: int | None = None  # a backup step 'succeeded' without a usable artifact
        self._last_progress = 0.0
        self._pending: tuple[int, str | None, str] | None = None  # a throttled progress edit
        self._flusher: asyncio.Task | None = None
        self._attempts: dict[int, int] = {}
        self._started: dict[int, datetime] = {}
        # each step's run_clock.step_identity, and how long it took last time (None: never)
        self.identities = identities or [None] * len(names)
        self.last_times = last_times or [None] * len(names)
        self.clock_after = clock_after
        self._running: tuple[int, datetime] | None = None  # the step running, since when
        self._ticker: asyncio.Task | None = None  # edits its messages as its clock changes
        self._tick_lock = asyncio.Lock()
        self._owed: dict[str, tuple[str, list]] = {}  # the last content owed, per message key

    async def __call__(self, event: Event) -> None:
        """Store the event's facts and owe the matching message, in one transaction."""
        if isinstance(event, StepStarted):
            await self._step_started(event)
        elif isinstance(event, StepEnded):
            await self._step_ended(event)
        elif isinstance(event, CheckEnded):
            self.checks.append(event)
            async with self.services.pool.acquire() as conn:
                await run_store.insert_check(conn, run_id=self.run["id"], check=event)
        elif isinstance(event, RunStarted | RunEnded):
            pass  # the executor owns the run's beginning and end

    async def _step_started(self, event: StepStarted) -> None:
        async with self.services.pool.acquire() as conn, conn.transaction():
            row = await run_store.start_step(
                conn,
                owner=self.services.process_id,
                run_id=self.run["id"],
                index=event.index,
                name=event.name,
                started_at=event.started_at,
                identity=self.identities[event.index],
            )
            self._attempts[event.index] = row["attempt"]
            self._started[event.index] = event.started_at
            if self.thread_key is None:
                return
            self._running = (event.index, event.started_at)
            text, blocks = self._running_message(event.index, event.name, row["attempt"])
            key = step_key(self.run["id"], event.index, row["attempt"])
            await outbox.post(
                conn,
                channel=self.run["channel"],
                text=text,
                blocks=blocks,
                key=key,
                thread_key=self.thread_key,
            )
            self._owed[key] = (text, blocks)
            await self.progress(conn, done=event.index, current=event.name)
        self._ticker = asyncio.create_task(
            self._tick(event.index, event.name, row["attempt"], asyncio.current_task()),
            name=f"run-{self.run['id']}-clock",
        )

    def _elapsed(self, index: int) -> float | None:
        """How long step `index` has run, as its messages show it (None: not yet shown)."""
        if self._running is None or self._running[0] != index:
            return None
        seconds = (datetime.now(UTC) - self._running[1]).total_seconds()
        return run_clock.shown_elapsed(seconds, after=self.clock_after)

    def _running_message(self, index: int, name: str, attempt: int) -> tuple[str, list]:
        return run_blocks.step_message(
            index=index,
            total=len(self.names),
            name=name,
            status="running",
            attempt=attempt,
            started_at=self._started[index],
            elapsed=self._elapsed(index),
            last_time=self.last_times[index],
        )

    async def _tick(self, index: int, name: str, attempt: int, owner) -> None:
        """Edit the running step's message and the progress message each time the step's
        shown clock changes (run_clock.next_change), never in between; until it ends."""
        key = step_key(self.run["id"], index, attempt)
        while True:
            seconds = (datetime.now(UTC) - self._started[index]).total_seconds()
            due = run_clock.next_change(seconds, after=self.clock_after)
            await asyncio.sleep(due - seconds + 0.01)
            async with self._tick_lock:
                if owner is None or owner.done():
                    return  # the run stopped without the step's end (lease lost, cancelled)
                try:
                    async with self.services.pool.acquire() as conn, conn.transaction():
                        if not await run_store.lock_running_step(
                            conn, run_id=self.run["id"], index=index,
                            owner=self.services.process_id,
                        ):  # fmt: skip
                            return
                        text, blocks = self._running_message(index, name, attempt)
                        if self._owed.get(key) != (text, blocks):
                            await outbox.update(conn, key=key, text=text, blocks=blocks)
                            self._owed[key] = (text, blocks)
                        await self.progress(conn, done=index, current=name)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("run %s: step clock not shown (%s)", self.run["id"], error)
                except Exception:  # the step goes on; only its clock stops
                    log.exception("run %s: step clock stopped", self.run["id"])
                    return

    async def _stop_clock(self) -> None:
        """Stop the running step's clock; once this returns it owes no further edit."""
        ticker, self._ticker = self._ticker, None
        if ticker is None:
            return
        async with self._tick_lock:  # the ticker is asleep or waiting here: never mid-write
            ticker.cancel()
            self._running = None
        await asyncio.wait([ticker])

    async def _step_ended(self, event: StepEnded) -> None:
        await self._stop_clock()
        status = event.status
        message = event.message
        artifact = self.artifacts.get(event.index)
        recorded = None
        if artifact is not None and event.succeeded:
            try:  # hashing a large dump must not block the event loop (acks, lease renewal)
                recorded = await self._record_on_host(artifact) if artifact.host else None
                recorded = recorded or await asyncio.to_thread(
                    record_artifact,
                    artifact.name,
                    kind=artifact.kind,
                    rendered_path_or_value=artifact.reference,
                    workdir=artifact.workdir,
                )
            except ArtifactError as error:
                status, message = "failed", str(error)
                self.failed_index = event.index
        moves_on = status == "succeeded" or event.continue_on_error
        async with self.services.pool.acquire() as conn, conn.transaction():
            await run_store.end_step(
                conn,
                owner=self.services.process_id,
                run_id=self.run["id"],
                index=event.index,
                status=status,
                ended_at=event.ended_at,
                exit_code=event.exit_code,
                output_tail=event.output_tail,
                message=message,
                next_step=event.index + 1 if moves_on else event.index,
            )
            if recorded is not None:
                await run_store.insert_artifact(
                    conn, run_id=self.run["id"], artifact=recorded, workdir=artifact.workdir
                )
            if self.thread_key is None:
                return
            attempt = self._attempts.get(event.index, 1)
            text, blocks = run_blocks.step_message(
                index=event.index,
                total=len(self.names),
                name=event.name,
                status=status,
                attempt=attempt,
                duration=event.duration,
                tail=event.output_tail,
                message=message,
                hosts=event.hosts,
            )
            await outbox.update(
                conn, key=step_key(self.run["id"], event.index, attempt), text=text, blocks=blocks
            )

    async def _record_on_host(self, artifact: BackupArtifact):
        if artifact.kind != "file" or self.pool is None or artifact.host is None:
            return None  # a value is recorded as here
        return await record_remote_artifact(
            self.pool,
            artifact.name,
            host=artifact.host,
            path=artifact.reference,
            workdir=artifact.workdir,
        )

    async def progress(
        self, conn, *, done: int, current: str | None, state: str = "running", force: bool = False
    ) -> None:
        """Owe an edit of the progress message, at most every PROGRESS_EVERY seconds.

        A throttled edit is not dropped: the latest one is written when the window ends, so
        a long step right after a short one is shown as the current step.
        """
        if self.thread_key is None:
            return
        wait = PROGRESS_EVERY - (time.monotonic() - self._last_progress)
        if not force and wait > 0:
            self._pending = (done, current, state)
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_later(wait))
            return
        self._pending = None
        self._last_progress = time.monotonic()
        run = await run_store.get_run(conn, run_id=self.run["id"])
        now = datetime.now(UTC)
        timing = {}
        if state == "running" and current is not None and done < len(self.names):
            since = self._running[1] if self._running and self._running[0] == done else None
            timing = {
                "elapsed": self._elapsed(done),
                "last_time": self.last_times[done],
                "estimate": run_clock.estimate(
                    now,
                    current_elapsed=(now - since).total_seconds() if since else 0.0,
                    last_times=self.last_times[done:],
                ),
            }
        text, blocks = run_blocks.progress(
            dict(run), done=done, current=current, now=now, state=state, **timing
        )
        key = progress_key(self.run["id"])
        if self._owed.get(key) == (text, blocks):
            return  # nothing would change
        await outbox.update(conn, key=key, text=text, blocks=blocks)
        self._owed[key] = (text, blocks)

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        if self._pending is None:
            return  # a later edit (or the run's end) already went out
        done, current, state = self._pending
        try:
            async with self.services.pool.acquire() as conn:
                await self.progress(conn, done=done, current=current, state=state, force=True)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("run %s: progress edit not written (%s)", self.run["id"], error)
