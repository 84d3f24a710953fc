"""What the handlers and workflows share: the pool, the runbook, and the hand-off hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from actions.model import Runbook


class Refusal(Exception):
    """A request we won't carry out; str() tells the person what happened and what to do."""


async def _no_members(group_id: str) -> set[str]:
    return set()


def _ignore(*_args: object) -> None:
    return None


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

    def scenario_title(self, key: str | None) -> str:
        """The runbook's title for a scenario key ('' when unknown or None)."""
        scenario = self.runbook.scenario(key) if key else None
        return scenario.title if scenario else ""
