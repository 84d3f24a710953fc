"""No dead ends: from every incident state a run can leave it in, paired with every state of
that run, a person can reach a closed incident, and each refusal on the way names the way
(issue 12, path 4). Drives the workflow layer on a real PostgreSQL."""

from __future__ import annotations

import pytest

from bot.app import flow
from bot.incidents import flow as workflow
from bot.lifecycle import Event, Severity
from bot.runs import admin as run_admin
from bot.runs.executor import RESUME_GRACE
from bot.services import Refusal

CHANNEL = "CDEADEND1"
PEOPLE = "UDECLARE1"

# (incident state, run state) pairs a run can leave an incident in, crashes included.
PAIRS = [
    ("rollback_queued", "held"),
    ("rollback_queued", "queued"),
    ("rollback_queued", "interrupted"),  # died before the first step
    ("rollback_queued", "lapsed"),  # claimed, then the process died (not yet swept)
    ("rolling_back", "lapsed"),
    ("rolling_back", "interrupted"),
    ("rolling_back", "queued"),  # handed on by a deploy, or resumed
    ("rollback_stopped", "waiting"),
    ("rollback_stopped", "interrupted"),
    ("rolled_back", "succeeded"),
    ("rollback_failed", "aborted"),
]


async def leave(services, incident_state: str, run_state: str) -> tuple[int, int]:
    """An incident declared the normal way, then put where a run (or a crash) left it."""
    await workflow.declare(
        services, channel=CHANNEL, user=PEOPLE, severity=Severity.LOW, scenario="database",
        summary="x", detected_at=None,
    )  # fmt: skip
    async with services.pool.acquire() as conn:
        incident = await conn.fetchval("select max(id) from incidents")
        await conn.execute(
            "update incidents set state = $2 where id = $1", incident, incident_state
        )
        lapsed = run_state == "lapsed"
        run = await conn.fetchval(
            "insert into runs (kind, incident_id, channel, scenario, state, requested_by, ts,"
            " total_steps, owner, lease_until, started_at, ended_at) values ('rollback', $1, $2,"
            " 'database', $3, 'UAPPROVE1', '20260101_000000', 2, $4,"
            " case when $5 then now() - interval '1 minute' end, now(),"
            " case when $3 in ('succeeded', 'aborted') then now() end) returning id",
            incident, CHANNEL, "running" if lapsed else run_state,
            "gone" if lapsed else None, lapsed,
        )  # fmt: skip
    return incident, run


@pytest.mark.parametrize(("incident_state", "run_state"), PAIRS, ids=lambda p: p)
async def test_every_stop_has_a_way_to_a_closed_incident(services, incident_state, run_state):
    incident, run = await leave(services, incident_state, run_state)
    close = dict(services=services, incident_id=incident, channel=CHANNEL, user="UAPPROVE1")
    try:
        await flow.close(**close, note="fixed", event=Event.RESOLVE)
    except Refusal as refused:  # the refusal names the way on: the run's Cancel, or abort
        assert "Cancel" in str(refused) or "abort" in str(refused).lower(), refused
        said = await run_admin.abort(
            services, run_id=run, actor="cli:test", grace=RESUME_GRACE
        )  # a lapsed or stopped run: `rollback-bot abort`
        assert f"aborted run {run}" in said
        await flow.close(**close, note="fixed", event=Event.RESOLVE)
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow(
            "select i.state, r.state as run from incidents i join runs r on r.incident_id = i.id"
            " where i.id = $1", incident,
        )  # fmt: skip
    assert row["state"] == "resolved"
    assert row["run"] in ("aborted", "succeeded"), row


async def test_a_dead_run_of_a_closed_incident_is_aborted_by_the_sweep(services):
    from bot.runs.executor import RunExecutor

    _, run = await leave(services, "resolved", "lapsed")
    await RunExecutor(services, lease=30, poll_interval=1).poll()
    async with services.pool.acquire() as conn:
        state = await conn.fetchval("select state from runs where id = $1", run)
        kinds = await conn.fetch("select kind from events where run_id = $1", run)
    assert state == "aborted"  # nothing can continue it, so it no longer holds the project
    assert [k["kind"] for k in kinds] == ["run_abort"]
