"""What the property tests' state machines share: calling as a process, deaths, reading the DB.

`WorldMachine` runs each call as one of the two simulated processes of `World`
(tests/e2e/workflow_world.py). The rule `death_armed` arms that process's fuse
(tests/e2e/fault_points.py): it dies at a random later database point, mid-transaction,
before a commit, between two transactions, or after its last commit before it answers. A
call that dies acknowledged nothing; the process then comes back under a new id
(`process_died`, which subclasses extend, e.g. to let the dead process's leases lapse).
"""

from __future__ import annotations

import collections

import asyncpg
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from bot.services import Refusal
from tests.e2e.workflow_world import World

DIED = "the process died"


class WorldMachine(RuleBasedStateMachine):
    """Two simulated processes on one database, either of which may die at any point."""

    world: World  # set by the test before the machine runs

    def __init__(self) -> None:
        super().__init__()
        self.world.reset()
        self.acknowledged: collections.Counter = collections.Counter()
        self.deaths = 0
        for n in (0, 1):  # a fresh process per example: no lease or fuse left from the last
            self.world.new_process(n, f"{id(self)}-0")

    def run(self, coroutine):
        return self.world.loop.run_until_complete(coroutine)

    def run_as(self, process: int, make) -> tuple[bool, object]:
        """(died, result) of `make(services)` as `process`; a death replaces the process."""
        services = self.world.services[process]
        try:
            return False, self.run(make(services))
        except BaseException:
            if not services.pool.fuse.blown:
                raise
            self.process_died(process)
            return True, None

    def call(self, process: int, make) -> tuple[bool, str]:
        """(succeeded, answer) of `make(services)`; a Refusal or a death is an answer."""
        try:
            died, answer = self.run_as(process, make)
        except Refusal as refusal:
            return False, str(refusal)
        return (False, DIED) if died else (True, answer)

    def process_died(self, process: int) -> None:
        """The process is gone; another one starts under a new id (hook for subclasses)."""
        self.deaths += 1
        self.world.new_process(process, f"{id(self)}-{self.deaths}")

    def acknowledge(self, incident_id: int, kind: str, actor: str) -> None:
        """A call returned success for this change: its audit row must exist from now on."""
        self.acknowledged[(incident_id, kind, actor)] += 1

    def rows(self, query: str, *args) -> list[asyncpg.Record]:
        """Read the database as an observer (never through a process's fuse)."""

        async def fetch():
            async with self.world.pools[1].acquire() as conn:
                return await conn.fetch(query, *args)

        return self.run(fetch())

    def pending_approval(self, incident_id: int):
        rows = self.rows(
            "select id from approvals where incident_id = $1 and state = 'pending'", incident_id
        )
        return rows[0]["id"] if rows else None

    def latest_approval(self, incident_id: int):
        rows = self.rows(
            "select id from approvals where incident_id = $1 order by id desc limit 1",
            incident_id,
        )
        return rows[0]["id"] if rows else None

    @rule(process=st.integers(0, 1), points=st.integers(0, 12))
    def death_armed(self, process, points):
        """The process will die at the database point after the next `points` ones."""
        self.world.services[process].pool.fuse.arm(points)
