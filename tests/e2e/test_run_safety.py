"""Edges found in review: lost leases, interruptions after the last step, broken artifacts,
a Cancel across a deploy, concurrent backups, and asking again after a failed rollback."""

from __future__ import annotations

import asyncio
import signal
import textwrap
from datetime import UTC, datetime

import asyncpg
import pytest

from bot.db.postgres import migrate
from bot.incidents import store
from bot.runs import store as run_store
from tests.e2e.harness import fetch, text_of
from tests.e2e.test_runs import APPROVER, CHANNEL, DECLARER, buttons, click, thread_text

SCENARIOS = textwrap.dedent("""
    [backup]
      [[backup.step]]
      name = "Directory instead of a file"
      run = "mkdir -p dump_dir && echo x > dump_dir/inside"
      artifact = { name = "dump", path = "dump_dir" }
      [[backup.step]]
      name = "Never reached"
      run = "echo reached >> ran.log"

    [[scenario]]
    key = "quick"
    title = "One quick step"
    trigger = "test"
      [[scenario.step]]
      name = "Quick"
      run = "echo quick >> ran.log"

    [[scenario]]
    key = "two"
    title = "Two slow steps"
    trigger = "test"
      [[scenario.step]]
      name = "First"
      run = "echo first >> ran.log; sleep 3"
      [[scenario.step]]
      name = "Second"
      run = "echo second >> ran.log"

    [[scenario]]
    key = "shortlong"
    title = "A short step, then a long one"
    trigger = "test"
      [[scenario.step]]
      name = "Short"
      run = "true"
      [[scenario.step]]
      name = "Long"
      run = "sleep 8"

    [[verify.check]]
    name = "Slow check"
    run = "echo checking >> checks.log; sleep 4"
""")


async def test_a_process_that_lost_its_run_cannot_record_another_step(fresh_database):
    await migrate(fresh_database)
    conn = await asyncpg.connect(fresh_database)
    try:
        ts = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
        run = await store.insert_run(
            conn, kind="backup", channel="", requested_by="U1", ts=ts, total_steps=2
        )
        mine = await run_store.claim_run(conn, run_id=run["id"], owner="me", lease=30)
        assert mine is not None
        await run_store.start_step(
            conn, run_id=run["id"], owner="me", index=0, name="a", started_at=datetime.now(UTC)
        )
        await conn.execute("update runs set owner = 'other' where id = $1", run["id"])
        with pytest.raises(run_store.LostRun):
            await run_store.end_step(
                conn,
                run_id=run["id"],
                owner="me",
                index=0,
                status="succeeded",
                ended_at=datetime.now(UTC),
                exit_code=0,
                output_tail="",
                message="",
                next_step=1,
            )
        with pytest.raises(run_store.LostRun):
            await run_store.start_step(
                conn, run_id=run["id"], owner="me", index=1, name="b", started_at=datetime.now(UTC)
            )
        assert not await run_store.renew_lease(conn, run_id=run["id"], owner="me", lease=30)
    finally:
        await conn.close()


async def start(start_bot, tmp_path, **env):
    return await start_bot(scenarios=SCENARIOS, workdir=tmp_path, env=env or None)


async def roll_back(bot, fake, scenario: str) -> None:
    await bot.command(
        f"declare critical {scenario}",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await click(bot, fake, APPROVER, "rollback_approve")


async def until_state(dsn, *states, kind="rollback", timeout=40.0) -> str:
    for _ in range(int(timeout * 10)):
        rows = await fetch(dsn, "select state from runs where kind = $1 order by id", kind)
        if rows and rows[-1]["state"] in states:
            return rows[-1]["state"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} run reached {states}: {rows}")


async def test_interrupted_during_verification_can_be_resumed_to_the_end(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path, ROLLBACK_RUN_LEASE="2")
    await roll_back(bot, fake, "quick")
    for _ in range(100):
        if (tmp_path / "checks.log").exists():
            break
        await asyncio.sleep(0.1)
    await bot.stop(signal.SIGKILL)
    # The default lease: the first bot's short one (the stored lease_until) is what makes
    # the takeover quick; a short one here could lapse on a busy machine mid-resume.
    second = await start_bot(rewrite=False)
    await fake.wait_for(lambda f: buttons(f, "run_resume"), timeout=30)
    assert "verification checks had not completed" in thread_text(fake)
    await click(second, fake, APPROVER, "run_resume")
    assert await until_state(start_bot.dsn, "succeeded") == "succeeded"
    assert (tmp_path / "ran.log").read_text() == "quick\n"  # the step did not run again
    assert (tmp_path / "checks.log").read_text() == "checking\nchecking\n"


async def test_a_backup_step_without_a_usable_artifact_stops_the_backup_there(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    await bot.command("backup", user=DECLARER, channel=CHANNEL, response_url=fake.response_url())
    assert await until_state(start_bot.dsn, "waiting", kind="backup") == "waiting"
    assert not (tmp_path / "ran.log").exists()
    steps = await fetch(start_bot.dsn, "select name, status, message from step_results")
    assert [(s["name"], s["status"]) for s in steps] == [("Directory instead of a file", "failed")]
    assert "not a regular file" in steps[0]["message"] or "directory" in steps[0]["message"]
    assert await fetch(start_bot.dsn, "select * from artifacts") == []
    await fake.wait_for(lambda f: buttons(f, "run_retry"))


async def test_two_backups_requested_at_once_start_one(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path)
    acks = await asyncio.gather(
        *(bot.ask("backup", user=DECLARER, channel=CHANNEL) for _ in range(2))
    )
    answers = [ack["text"] for ack in acks]
    assert sum("Backup started" in a for a in answers) == 1
    assert sum("already in progress" in a for a in answers) == 1
    assert len(await fetch(start_bot.dsn, "select id from runs where kind = 'backup'")) == 1


async def test_a_cancel_survives_a_deploy_and_the_run_stops(start_bot, fake, tmp_path):
    first = await start(start_bot, tmp_path)
    await roll_back(first, fake, "two")
    for _ in range(100):
        if (tmp_path / "ran.log").exists():
            break
        await asyncio.sleep(0.1)
    await click(first, fake, DECLARER, "run_cancel")
    await fake.wait_for(lambda f: "asked to cancel" in thread_text(f))
    assert await first.stop(signal.SIGTERM) == 0
    await start_bot(rewrite=False)
    assert await until_state(start_bot.dsn, "cancelled", "queued", "running") == "cancelled"
    await asyncio.sleep(1.0)
    assert (tmp_path / "ran.log").read_text() == "first\n"


async def test_after_an_aborted_rollback_escalate_critical_asks_again(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path)
    await roll_back(bot, fake, "two")
    await fake.wait_for(lambda f: buttons(f, "run_cancel"), timeout=20)
    await click(bot, fake, DECLARER, "run_cancel")
    assert await until_state(start_bot.dsn, "cancelled") == "cancelled"
    state = await fetch(start_bot.dsn, "select state from incidents")
    assert state[0]["state"] == "rollback_failed"
    answer = (await bot.ask("escalate RB-1 critical", user=DECLARER, channel=CHANNEL))["text"]
    assert "now CRITICAL" in answer, answer

    def requests(f):
        return [
            c for c in f.calls_to("chat.postMessage") if "Rollback requested" in text_of(c.args)
        ]

    await fake.wait_for(lambda f: len(requests(f)) == 2)
    await asyncio.sleep(0.5)
    assert len(requests(fake)) == 2
    state = await fetch(start_bot.dsn, "select state from incidents")
    assert state[0]["state"] == "awaiting_approval"


async def test_the_progress_message_shows_a_long_step_that_follows_a_short_one(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    await roll_back(bot, fake, "shortlong")  # "Short" is instant; "Long" takes 8 s

    def progress_now(f) -> str:
        """The progress message as Slack shows it now (edits applied)."""
        for root in f.messages(CHANNEL):
            for message in f.thread(CHANNEL, root["ts"]):
                if "steps done" in message.get("text", ""):
                    return text_of(message)
        return ""

    await fake.wait_for(lambda f: "step 2 of 2: *Long*" in progress_now(f), timeout=20)
    state = await fetch(start_bot.dsn, "select state from runs where kind = 'rollback'")
    assert state[0]["state"] == "running"  # shown while the long step still runs
    assert await until_state(start_bot.dsn, "succeeded") == "succeeded"
    await fake.wait_for(lambda f: "2/2 steps done" in progress_now(f), timeout=20)
