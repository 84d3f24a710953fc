"""Deadlines as APScheduler jobs, rebuilt from the database; firing is a claim in SQL."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

from bot.incidents import store

log = logging.getLogger(__name__)


class DeadlineScheduler:
    """Every process schedules every pending deadline; the SQL claim lets one of them fire it.

    `sync` reloads pending deadlines periodically, so a deadline created by another process,
    or one that passed while this process was down, is picked up (a past date fires at once).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        fire: Callable[[int], Awaitable[bool]],
        *,
        sync_interval: float,
    ) -> None:
        self.pool, self.fire, self.sync_interval = pool, fire, sync_interval
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def start(self) -> None:
        """Start the scheduler and the periodic resync (the first one runs at once)."""
        self.scheduler.start()
        self.scheduler.add_job(
            self.sync,
            "interval",
            seconds=self.sync_interval,
            id="sync",
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
        )

    def shutdown(self) -> None:
        """Stop scheduling; deadlines stay in the database for the next start."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def sync(self) -> None:
        """Schedule every pending deadline not already scheduled here."""
        try:
            async with self.pool.acquire() as conn:
                pending = await store.pending_deadlines(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("scheduler: database unavailable (%s); will retry", error)
            return
        for deadline in pending:
            if self.scheduler.get_job(_job_id(deadline["id"])) is None:
                self.add(deadline)

    def add(self, deadline: asyncpg.Record) -> None:
        """Schedule one deadline (replacing any job for it)."""
        self.scheduler.add_job(
            self._fire,
            DateTrigger(run_date=deadline["due_at"]),
            args=[deadline["id"]],
            id=_job_id(deadline["id"]),
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _fire(self, deadline_id: int) -> None:
        try:
            fired = await self.fire(deadline_id)
        except Exception:
            log.exception("deadline %s failed to fire; the next sync retries it", deadline_id)
            return
        log.info("deadline %s %s", deadline_id, "fired here" if fired else "not claimed here")


def _job_id(deadline_id: int) -> str:
    return f"deadline-{deadline_id}"
