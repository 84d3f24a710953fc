"""What follows a rollback run's end: the maintenance notice, then the post-mortem.

`services.run_finished(run_id)` is called by the process that ran the run, after the run's
transaction committed; the work happens in a task of that process. If that process dies
first, `sweep` (run periodically by every process) finds ended runs whose after-run work is
not done and claims them. The notice is owed through the outbox (claimed per run and
channel); the post-mortem is claimed per incident.
"""

from __future__ import annotations

import asyncio
import logging

from bot.comms import notice, postmortem
from bot.incidents import store
from bot.lifecycle import format_id
from bot.services import Background, Services

log = logging.getLogger(__name__)
# A claim older than this is taken as abandoned (its process died) and may be taken again.
_UNCLAIMED = "(aftercare_claimed_at is null or aftercare_claimed_at < now() - interval '5 minutes')"


class Aftercare:
    """Runs the after-run work in background tasks and waits for them at shutdown."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.tasks = Background()

    def run_finished(self, run_id: int) -> None:
        """The hook for `services.run_finished`: start the after-run work for `run_id`."""
        self.tasks.start(self.after(run_id), name=f"after-{run_id}")

    def incident_closed(self, incident_id: int) -> None:
        """The hook for `services.incident_closed`: bring its post-mortem up to date."""
        self.tasks.start(self._refresh(incident_id), name=f"postmortem-refresh-{incident_id}")

    async def _refresh(self, incident_id: int) -> None:
        try:
            await postmortem.refresh(self.services, incident_id=incident_id)
        except Exception:  # `/rollback postmortem ID` refreshes it by hand
            log.exception("%s: post-mortem not refreshed", format_id(incident_id))

    async def sweep(self) -> None:
        """Start the after-run work of ended rollbacks that nobody has completed."""
        async with self.services.pool.acquire() as conn:
            rows = await conn.fetch(
                "select id from runs where kind = 'rollback' and ended_at is not null"
                " and ended_at > now() - interval '1 day' and aftercare_done_at is null"
                f" and {_UNCLAIMED} order by id"
            )
        for row in rows:
            self.run_finished(row["id"])

    async def run_forever(self, interval: float) -> None:
        """Sweep every `interval` seconds until cancelled."""
        while True:
            try:
                await self.sweep()
            except Exception:  # a failed sweep is retried; nothing is lost meanwhile
                log.exception("after-run sweep failed; will retry")
            await asyncio.sleep(interval)

    async def after(self, run_id: int) -> None:
        """Post the notice and create the post-mortem of an ended rollback (not of backups)."""
        services, rid = self.services, "?"
        try:
            async with services.pool.acquire() as conn:
                run = await conn.fetchrow(
                    "update runs set aftercare_claimed_at = now() where id = $1"
                    " and kind = 'rollback' and incident_id is not null and ended_at is not null"
                    f" and aftercare_done_at is null and {_UNCLAIMED} returning *",
                    run_id,
                )
            if run is None:
                return  # not an ended rollback, done already, or another process has it
            rid = format_id(run["incident_id"])
            async with services.pool.acquire() as conn, conn.transaction():
                incident = await store.lock_incident(conn, incident_id=run["incident_id"])
                ran = await conn.fetchval(
                    "select exists (select 1 from step_results where run_id = $1)", run_id
                )
                if ran:  # a rollback refused before its first step changed nothing to announce
                    await notice.post_notices(
                        conn, services, incident, run, user="bot", refresh=False
                    )
            await postmortem.create(
                services, incident_id=run["incident_id"], run_id=run_id, actor="bot"
            )
            async with services.pool.acquire() as conn:
                # Done only when the post-mortem was settled (created, or refused by Slack and
                # kept as a file): a claim still 'creating' elsewhere leaves this for a sweep.
                await conn.execute(
                    "update runs set aftercare_done_at = now() where id = $1 and exists"
                    " (select 1 from postmortems p where p.incident_id = runs.incident_id"
                    " and p.state in ('created', 'failed'))",
                    run_id,
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: after run %s: notice or post-mortem failed", rid, run_id)

    async def close(self, timeout: float = 10.0) -> None:
        """Give running after-run work a little time to finish, then cancel it."""
        await self.tasks.finish(timeout)
