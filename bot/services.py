"""What the handlers and workflows share: the pool, the runbook, and the hand-off hooks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from actions.model import Runbook

log = logging.getLogger(__name__)


class Refusal(Exception):
    """A request we won't carry out; str() tells the person what happened and what to do."""


async def _no_members(group_id: str) -> set[str]:
    return set()


def _ignore(*_args: object) -> None:
    return None


class Background:
    """Tasks that outlive the code that started them: held until done (the loop keeps only a
    weak reference to a task), a failure logged, and given a bounded wait at shutdown.

    `Services.after_ack` holds what a handler still does once Slack has its acknowledgement
    (a private answer, a modal to open, the Home tab): Bolt answers Slack as soon as a handler
    returns (`process_before_response`), not on a 10 ms poll for the ack, so a handler
    acknowledges, hands the rest to `start`, and returns.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def start(self, work: Awaitable[object], name: str | None = None) -> None:
        """Run `work` in the background; a failure is logged, never lost silently."""
        task = asyncio.ensure_future(work)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work %s failed", task.get_name(), exc_info=task.exception())

    async def finish(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for what is in flight, then cancel what is left."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


@dataclass
class Services:
    """Built once per process by the web/socket entry point; nothing global."""

    pool: asyncpg.Pool
    runbook: Runbook
    process_id: str
    members_of: Callable[[str], Awaitable[set[str]]] = _no_members  # user group -> user IDs
    schedule_deadline: Callable[[asyncpg.Record], None] = _ignore
    run_queued: Callable[[int], None] = _ignore  # the one hand-off to the runner
    run_finished: Callable[[int], None] = _ignore  # a run ended (notice, post-mortem)
    incident_closed: Callable[[int], None] = _ignore  # resolved/cancelled (post-mortem refresh)
    scenario_refusal: Callable[..., Awaitable[str | None]] | None = None
    data_dir: Path | None = None  # ROLLBACK_DATA_DIR: post-mortems are written under it
    slack: Any = None  # the Web API client, for calls that are not chat messages (canvases…)
    http: Any = None  # one aiohttp session for private answers (response_urls)
    after_ack: Background = field(default_factory=Background)

    def scenario_title(self, key: str | None) -> str:
        """The runbook's title for a scenario key ('' when unknown or None)."""
        scenario = self.runbook.scenario(key) if key else None
        return scenario.title if scenario else ""
