"""The world the workflow property test runs in: one database, two processes' Services."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import asyncpg

from actions.runbook import load_runbook
from bot.db.postgres import create_pool, migrate
from bot.lifecycle import CLOSED_STATES, TRANSITIONS, Event, State
from bot.services import Services
from tests.conftest import dsn_for_database
from tests.e2e.fault_points import FusedPool

CHANNEL, OTHER_CHANNEL = "CPROP0001", "COTHER001"
APPROVER_1, APPROVER_2, GROUP_MEMBER, OUTSIDER = "UAPPR0001", "UAPPR0002", "UGROUP001", "UOUT00001"
GROUP = "SGROUP001"
PEOPLE = (APPROVER_1, APPROVER_2, GROUP_MEMBER, OUTSIDER)
ALLOWED = {APPROVER_1, APPROVER_2, GROUP_MEMBER}  # approvers = [APPROVER_1, APPROVER_2, GROUP]

# What people can do to an incident, and what the bot does by itself (deadlines, the runner).
PEOPLE_EVENTS = {Event.ESCALATE, Event.REQUEST_APPROVAL, Event.APPROVE, Event.REJECT}
PEOPLE_EVENTS |= {Event.RESOLVE, Event.CANCEL, Event.RESUME}
RUNNER_EVENTS = {Event.EXPIRE, Event.START_RUN, Event.RUN_SUCCEEDED, Event.RUN_FAILED}
RUNNER_EVENTS |= {Event.STEP_FAILED, Event.INTERRUPTED}


def can_close(state: State) -> bool:
    """Whether some sequence of people's and the bot's events leads to resolved/cancelled."""
    seen, todo = {state}, [state]
    while todo:
        current = todo.pop()
        if current in CLOSED_STATES:
            return True
        for (source, event), target in TRANSITIONS.items():
            allowed = event in PEOPLE_EVENTS or event in RUNNER_EVENTS
            if source == current and allowed and target not in seen:
                seen.add(target)
                todo.append(target)
    return False


class World:
    """One database and two processes' Services on it, shared by every example of a test.

    Each process reaches the database through its own `FusedPool` (a fuse it may die by).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, server_dsn: str, runbook_path) -> None:
        self.loop = loop
        self.name = "p_" + uuid.uuid4().hex[:12]
        self.server_dsn = server_dsn
        self.dsn = dsn_for_database(server_dsn, self.name)
        self.runbook = load_runbook(runbook_path)
        self.queued: list[int] = []
        loop.run_until_complete(self._open())

    async def _open(self) -> None:
        conn = await asyncpg.connect(self.server_dsn)
        try:
            await conn.execute(f'create database "{self.name}"')
        finally:
            await conn.close()
        await migrate(self.dsn)
        self.pools = [await create_pool(self.dsn, max_size=4) for _ in range(2)]

        async def members_of(group: str) -> set[str]:
            return {GROUP_MEMBER} if group == GROUP else set()

        self.services = [
            Services(
                pool=FusedPool(pool),
                runbook=self.runbook,
                process_id=f"process-{n}",
                members_of=members_of,
                run_queued=self.queued.append,
            )
            for n, pool in enumerate(self.pools)
        ]

    def new_process(self, n: int, tag: str) -> None:
        """Process n starts again under a new id, with a new (unarmed) fuse."""
        self.services[n] = dataclasses.replace(
            self.services[n], process_id=f"process-{n}-{tag}", pool=FusedPool(self.pools[n])
        )

    def reset(self) -> None:
        """An empty database for the next example."""
        self.queued.clear()

        async def truncate() -> None:  # every table the migrations made, whoever added it
            async with self.pools[0].acquire() as conn:
                names = await conn.fetch(
                    "select tablename from pg_tables where schemaname = 'public'"
                    " and tablename <> 'schema_migrations'"
                )
                tables = ", ".join(f'"{r["tablename"]}"' for r in names)
                await conn.execute(f"truncate {tables} restart identity cascade")

        self.loop.run_until_complete(truncate())

    def close(self) -> None:
        async def drop() -> None:
            for pool in self.pools:
                await pool.close()
            conn = await asyncpg.connect(self.server_dsn)
            try:
                await conn.execute(f'drop database if exists "{self.name}" with (force)')
            finally:
                await conn.close()

        self.loop.run_until_complete(drop())


# How a run moves (bot/runs/store.py, handlers.py, outcomes.py): by whom it can end.
RUN_MOVES = {
    "held": {"queued"},  # promote, when the project is free
    "queued": {"running", "aborted"},  # claim_run; closing the incident aborts it
    "running": {"waiting", "interrupted", "queued", "succeeded", "failed", "cancelled"},
    "waiting": {"queued", "aborted"},  # Retry / Skip, Abort
    "interrupted": {"queued", "aborted"},  # Resume, Abort
}
RUN_ENDED = {"succeeded", "failed", "cancelled", "aborted"}


def run_can_end(state: str) -> bool:
    """Whether some sequence of the executor's and people's moves ends a run in this state."""
    seen, todo = {state}, [state]
    while todo:
        current = todo.pop()
        if current in RUN_ENDED:
            return True
        for target in RUN_MOVES.get(current, ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return False
