"""A stateful property test of the incident workflow on a real PostgreSQL.

Hypothesis drives the functions the Slack handlers call (declare, escalate, decide, close,
fire_deadline) with random actors from two "processes" (two Services, two connection pools,
one database) and checks the invariants after every step.

Either process may die at any database point (`WorldMachine.death_armed`,
tests/e2e/world_machine.py): mid-transaction, before a commit, between two transactions.

Extension points (for the run side: backup, Retry/Skip/Abort/Resume/Cancel-run, deaths):
- add `@rule`s to `WorkflowMachine` (or subclass it); `self.call(process, coroutine)` runs a
  workflow function and classifies its outcome (success, Refusal, death; anything else
  fails); `self.run_as(process, coroutine)` runs one that may only die;
- record what a successful call acknowledged with `self.acknowledge(incident_id, kind, actor)`:
  the audit row must then be in the database after every later step;
- add invariants as `@invariant` methods; `self.rows(query)` reads the database;
- `workflow_world.RUNNER_EVENTS` is what the bot itself does to an incident (used by the
  reachability invariant); `run_finishes` is a stand-in for the executor here;
  tests/e2e/test_run_properties.py (RunMachine) replaces it with the executor's real moves;
  `World` (tests/e2e/workflow_world.py) holds the database and both processes.
"""

from __future__ import annotations

import asyncio
import collections
import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot.app import flow
from bot.incidents import flow as workflow
from bot.incidents import store
from bot.lifecycle import Event, Severity, State
from bot.services import Refusal
from tests.e2e.harness import write_runbook
from tests.e2e.workflow_world import (
    ALLOWED,
    APPROVER_1,
    APPROVER_2,
    CHANNEL,
    GROUP,
    OTHER_CHANNEL,
    PEOPLE,
    World,
    can_close,
)
from tests.e2e.world_machine import DIED, WorldMachine


class WorkflowMachine(WorldMachine):
    """Random declare / escalate / approve / reject / resolve / cancel / expire sequences."""

    incidents = Bundle("incidents")

    def __init__(self) -> None:
        super().__init__()
        self.closed: dict[int, str] = {}  # incident -> state a successful resolve/cancel said

    # -- rules ------------------------------------------------------------------------------

    @initialize(target=incidents, actor=st.sampled_from(PEOPLE))
    def first_incident(self, actor):
        return self._declare(0, actor, Severity.CRITICAL)

    @rule(
        target=incidents,
        process=st.integers(0, 1),
        actor=st.sampled_from(PEOPLE),
        severity=st.sampled_from(list(Severity)),
    )
    def declare(self, process, actor, severity):
        return self._declare(process, actor, severity)

    def _declare(self, process: int, actor: str, severity: Severity):
        ok, answer = self.call(
            process,
            lambda s: workflow.declare(
                s,
                channel=CHANNEL,
                user=actor,
                severity=severity,
                scenario="database" if severity in (Severity.CRITICAL, Severity.HIGH) else None,
                summary="property test",
                detected_at=None,
            ),
        )
        if answer == DIED:  # committed or not, nobody was told: not in the bundle
            return multiple()
        assert ok, answer
        incident_id = int(answer.split()[1].removeprefix("RB-").rstrip("."))
        self.acknowledge(incident_id, "declare", actor)
        return incident_id

    @rule(
        incident=incidents,
        process=st.integers(0, 1),
        actor=st.sampled_from(PEOPLE),
        severity=st.sampled_from([Severity.CRITICAL, Severity.HIGH]),
    )
    def escalate(self, incident, process, actor, severity):
        ok, _ = self.call(
            process,
            lambda s: workflow.escalate(
                s,
                incident_id=incident,
                user=actor,
                severity=severity,
                scenario="database",
                channel=CHANNEL,
            ),
        )
        if ok:
            self.acknowledge(incident, "escalate", actor)

    @rule(
        incident=incidents,
        process=st.integers(0, 1),
        actor=st.sampled_from(PEOPLE),
        approve=st.booleans(),
        latest=st.booleans(),
    )
    def decide(self, incident, process, actor, approve, latest):
        approval_id = self.latest_approval(incident) if latest else self.pending_approval(incident)
        if approval_id is None:
            return
        ok, answer = self.call(
            process,
            lambda s: flow.decide(
                s, approval_id=approval_id, user=actor, approve=approve, channel=CHANNEL
            ),
        )
        if not ok:
            return
        if answer.startswith("Approval recorded"):
            self.acknowledge(incident, "approval_vote", actor)
        else:
            self.acknowledge(incident, "approve" if approve else "reject", actor)

    @rule(incident=incidents, actors=st.lists(st.sampled_from(PEOPLE), min_size=2, max_size=4))
    def clicks_at_once(self, incident, actors):
        """Several Approve clicks at the same moment, alternating between the two processes."""
        approval_id = self.pending_approval(incident)
        if approval_id is None:
            return

        async def click(n: int, actor: str):
            try:
                return await flow.decide(
                    self.world.services[n % 2],
                    approval_id=approval_id,
                    user=actor,
                    approve=True,
                    channel=CHANNEL,
                )
            except Refusal:
                return None

        async def together():  # every click finishes before a failure is reported
            return await asyncio.gather(
                *(click(n, a) for n, a in enumerate(actors)), return_exceptions=True
            )

        services = list(self.world.services)  # as they were when the clicks came in
        answers = self.run(together())
        for n, answer in enumerate(answers):
            if isinstance(answer, BaseException) and not services[n % 2].pool.fuse.blown:
                raise answer
        for n in {n for n in (0, 1) if services[n].pool.fuse.blown}:
            self.process_died(n)
        for actor, answer in zip(actors, answers, strict=True):
            if answer is None or isinstance(answer, BaseException):  # refused, or died
                continue
            kind = "approval_vote" if answer.startswith("Approval recorded") else "approve"
            self.acknowledge(incident, kind, actor)

    @rule(
        incident=incidents,
        process=st.integers(0, 1),
        actor=st.sampled_from(PEOPLE),
        resolve=st.booleans(),
    )
    def close(self, incident, process, actor, resolve):
        event = Event.RESOLVE if resolve else Event.CANCEL
        ok, _ = self.call(
            process,
            lambda s: flow.close(
                s, incident_id=incident, channel=CHANNEL, user=actor, note="", event=event
            ),
        )
        if ok:
            self.acknowledge(incident, event.value, actor)
            self.closed[incident] = "resolved" if resolve else "cancelled"

    @rule(incident=incidents, actor=st.sampled_from(PEOPLE), verb=st.sampled_from(["x", "e"]))
    def from_another_channel(self, incident, actor, verb):
        """A change typed in another channel is refused and changes nothing."""
        before = self.rows("select * from events order by id"), self.rows("select * from incidents")

        async def attempt(s):
            if verb == "e":
                return await workflow.escalate(
                    s,
                    incident_id=incident,
                    user=actor,
                    severity=Severity.CRITICAL,
                    scenario="database",
                    channel=OTHER_CHANNEL,
                )
            return await flow.close(
                s,
                incident_id=incident,
                channel=OTHER_CHANNEL,
                user=actor,
                note="",
                event=Event.RESOLVE,
            )

        ok, answer = self.call(0, attempt)
        assert not ok and (answer == DIED or "belongs to" in answer), answer
        after = self.rows("select * from events order by id"), self.rows("select * from incidents")
        assert before == after

    @rule(incident=incidents, process=st.integers(0, 1))
    def time_passes(self, incident, process):
        """The incident's pending deadlines fall due and are fired (as the scheduler would)."""
        due = self.rows(
            "update deadlines set due_at = now() where incident_id = $1 and fired_at is null"
            " and cancelled_at is null returning id",
            incident,
        )
        for row in due:
            died, _ = self.run_as(
                process, lambda s, row=row: flow.fire_deadline(s, deadline_id=row["id"])
            )
            if died:
                return

    @precondition(lambda self: bool(self.world.queued))
    @rule(succeed=st.booleans())
    def run_finishes(self, succeed):
        """Stand-in for the executor (the run rules replace it): a queued run starts and ends."""
        run_id = self.world.queued.pop(0)

        async def finish():
            async with self.world.pools[0].acquire() as conn, conn.transaction():
                run = await conn.fetchrow("select * from runs where id = $1", run_id)
                incident = await store.lock_incident(conn, incident_id=run["incident_id"])
                if incident["state"] != State.ROLLBACK_QUEUED:
                    return
                incident = await store.apply_transition(
                    conn, incident=incident, event=Event.START_RUN, actor="bot"
                )
                end = Event.RUN_SUCCEEDED if succeed else Event.RUN_FAILED
                await store.apply_transition(conn, incident=incident, event=end, actor="bot")
                await conn.execute(
                    "update runs set state = $2, ended_at = now() where id = $1",
                    run_id,
                    "succeeded" if succeed else "failed",
                )

        self.run(finish())

    # -- invariants (each a few set-based queries: they run after every step) ---------------

    @invariant()
    def approved_only_by_enough_distinct_allowed_non_requesters(self):
        for approval in self.rows(
            "select a.*, array(select user_id from approval_votes v where v.approval_id = a.id)"
            " as votes, array(select user_id from incident_requesters r"
            "  where r.incident_id = a.incident_id and r.at <= a.decided_at) as requesters"
            " from approvals a where a.state = 'approved'"
        ):  # requesters: who had asked by the time it was approved (a voter may ask later)
            votes, requesters = set(approval["votes"]), set(approval["requesters"])
            assert len(votes) >= approval["approvals_required"], dict(approval)
            assert not votes & requesters, dict(approval)
            assert votes <= ALLOWED, dict(approval)
        unapproved = self.rows(
            "select r.id from runs r left join approvals a on a.id = r.approval_id"
            " where r.kind = 'rollback' and a.state is distinct from 'approved'"
        )
        assert not unapproved, unapproved

    @invariant()
    def requesters_are_recorded(self):
        missing = self.rows(
            "select e.incident_id, e.actor from events e where e.kind in ('declare', 'escalate')"
            " and not exists (select 1 from incident_requesters r"
            "  where r.incident_id = e.incident_id and r.user_id = e.actor)"
        )
        assert not missing, missing

    @invariant()
    def every_incident_can_still_be_closed(self):
        for incident in self.rows("select id, state from incidents"):
            assert can_close(State(incident["state"])), incident

    @invariant()
    def every_acknowledged_change_is_in_the_database(self):
        found = {
            (r["incident_id"], r["kind"], r["actor"]): r["count"]
            for r in self.rows(
                "select incident_id, kind, actor, count(*) from events group by 1, 2, 3"
            )
        }
        for key, count in self.acknowledged.items():
            assert found.get(key, 0) >= count, (key, found.get(key, 0), count)
        states = {r["id"]: r["state"] for r in self.rows("select id, state from incidents")}
        for incident_id, state in self.closed.items():
            assert states[incident_id] == state, (incident_id, states[incident_id], state)

    @invariant()
    def every_transition_has_its_audit_row(self):
        chains = collections.defaultdict(list)
        for row in self.rows(
            "select incident_id, kind, from_state, to_state from events"
            " where to_state is not null order by incident_id, id"
        ):
            chains[row["incident_id"]].append(row)
        for incident in self.rows("select id, state from incidents"):
            chain = chains[incident["id"]]
            assert chain and chain[0]["kind"] == "declare"
            for before, after in itertools.pairwise(chain):
                assert after["from_state"] == before["to_state"], (before, after)
            assert chain[-1]["to_state"] == incident["state"], (incident, chain[-1])
        unaudited = self.rows(
            "select a.id, a.state from approvals a where a.state in ('approved', 'rejected')"
            " and not exists (select 1 from events e"
            "  where e.kind = case a.state when 'approved' then 'approve' else 'reject' end"
            "  and (e.detail->>'approval_id')::bigint = a.id)"
        )
        assert not unaudited, unaudited


@pytest.mark.parametrize("approvals_required", [1, 2])
def test_the_workflow_keeps_its_promises_under_random_use(
    pg_server_dsn, tmp_path, approvals_required
):
    runbook = write_runbook(
        tmp_path / "runbook.toml",
        approvers=(APPROVER_1, APPROVER_2, GROUP),
        approvals_required=approvals_required,
    )
    loop = asyncio.new_event_loop()
    world = World(loop, pg_server_dsn, runbook)
    WorkflowMachine.world = world
    try:
        run_state_machine_as_test(
            WorkflowMachine,
            settings=settings(
                max_examples=20,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                database=None,
            ),
        )
    finally:
        world.close()
        loop.close()
