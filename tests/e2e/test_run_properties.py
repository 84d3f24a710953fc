"""The run side of the workflow property test: backups, the executor's moves, decisions, deaths.

`RunMachine` extends `WorkflowMachine` (incidents and approvals) with:
- `/rollback backup` (run_control.start_backup) and the run buttons (run_control.decide for
  Retry / Skip / Abort / Resume, run_control.cancel for Cancel) with block_actions-shaped
  bodies, by any actor from either process, on the run's current step or a stale one;
- the executor's moves through the same functions `bot/runs/executor.py` calls, in its order
  (promote, claim_run, run_outcomes.begin, run_store.start_step / end_step, stopped_at_failure,
  finish; no subprocesses: a step "succeeds" or "fails" by decision of the test);
- process deaths, between operations (`process_dies`) and at any database point inside one
  (`death_armed`, tests/e2e/world_machine.py: e.g. after claiming a run and before its first
  step, between a step's start and its result, mid-way through a decision or a sweep): the
  process forgets its runs and its lease is moved into the past (as if it stopped renewing
  an hour ago); the other process's orphan sweep (RunExecutor._report_orphan, what the poll
  loop calls) marks them interrupted; the dead process comes back as a new one.

After every step it checks the invariants of WorkflowMachine and: at most one active run per
project; a rollback run that was ever claimed had enough distinct allowed non-requester votes;
every run can still end; every acknowledged run decision has its audit row; a decision was
acknowledged only in the state its button is offered in.
"""

from __future__ import annotations

import asyncio
import collections
import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test

from bot.runs import handlers as run_control
from bot.runs import outcomes as run_outcomes
from bot.runs import queue as run_queue
from bot.runs import store as run_store
from bot.runs.executor import RESUME_GRACE, RunExecutor
from bot.runs.report import RunReporter
from bot.runs.store import LostRun
from bot.slack.ids import Action
from tests.e2e.harness import write_runbook
from tests.e2e.test_workflow_properties import WorkflowMachine
from tests.e2e.workflow_world import (
    ALLOWED,
    APPROVER_1,
    APPROVER_2,
    CHANNEL,
    GROUP,
    PEOPLE,
    World,
    run_can_end,
)
from tests.e2e.world_machine import DIED

BACKUP = """
[backup]
  [[backup.step]]
  name = "Announce"
  run = "echo backing up"
  [[backup.step]]
  name = "Dump"
  run = "echo dump > {{ artifact }}"
  artifact = { name = "dump", path = "dump_{{ ts }}.txt" }
"""
LEASE = 30.0
SHRINK = os.environ.get("PROPS_SHRINK", "1") == "1"  # PROPS_SHRINK=0: a failure, unshrunk
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + [Phase.shrink] * SHRINK
OFFERED_IN = {  # the run state each button is offered in (run_blocks.controls)
    Action.RETRY: ("waiting",),
    Action.SKIP: ("waiting",),
    Action.RESUME: ("interrupted",),
    Action.ABORT: ("waiting", "interrupted"),
}


def body(actor: str, value: str) -> dict:
    """A block_actions payload as Bolt hands it to the button handlers."""
    return {"type": "block_actions", "user": {"id": actor}, "actions": [{"value": value}]}


class RunMachine(WorkflowMachine):
    """WorkflowMachine plus backups, the executor, run decisions and process deaths."""

    def __init__(self) -> None:
        super().__init__()
        self.owned: list[dict[int, RunReporter]] = [{}, {}]  # what each live process drives
        self.decisions: collections.Counter = collections.Counter()  # (run, kind, actor)

    def process_died(self, process: int) -> None:
        """As WorkflowMachine's; the dead process's leases have lapsed long ago."""
        self.rows(
            "update runs set lease_until = now() - interval '1 hour' where owner = $1"
            " and state = 'running' returning id",
            self.world.services[process].process_id,
        )
        self.owned[process].clear()
        super().process_died(process)

    def call(self, process: int, make):
        """As WorkflowMachine.call; a run queued by the call is kicked: its process claims it."""
        self.world.queued.clear()  # queued earlier and not kicked: the poll (claim_next) finds it
        ok, answer = super().call(process, make)
        if self.world.queued and answer != DIED:
            self.claim_next(process)
        self.world.queued.clear()
        return ok, answer

    def run_stand_in(self):  # the stand-in `run_finishes` is replaced by the executor's moves
        pass

    run_finishes = run_stand_in

    def runs(self, *states: str):
        return self.rows("select * from runs where state = any($1::text[]) order by id", states)

    def live_runs(self):
        """Runs not ended, else every run (a click on an ended run must change nothing)."""
        return self.runs(*run_store.ACTIVE, "held") or self.rows("select * from runs order by id")

    def steps_of(self, services, run) -> list:
        if run["kind"] == "backup":
            return services.runbook.backup_steps
        return services.runbook.scenario(run["scenario"]).steps

    # -- people -------------------------------------------------------------------------------

    @rule(process=st.integers(0, 1), actor=st.sampled_from(PEOPLE))
    def backup(self, process, actor):
        self.call(process, lambda s: run_control.start_backup(s, user=actor, channel=CHANNEL))

    @rule(
        pick=st.integers(0, 7),
        process=st.integers(0, 1),
        actor=st.sampled_from(PEOPLE),
        action=st.sampled_from(list(OFFERED_IN)),
        stale=st.sampled_from([0, 0, -1, 1]),
    )
    def run_decision(self, pick, process, actor, action, stale):
        runs = self.live_runs()
        if not runs:
            return
        run = runs[pick % len(runs)]
        index = run["next_step"] + stale
        ok, answer = self.call(
            process,
            lambda s: run_control.decide(
                s, body=body(actor, f"{run['id']}:{index}"), action=action
            ),
        )
        if not ok:
            return
        assert run["state"] in OFFERED_IN[action], (action, dict(run), answer)
        assert run["next_step"] == index, (action, dict(run), index)
        self.decisions[(run["id"], action.value, actor)] += 1

    @rule(pick=st.integers(0, 7), process=st.integers(0, 1), actor=st.sampled_from(PEOPLE))
    def cancel_run(self, pick, process, actor):
        runs = self.live_runs()
        if not runs:
            return
        run = runs[pick % len(runs)]
        ok, _ = self.call(
            process, lambda s: run_control.cancel(s, body=body(actor, str(run["id"])))
        )
        if ok:
            assert run["state"] == "running" and run["stop_requested_by"] is None, dict(run)
            self.decisions[(run["id"], "run_cancel_requested", actor)] += 1

    # -- the executor ---------------------------------------------------------------------------

    @rule(process=st.integers(0, 1))
    def claim_next(self, process):
        """As RunExecutor.poll + execute: promote a held run, claim a queued one, begin it."""

        async def claim(services):
            async with services.pool.acquire() as conn:
                async with conn.transaction():
                    await run_queue.promote(conn)
                queued = await run_store.queued_runs(conn)
                if not queued:
                    return
                run = await run_store.claim_run(
                    conn, run_id=queued[0]["id"], owner=services.process_id, lease=LEASE
                )
            if run is None:
                return
            steps = self.steps_of(services, run)
            reporter = RunReporter(
                services,
                run,
                thread_key=run_queue.thread_of(run) if run["channel"] else None,
                names=[s.name for s in steps],
            )
            if not await run_outcomes.begin(services, run, reporter, None):
                await run_outcomes.finish(services, run, reporter, "cancelled", reason="closed")
                return
            self.owned[process][run["id"]] = reporter

        self.run_as(process, claim)

    @precondition(lambda self: any(self.owned))
    @rule(
        process=st.integers(0, 1),
        pick=st.integers(0, 7),
        outcomes=st.lists(st.booleans(), min_size=1, max_size=3),
    )
    def steps_end(self, process, pick, outcomes):
        """The owner runs its next steps, each succeeding or failing, as the executor would."""
        for succeed in outcomes:
            if not self._step_ends(process, pick, succeed):
                return

    @rule(process=st.integers(0, 1), points=st.integers(0, 6))
    def dies_claiming(self, process, points):
        """The process claims a run and dies before its first step, or while beginning it."""
        self.world.services[process].pool.fuse.arm(points)
        self.claim_next(process)

    @precondition(lambda self: any(self.owned))
    @rule(process=st.integers(0, 1), pick=st.integers(0, 7), points=st.integers(0, 5))
    def dies_mid_step(self, process, pick, points):
        """The owner dies while a step runs: after its start is recorded, before its result."""
        owner = process if self.owned[process] else 1 - process
        self.world.services[owner].pool.fuse.arm(points)
        self._step_ends(owner, pick, succeed=True)

    def _step_ends(self, choice: int, pick: int, succeed: bool) -> bool:
        """The owner runs the next step (start_step, end_step), then stops, fails or ends."""
        if not any(self.owned):
            return False
        process = choice if self.owned[choice] else 1 - choice
        owned = sorted(self.owned[process])
        run_id = owned[pick % len(owned)]
        reporter = self.owned[process][run_id]

        async def step(services):
            async with services.pool.acquire() as conn:
                run = await run_store.get_run(conn, run_id=run_id)
            steps = self.steps_of(services, run)
            index = run["next_step"]
            if run["stop_requested_by"] or index >= len(steps):  # between steps: stop or end
                return await self._end(services, run, reporter, steps, index)
            now = datetime.now(UTC)
            async with services.pool.acquire() as conn, conn.transaction():
                await run_store.start_step(
                    conn, run_id=run_id, owner=services.process_id, index=index,
                    name=steps[index].name, started_at=now,
                )  # fmt: skip
            async with services.pool.acquire() as conn, conn.transaction():
                await run_store.end_step(
                    conn, run_id=run_id, owner=services.process_id, index=index,
                    status="succeeded" if succeed else "failed", ended_at=datetime.now(UTC),
                    exit_code=0 if succeed else 3, output_tail="", message="",
                    next_step=index + 1 if succeed else index,
                )  # fmt: skip
            if not succeed:
                del self.owned[process][run_id]
                return await run_outcomes.stopped_at_failure(services, run, reporter, index, steps)

        died = False
        try:
            died, _ = self.run_as(process, step)
        except LostRun:  # the fence: the executor's task stops; the sweep takes the run
            self.owned[process].pop(run_id, None)
        return not died and run_id in self.owned[process]

    async def _end(self, services, run, reporter, steps, index: int) -> None:
        self.owned[self.world.services.index(services)].pop(run["id"], None)
        if run["stop_requested_by"]:
            return await run_outcomes.finish(services, run, reporter, "cancelled", next_index=index)
        if run["kind"] == "backup":
            executor = RunExecutor(services, lease=LEASE, poll_interval=1)
            if missing := await executor._missing_artifacts(run, steps):  # none are recorded
                return await run_outcomes.finish(
                    services, run, reporter, "failed", reason=f"missing {missing}"
                )
        await run_outcomes.finish(services, run, reporter, "succeeded")

    @rule(process=st.integers(0, 1))
    def process_dies(self, process):
        """The process stops between two operations, without cleanup; it comes back anew."""
        self.process_died(process)

    @rule(process=st.integers(0, 1))
    def orphan_sweep(self, process):
        """The poll loop's sweep: stale running runs are marked interrupted (Resume / Abort)."""

        async def sweep(services):
            executor = RunExecutor(services, lease=LEASE, poll_interval=1)
            async with services.pool.acquire() as conn:
                async with conn.transaction():
                    await run_queue.promote(conn)
                for run_id in await run_store.stale_runs(conn, grace=RESUME_GRACE):
                    await executor._report_orphan(conn, run_id)

        self.run_as(process, sweep)

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def at_most_one_active_operation(self):
        active = self.runs(*run_store.ACTIVE)
        assert len(active) <= 1, [dict(r) for r in active]

    @invariant()
    def no_rollback_ran_without_its_approvals(self):
        for run in self.rows(
            "select r.id, a.approvals_required,"
            " array(select user_id from approval_votes v where v.approval_id = a.id) as votes,"
            " array(select user_id from incident_requesters q where q.incident_id = r.incident_id"
            "  and q.at <= a.decided_at) as requesters"
            " from runs r join approvals a on a.id = r.approval_id"
            " where r.kind = 'rollback' and r.started_at is not null"
        ):
            votes, requesters = set(run["votes"]), set(run["requesters"])
            assert len(votes) >= run["approvals_required"], dict(run)
            assert votes <= ALLOWED and not votes & requesters, dict(run)

    @invariant()
    def every_run_can_still_end(self):
        for run in self.rows("select id, state from runs"):
            assert run_can_end(run["state"]), dict(run)

    @invariant()
    def every_acknowledged_decision_is_in_the_database(self):
        found = {
            (r["run_id"], r["kind"], r["actor"]): r["count"]
            for r in self.rows(
                "select run_id, kind, actor, count(*) from events where run_id is not null"
                " group by 1, 2, 3"
            )
        }
        for key, count in self.decisions.items():
            assert found.get(key, 0) >= count, (key, found.get(key, 0), count)


@pytest.mark.parametrize("approvals_required", [1, 2])
def test_runs_keep_their_promises_under_random_use_and_deaths(
    pg_server_dsn, tmp_path, approvals_required
):
    runbook = write_runbook(
        tmp_path / "runbook.toml",
        approvers=(APPROVER_1, APPROVER_2, GROUP),
        approvals_required=approvals_required,
    )
    runbook.write_text(runbook.read_text() + BACKUP)
    loop = asyncio.new_event_loop()
    world = World(loop, pg_server_dsn, runbook)
    RunMachine.world = world
    try:
        run_state_machine_as_test(
            RunMachine,
            settings=settings(
                max_examples=14,
                phases=PHASES,
                stateful_step_count=50,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                database=None,
            ),
        )
    finally:
        world.close()
        loop.close()
