"""Issue 12's guarantees tried the way an operator under pressure would: the same click from
two processes at once, a rejecter who asks again, two sweeps of one orphan at the same time.
Each test is one attempt (the review of issue 12); all held but the last, which the database
now holds (migration 009)."""

from __future__ import annotations

import asyncio
import signal

import asyncpg
import pytest

from actions.runbook import load_runbook
from bot.db.postgres import create_pool, migrate
from bot.runs.executor import RunExecutor
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
from tests.e2e.test_attacks import press_in, said_to, stopped_run
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
    value = (await fake.wait_for(lambda f: buttons(f, "run_retry"), timeout=20))[-1][0]
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


async def test_an_acknowledged_approve_survives_sigkill_right_after_the_ack(start_bot, fake):
    """Approve is acknowledged, the process is killed at once: the approval and its one run are
    in the database, and another process takes the run to an end (or offers Resume / Abort)."""
    env = {"ROLLBACK_RUN_LEASE": "2"}
    first = await start_bot(env=env)
    await first.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    message = request_message(fake)
    value = next(
        e["value"]
        for b in message["blocks"]
        for e in b.get("elements") or []
        if e.get("action_id") == "rollback_approve"
    )
    status, _ = await first.click(
        user=THIRD, action_id="rollback_approve", value=value, channel=CHANNEL,
        message_ts=message["ts"], response_url=fake.response_url(),
    )  # fmt: skip
    await first.stop(signal.SIGKILL)  # the moment the acknowledgement arrived
    assert status == 200
    approval = await fetch(start_bot.dsn, "select state, decided_by from approvals")
    assert tuple(approval[0]) == ("approved", THIRD)
    assert len(await fetch(start_bot.dsn, "select id from runs")) == 1
    await start_bot(rewrite=False, env=env)
    for _ in range(600):
        runs = await fetch(start_bot.dsn, "select state from runs")
        if runs[0]["state"] in ("succeeded", "interrupted"):
            break
        await asyncio.sleep(0.1)
    assert runs[0]["state"] in ("succeeded", "interrupted"), runs
    assert len(runs) == 1


async def test_a_backup_asked_for_while_a_rollback_is_held_waits_behind_both(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    dsn = start_bot.dsn
    await stopped_run(bot, fake, dsn)  # RB-1's run waits at its failed step: it holds the project
    await bot.ask("declare critical flaky again", user=DECLARER, channel=RUNS_CHANNEL)

    def second_request(f):  # RB-1's request shows no buttons any more
        return [v for v, _ in buttons(f, "rollback_approve") if v.split(":")[0] == "2"]

    value = (await fake.wait_for(second_request, timeout=20))[0]
    said = await press_in(bot, fake, APPROVER, "rollback_approve", value, RUNS_CHANNEL)
    assert "Approved" in said, said
    said = await said_to(bot, fake, "backup", DECLARER, RUNS_CHANNEL)
    assert said.startswith("Backup queued"), said
    runs = await fetch(dsn, "select kind, state, waits_for from runs order by id")
    assert [(r["kind"], r["state"]) for r in runs] == [
        ("rollback", "waiting"), ("rollback", "held"), ("backup", "held")
    ]  # fmt: skip
    abort = (await fake.wait_for(lambda f: buttons(f, "run_abort"), timeout=20))[-1][0]
    assert "Aborted" in await press_in(bot, fake, APPROVER, "run_abort", abort, RUNS_CHANNEL)
    for _ in range(600):  # RB-2's rollback, the older held run, goes first and stops likewise
        runs = await fetch(dsn, "select kind, state from runs order by id")
        if runs[1]["state"] == "waiting":
            break
        await asyncio.sleep(0.1)
    assert [r["state"] for r in runs] == ["aborted", "waiting", "held"], runs


async def test_an_abort_hands_the_project_to_the_held_run_before_anything_else_can_start(
    start_bot, fake, tmp_path
):
    """No poll comes for a minute: a backup asked for right after Abort must not jump ahead of
    the rollback that was held first (the Abort itself queues the oldest held run)."""
    bot = await start(start_bot, tmp_path, env={"ROLLBACK_SYNC_INTERVAL": "60"})
    dsn = start_bot.dsn
    await stopped_run(bot, fake, dsn)
    await bot.ask("declare critical flaky again", user=DECLARER, channel=RUNS_CHANNEL)

    def second_request(f):
        return [v for v, _ in buttons(f, "rollback_approve") if v.split(":")[0] == "2"]

    value = (await fake.wait_for(second_request, timeout=20))[0]
    assert "Approved" in await press_in(
        bot, fake, APPROVER, "rollback_approve", value, RUNS_CHANNEL
    )
    abort = (await fake.wait_for(lambda f: buttons(f, "run_abort"), timeout=20))[-1][0]
    assert "Aborted" in await press_in(bot, fake, APPROVER, "run_abort", abort, RUNS_CHANNEL)
    said = await said_to(bot, fake, "backup", DECLARER, RUNS_CHANNEL)
    assert said.startswith("Backup queued"), said
    runs = await fetch(dsn, "select kind, state from runs order by id")
    assert runs[1]["state"] in ("queued", "running", "waiting"), runs
    assert (runs[2]["kind"], runs[2]["state"]) == ("backup", "held"), runs


async def test_resolving_an_incident_whose_run_is_stopped_hands_the_project_to_the_held_run(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path, env={"ROLLBACK_SYNC_INTERVAL": "60"})
    dsn = start_bot.dsn
    await stopped_run(bot, fake, dsn)
    await bot.ask("declare critical flaky again", user=DECLARER, channel=RUNS_CHANNEL)

    def second_request(f):
        return [v for v, _ in buttons(f, "rollback_approve") if v.split(":")[0] == "2"]

    value = (await fake.wait_for(second_request, timeout=20))[0]
    assert "Approved" in await press_in(
        bot, fake, APPROVER, "rollback_approve", value, RUNS_CHANNEL
    )
    said = await said_to(bot, fake, "resolve RB-1 by hand", APPROVER, RUNS_CHANNEL)
    assert said == "RB-1 is resolved.", said
    runs = await fetch(dsn, "select state from runs order by id")
    assert runs[0]["state"] == "aborted" and runs[1]["state"] != "held", runs
