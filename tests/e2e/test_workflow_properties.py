"""A stateful property test of the incident workflow on a real PostgreSQL.

Hypothesis drives the functions the Slack handlers call (declare, escalate, decide, close,
fire_deadline) with random actors from two "processes" (two Services, two connection pools,
one database) and checks the invariants after every step.

Extension points (for the run side: backup, Retry/Skip/Abort/Resume/Cancel-run, deaths):
- add `@rule`s to `WorkflowMachine` (or subclass it); `self.call(process, coroutine)` runs a
  workflow function and classifies its outcome (success, Refusal; anything else fails);
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

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bot import approvals, store, workflow
from bot.incidents import Event, Severity, State
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


class WorkflowMachine(RuleBasedStateMachine):
    """Random declare / escalate / approve / reject / resolve / cancel / expire sequences."""

    world: World  # set by the test before the machine runs
    incidents = Bundle("incidents")

    def __init__(self) -> None:
        super().__init__()
        self.world.reset()
        self.acknowledged: collections.Counter = collections.Counter()
        self.closed: dict[int, str] = {}  # incident -> state a successful resolve/cancel said

    # -- helpers the rules (and later ones) share ---------------------------------------------

    def run(self, coroutine):
        return self.world.loop.run_until_complete(coroutine)

    def call(self, process: int, make) -> tuple[bool, str]:
        """(succeeded, answer) of `make(services)`; a Refusal is an answer, not a failure."""
        services = self.world.services[process]
        try:
            return True, self.run(make(services))
        except Refusal as refusal:
            return False, str(refusal)

    def acknowledge(self, incident_id: int, kind: str, actor: str) -> None:
        """A call returned success for this change: its audit row must exist from now on."""
        self.acknowledged[(incident_id, kind, actor)] += 1

    def rows(self, query: str, *args) -> list[asyncpg.Record]:
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

    def _declare(self, process: int, actor: str, severity: Severity) -> int:
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
            lambda s: approvals.decide(
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
                return await approvals.decide(
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

        answers = self.run(together())
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        for actor, answer in zip(actors, answers, strict=True):
            if answer is None:
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
            lambda s: workflow.close(
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
            return await workflow.close(
                s,
                incident_id=incident,
                channel=OTHER_CHANNEL,
                user=actor,
                note="",
                event=Event.RESOLVE,
            )

        ok, answer = self.call(0, attempt)
        assert not ok and "belongs to" in answer, answer
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
        services = self.world.services[process]
        for row in due:
            self.run(workflow.fire_deadline(services, deadline_id=row["id"]))

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

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def approved_only_by_enough_distinct_allowed_non_requesters(self):
        for approval in self.rows("select * from approvals where state = 'approved'"):
            votes = [
                r["user_id"]
                for r in self.rows(
                    "select user_id from approval_votes where approval_id = $1", approval["id"]
                )
            ]
            requesters = {  # who had asked by the time it was approved (a voter may ask later)
                r["user_id"]
                for r in self.rows(
                    "select user_id from incident_requesters where incident_id = $1 and at <= $2",
                    approval["incident_id"],
                    approval["decided_at"],
                )
            }
            assert len(set(votes)) >= approval["approvals_required"], (approval, votes)
            assert not set(votes) & requesters, (votes, requesters)
            assert set(votes) <= ALLOWED, votes
        for run in self.rows("select approval_id from runs where kind = 'rollback'"):
            state = self.rows("select state from approvals where id = $1", run["approval_id"])
            assert state[0]["state"] == "approved"

    @invariant()
    def requesters_are_recorded(self):
        for row in self.rows(
            "select incident_id, actor from events where kind in ('declare', 'escalate')"
        ):
            assert self.rows(
                "select 1 from incident_requesters where incident_id = $1 and user_id = $2",
                row["incident_id"],
                row["actor"],
            ), row

    @invariant()
    def every_incident_can_still_be_closed(self):
        for incident in self.rows("select id, state from incidents"):
            assert can_close(State(incident["state"])), incident

    @invariant()
    def every_acknowledged_change_is_in_the_database(self):
        for (incident_id, kind, actor), count in self.acknowledged.items():
            found = self.rows(
                "select count(*) from events where incident_id = $1 and kind = $2 and actor = $3",
                incident_id,
                kind,
                actor,
            )[0][0]
            assert found >= count, (incident_id, kind, actor, found, count)
        for incident_id, state in self.closed.items():
            assert self.rows("select state from incidents where id = $1", incident_id)[0][0] == (
                state
            )

    @invariant()
    def every_transition_has_its_audit_row(self):
        for incident in self.rows("select id, state from incidents"):
            chain = self.rows(
                "select kind, from_state, to_state from events where incident_id = $1"
                " and to_state is not null order by id",
                incident["id"],
            )
            assert chain and chain[0]["kind"] == "declare"
            for before, after in itertools.pairwise(chain):
                assert after["from_state"] == before["to_state"], (before, after)
            assert chain[-1]["to_state"] == incident["state"], (incident, chain[-1])
        for approval in self.rows(
            "select * from approvals where state in ('approved', 'rejected')"
        ):
            kind = "approve" if approval["state"] == "approved" else "reject"
            assert self.rows(
                "select 1 from events where kind = $1 and (detail->>'approval_id')::bigint = $2",
                kind,
                approval["id"],
            ), approval


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
                max_examples=25,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                database=None,
            ),
        )
    finally:
        world.close()
        loop.close()
