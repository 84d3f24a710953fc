"""Issue 12's guarantees tried the way an operator under pressure would: the same click from
two processes at once, a rejecter who asks again, two sweeps of one orphan at the same time.
Each test is one attempt (the review of issue 12); all held but the last, which the database
now holds (migration 006)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from actions.runbook import load_runbook
from bot.database import create_pool, migrate
from bot.executor import RunExecutor
from bot.services import Services
from tests.e2e.harness import fetch, write_runbook
from tests.e2e.test_approval_rules import (
    CHANNEL,
    DECLARER,
    FOURTH,
    THIRD,
    press,
    request_message,
    wait_request,
)
from tests.e2e.test_attacks import press_in, stopped_run
from tests.e2e.test_no_dead_ends import leave
from tests.e2e.test_runs import APPROVER, buttons, start
from tests.e2e.test_runs import CHANNEL as RUNS_CHANNEL


async def test_one_approver_clicking_on_two_processes_at_once_is_one_vote(start_bot, fake):
    first = await start_bot(approvals_required=2)
    second = await start_bot(rewrite=False)
    await first.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    message = request_message(fake)
    said = await asyncio.gather(*(press(bot, fake, THIRD, message) for bot in (first, second)))
    assert all("1 of 2 approvals" in s for s in said), said
    votes = await fetch(start_bot.dsn, "select user_id from approval_votes")
    assert [r["user_id"] for r in votes] == [THIRD]
    assert [r["state"] for r in await fetch(start_bot.dsn, "select state from approvals")] == [
        "pending"
    ]
    assert await fetch(start_bot.dsn, "select * from runs") == []


async def test_whoever_rejected_and_then_asked_again_cannot_approve_the_new_request(
    start_bot, fake
):
    bot = await start_bot()
    await bot.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    assert "Rejected" in await press(bot, fake, THIRD, request_message(fake), "rollback_reject")
    await bot.ask("escalate RB-1 critical", user=THIRD, channel=CHANNEL)
    await wait_request(fake, 2)
    refused = await press(bot, fake, THIRD, request_message(fake))
    assert "second person" in refused, refused
    assert await fetch(start_bot.dsn, "select * from approval_votes") == []
    assert "Approved" in await press(bot, fake, FOURTH, request_message(fake))
    runs = await fetch(start_bot.dsn, "select requested_by from runs")
    assert [r["requested_by"] for r in runs] == [FOURTH]


async def test_retry_pressed_on_two_processes_at_once_retries_once(start_bot, fake, tmp_path):
    first = await start(start_bot, tmp_path)
    second = await start_bot(rewrite=False)
    dsn = start_bot.dsn
    await stopped_run(first, fake, dsn)
    (tmp_path / "flag").write_text("")
    value = buttons(fake, "run_retry")[-1][0]
    said = await asyncio.gather(
        *(press_in(b, fake, APPROVER, "run_retry", value, RUNS_CHANNEL) for b in (first, second))
    )
    assert sum(s.startswith("Retry: the run continues") for s in said) == 1, said
    assert sum("no longer waiting" in s or "doesn't apply" in s for s in said) == 1, said
    for _ in range(600):
        rows = await fetch(dsn, "select state from runs where kind = 'rollback'")
        if rows[0]["state"] == "succeeded":
            break
        await asyncio.sleep(0.1)
    assert rows[0]["state"] == "succeeded"
    retries = await fetch(dsn, "select actor from events where kind = 'run_retry'")
    assert [r["actor"] for r in retries] == [APPROVER]
    assert (tmp_path / "ran.log").read_text() == "first\nflagged\nlast\n"


async def test_two_processes_sweeping_one_orphan_at_once_report_it_once(fresh_database, tmp_path):
    await migrate(fresh_database)
    runbook = load_runbook(write_runbook(tmp_path / "runbook.toml"))
    pools = [await create_pool(fresh_database, max_size=4) for _ in range(2)]
    try:
        services = [
            Services(pool=pool, runbook=runbook, process_id=f"sweeper-{n}")
            for n, pool in enumerate(pools)
        ]
        incident, run = await leave(services[0], "rolling_back", "lapsed")
        executors = [RunExecutor(s, lease=30, poll_interval=1) for s in services]
        await asyncio.gather(*(e.poll() for e in executors))
        async with pools[0].acquire() as conn:
            state = await conn.fetchval("select state from runs where id = $1", run)
            kinds = await conn.fetch(
                "select kind from events where run_id = $1 or incident_id = $2 order by id",
                run,
                incident,
            )
            owed = await conn.fetchval(
                "select count(*) from outbox"
                " where payload::text like '%process running this rollback stopped%'"
            )
    finally:
        for pool in pools:
            await pool.close()
    assert state == "interrupted"
    assert [k["kind"] for k in kinds].count("run_interrupted") == 1, kinds
    assert owed == 1, owed


async def test_a_vote_whose_author_became_a_requester_no_longer_counts(start_bot, fake):
    """The bot never adds a requester while a request waits; should anything else write one,
    the database still refuses to approve without enough votes by non-requesters."""
    bot = await start_bot(approvals_required=2)
    dsn = start_bot.dsn
    await bot.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    assert "1 of 2 approvals" in await press(bot, fake, THIRD, request_message(fake))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "insert into incident_requesters (incident_id, user_id, part)"
            " values (1, $1, 'escalated')",
            THIRD,
        )
        said = await press(bot, fake, FOURTH, request_message(fake))
        assert said.startswith("Approval recorded (1 of 2 approvals)"), said
        assert await conn.fetchval("select state from approvals") == "pending"
        with pytest.raises(asyncpg.CheckViolationError, match="by non-requesters"):
            await conn.execute("update approvals set state = 'approved', decided_by = $1", FOURTH)
        assert await conn.fetch("select * from runs") == []
    finally:
        await conn.close()
