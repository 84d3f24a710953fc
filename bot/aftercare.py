"""What follows a rollback run's end: the maintenance notice, then the post-mortem.

`services.run_finished(run_id)` is called by the process that ran the run, after the run's
transaction committed; the work happens in a task of that process. The notice is owed
through the outbox (claimed per run and channel); the post-mortem is claimed per incident.
"""

from __future__ import annotations

import asyncio
import logging

from bot import notice, postmortem, run_store, store
from bot.incidents import format_id
from bot.services import Services

log = logging.getLogger(__name__)


class Aftercare:
    """Runs the after-run work in background tasks and waits for them at shutdown."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.tasks: set[asyncio.Task] = set()

    def run_finished(self, run_id: int) -> None:
        """The hook for `services.run_finished`: start the after-run work for `run_id`."""
        task = asyncio.get_running_loop().create_task(self.after(run_id), name=f"after-{run_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def after(self, run_id: int) -> None:
        """Post the notice and create the post-mortem of an ended rollback (not of backups)."""
        services, rid = self.services, "?"
        try:
            async with services.pool.acquire() as conn:
                run = await run_store.get_run(conn, run_id=run_id)
            if run is None or run["kind"] != "rollback" or not run["incident_id"]:
                return
            rid = format_id(run["incident_id"])
            if run["ended_at"] is None:
                return  # stopped for a decision, not ended
            async with services.pool.acquire() as conn, conn.transaction():
                incident = await store.lock_incident(conn, incident_id=run["incident_id"])
                await notice.post_notices(conn, services, incident, run, user="bot", refresh=False)
            await postmortem.create(
                services, incident_id=run["incident_id"], run_id=run_id, actor="bot"
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: after run %s: notice or post-mortem failed", rid, run_id)

    async def close(self, timeout: float = 10.0) -> None:
        """Give running after-run work a little time to finish, then cancel it."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
