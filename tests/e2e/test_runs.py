"""Approved rollbacks run step by step: failures, decisions, cancel, timeouts, kill -9, refusal."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap

from tests.e2e.harness import fetch, text_of

CHANNEL = "CRUNS0001"
DECLARER, APPROVER = "UDECLARE1", "UAPPROVE1"

SCENARIOS = textwrap.dedent("""
    [backup]
      [[backup.step]]
      name = "Dump"
      run = "echo dump-$RANDOM > {{ artifact }}"
      artifact = { name = "dump", path = "dump_{{ ts }}.txt" }

    [[scenario]]
    key = "flaky"
    title = "Needs a flag file"
    trigger = "test"
      [[scenario.step]]
      name = "First"
      run = "echo first >> ran.log"
      [[scenario.step]]
      name = "Needs flag"
      run = "test -f flag || { echo 'flag missing' >&2; exit 3; }; echo flagged >> ran.log"
      [[scenario.step]]
      name = "Last"
      run = "echo last >> ran.log"

    [[scenario]]
    key = "slow"
    title = "Slow steps"
    trigger = "test"
      [[scenario.step]]
      name = "Long"
      run = "echo long-start >> ran.log; sleep 4; echo long-end >> ran.log"
      [[scenario.step]]
      name = "After"
      run = "echo after >> ran.log"

    [[scenario]]
    key = "hang"
    title = "Hangs"
    trigger = "test"
      [[scenario.step]]
      name = "Hang with a child"
      run = "sleep 300 & echo $! > child.pid; sleep 300"
      timeout = "2s"

    [[scenario]]
    key = "restore"
    title = "Uses the backup"
    trigger = "test"
      [[scenario.step]]
      name = "Show secrets and restore"
      run = "cat .env; cat {{ backup.dump }} >> ran.log"

    [[scenario]]
    key = "many"
    title = "Twenty fast steps"
    trigger = "test"
""") + "".join(
    f'  [[scenario.step]]\n  name = "Fast {n}"\n  run = "echo {n}"\n' for n in range(1, 21)
)


async def start(start_bot, tmp_path, **options):
    (tmp_path / ".env").write_text("API_TOKEN=s3cr3t-value-from-dotenv\nMODE=prod\n")
    return await start_bot(scenarios=SCENARIOS, workdir=tmp_path, **options)


async def roll_back(bot, fake, scenario: str) -> None:
    """Declare critical on `scenario` and approve it as a second person."""
    await bot.command(
        f"declare critical {scenario} things broke",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await click(bot, fake, APPROVER, "rollback_approve")


def buttons(fake, action_id: str) -> list[tuple[str, str]]:
    """(value, ts) of every visible button with this action id in the channel's threads."""
    found = []
    for root in fake.messages(CHANNEL):
        for message in [root, *fake.thread(CHANNEL, root["ts"])]:
            for block in message.get("blocks") or []:
                for element in block.get("elements") or []:
                    if element.get("action_id") == action_id:
                        found.append((element["value"], message["ts"]))
    return found


async def click(bot, fake, user: str, action_id: str) -> str:
    found = await fake.wait_for(lambda f: buttons(f, action_id), timeout=20)
    value, ts = found[-1]
    url = fake.response_url()
    await bot.click(
        user=user,
        action_id=action_id,
        value=value,
        channel=CHANNEL,
        message_ts=ts,
        response_url=url,
    )
    return url


def thread_text(fake) -> str:
    """Everything visible in the channel's threads (incidents' and backups')."""
    return "\n".join(
        text_of(m) for root in fake.messages(CHANNEL) for m in fake.thread(CHANNEL, root["ts"])
    )


async def run_state(dsn) -> str:
    rows = await fetch(dsn, "select state from runs where kind = 'rollback'")
    return rows[0]["state"] if rows else ""


async def wait_state(dsn, fake, *states: str, timeout: float = 30) -> str:
    async def poll():
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if (state := await run_state(dsn)) in states:
                return state
            await asyncio.sleep(0.1)
        raise AssertionError(f"run not in {states}: {await run_state(dsn)}\n{fake.summary()}")

    return await poll()


async def test_a_failing_step_stops_the_run_and_retry_after_fixing_it_completes(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    await roll_back(bot, fake, "flaky")
    await wait_state(start_bot.dsn, fake, "waiting")
    assert (tmp_path / "ran.log").read_text() == "first\n"
    await fake.wait_for(lambda f: buttons(f, "run_retry"))
    assert "flag missing" in thread_text(fake)
    refused = await click(bot, fake, DECLARER, "run_retry")
    answer = await fake.wait_for(lambda f: f.responses_to(refused))
    assert "second person" in answer[0].body["text"]
    assert await run_state(start_bot.dsn) == "waiting"
    (tmp_path / "flag").write_text("fixed")
    await click(bot, fake, APPROVER, "run_retry")
    await wait_state(start_bot.dsn, fake, "succeeded")
    assert (tmp_path / "ran.log").read_text() == "first\nflagged\nlast\n"
    results = await fetch(
        start_bot.dsn, "select step_index, attempt, status from step_results order by id"
    )
    assert [tuple(r) for r in results] == [
        (0, 1, "succeeded"),
        (1, 1, "failed"),
        (1, 2, "succeeded"),
        (2, 1, "succeeded"),
    ]
    incident = await fetch(start_bot.dsn, "select state from incidents")
    assert incident[0]["state"] == "rolled_back"
    await fake.wait_for(lambda f: "Retry* chosen by <@UAPPROVE1>" in thread_text(f))
    assert not buttons(fake, "run_retry")


async def test_skip_moves_past_the_failed_step_and_abort_ends_the_run(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path)
    await roll_back(bot, fake, "flaky")
    await wait_state(start_bot.dsn, fake, "waiting")
    await click(bot, fake, APPROVER, "run_skip")
    await wait_state(start_bot.dsn, fake, "succeeded")
    assert (tmp_path / "ran.log").read_text() == "first\nlast\n"

    (tmp_path / "ran.log").unlink()
    await bot.command(
        "resolve RB-1", user=DECLARER, channel=CHANNEL, response_url=fake.response_url()
    )
    await fake.wait_for(lambda f: [m for m in f.messages(CHANNEL) if "resolved" in text_of(m)])
    await roll_back(bot, fake, "flaky")
    await fake.wait_for(lambda f: len(buttons(f, "run_abort")) >= 1, timeout=20)
    rows = await fetch(start_bot.dsn, "select id from runs where state = 'waiting'")
    assert rows
    await click(bot, fake, APPROVER, "run_abort")
    for _ in range(100):
        rows = await fetch(start_bot.dsn, "select state from runs order by id")
        if rows[-1]["state"] == "aborted":
            break
        await asyncio.sleep(0.1)
    assert rows[-1]["state"] == "aborted"
    assert (tmp_path / "ran.log").read_text() == "first\n"
    incident = await fetch(start_bot.dsn, "select state from incidents where id = 2")
    assert incident[0]["state"] == "rollback_failed"


async def test_cancel_stops_between_steps_after_the_running_step_finishes(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    await roll_back(bot, fake, "slow")
    await fake.wait_for(lambda f: (tmp_path / "ran.log").exists(), timeout=20)
    await click(bot, fake, DECLARER, "run_cancel")
    await wait_state(start_bot.dsn, fake, "cancelled")
    assert (tmp_path / "ran.log").read_text() == "long-start\nlong-end\n"
    text = await fake.wait_for(
        lambda f: "Cancelled by <@UDECLARE1> before step 2" in thread_text(f) and thread_text(f)
    )
    assert "finishes or times out first" in text


async def test_a_step_over_its_timeout_is_killed_with_its_children(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path)
    await roll_back(bot, fake, "hang")
    await wait_state(start_bot.dsn, fake, "waiting", timeout=30)
    child = int((tmp_path / "child.pid").read_text())
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the step's child survived the timeout")
    result = await fetch(start_bot.dsn, "select status from step_results")
    assert result[0]["status"] == "timed_out"
    await fake.wait_for(lambda f: "timed out" in thread_text(f))


async def test_kill_9_during_a_step_offers_resume_and_reruns_nothing_by_itself(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path, env={"ROLLBACK_RUN_LEASE": "2"})
    await roll_back(bot, fake, "slow")
    await fake.wait_for(lambda f: (tmp_path / "ran.log").exists(), timeout=20)
    await bot.stop(signal.SIGKILL)
    # The default lease: the first bot's short one (the stored lease_until) is what makes
    # the takeover quick; a short one here could lapse on a busy machine mid-resume.
    second = await start_bot(rewrite=False)
    await fake.wait_for(lambda f: buttons(f, "run_resume"), timeout=30)
    assert "may have partly run" in thread_text(fake)
    await asyncio.sleep(4)  # the orphaned step (its own process group) may finish; nothing new
    assert (tmp_path / "ran.log").read_text().count("long-start") == 1
    assert "after" not in (tmp_path / "ran.log").read_text()
    assert await run_state(start_bot.dsn) == "interrupted"
    statuses = await fetch(start_bot.dsn, "select status from step_results")
    assert [r["status"] for r in statuses] == ["interrupted"]
    await click(second, fake, APPROVER, "run_resume")
    await wait_state(start_bot.dsn, fake, "succeeded")
    assert (tmp_path / "ran.log").read_text().count("long-start") == 2
    assert (tmp_path / "ran.log").read_text().endswith("long-end\nafter\n")


async def test_a_missing_or_altered_backup_refuses_to_start(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path)
    await bot.command("backup", user=DECLARER, channel=CHANNEL, response_url=fake.response_url())
    for _ in range(100):
        rows = await fetch(start_bot.dsn, "select state from runs where kind = 'backup'")
        if rows and rows[0]["state"] == "succeeded":
            break
        await asyncio.sleep(0.1)
    artifact = await fetch(start_bot.dsn, "select path, size, sha256 from artifacts")
    assert artifact[0]["size"] > 0 and len(artifact[0]["sha256"]) == 64
    (tmp_path / artifact[0]["path"]).write_text("tampered\n")
    await bot.command(
        "declare critical restore broken",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await fake.wait_for(lambda f: "can't start yet" in thread_text(f))
    assert "sha256 differs" in thread_text(fake) or "has changed" in thread_text(fake)
    url = await click(bot, fake, APPROVER, "rollback_approve")
    answer = await fake.wait_for(lambda f: f.responses_to(url))
    assert "can't start yet" in answer[0].body["text"]
    assert await fetch(start_bot.dsn, "select * from runs where kind = 'rollback'") == []
    (tmp_path / artifact[0]["path"]).unlink()
    url = await click(bot, fake, APPROVER, "rollback_approve")
    answer = await fake.wait_for(lambda f: f.responses_to(url))
    assert "missing" in answer[0].body["text"]


async def test_secrets_printed_by_a_step_never_reach_slack(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path)
    await bot.command("backup", user=DECLARER, channel=CHANNEL, response_url=fake.response_url())
    await fake.wait_for(lambda f: "Backup completed" in str([c.args for c in f.calls]), timeout=20)
    await roll_back(bot, fake, "restore")
    await wait_state(start_bot.dsn, fake, "succeeded")
    # Every value of a `.env` file is a secret, whatever its key (MODE=prod too).
    await fake.wait_for(lambda f: "MODE=***" in thread_text(f))
    assert "MODE=prod" not in str([c.args for c in fake.calls])
    assert "s3cr3t-value-from-dotenv" not in str([c.args for c in fake.calls])
    assert "xoxb-test-token" not in str([c.args for c in fake.calls])


async def test_a_twenty_step_run_needs_at_most_two_and_a_half_calls_per_step(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    await roll_back(bot, fake, "many")
    await wait_state(start_bot.dsn, fake, "succeeded")
    await fake.wait_for(lambda f: "Rollback finished" in thread_text(f), timeout=20)
    await asyncio.sleep(1)
    root_ts = fake.messages(CHANNEL)[0]["ts"]
    run_calls = [
        c
        for c in fake.calls
        if (
            c.method in ("chat.postMessage", "chat.update")
            and "Fast" in text_of(c.args) + str(c.args.get("blocks"))
        )
        or (c.method == "chat.update" and "steps done" in str(c.args))
    ]
    assert len(run_calls) <= 2.5 * 20, len(run_calls)
    steps = [m for m in fake.thread(CHANNEL, root_ts) if "Fast" in text_of(m)]
    assert len(steps) == 20 and all("succeeded" in text_of(m) for m in steps)
    assert len({c.args.get("ts") for c in fake.calls_to("chat.update")}) >= 2


async def test_whoever_escalated_cannot_retry_or_skip_but_may_abort(start_bot, fake, tmp_path):
    """Retry and Skip carry the approved rollback further, so, like approving it, they need
    someone who took no part in asking for it; stopping it is open to any allowed approver."""
    escalator = "UESCALAT1"
    bot = await start(start_bot, tmp_path)
    await bot.ask("declare high flaky checkout is slow", user=DECLARER, channel=CHANNEL)
    escalated = await bot.ask("escalate RB-1 critical flaky", user=escalator, channel=CHANNEL)
    assert "RB-1" in escalated["text"]
    await click(bot, fake, APPROVER, "rollback_approve")
    await wait_state(start_bot.dsn, fake, "waiting")
    for action in ("run_retry", "run_skip"):
        refused = await click(bot, fake, escalator, action)
        answer = await fake.wait_for(lambda f, url=refused: f.responses_to(url))
        assert "escalated" in answer[0].body["text"], answer[0].body
        assert await run_state(start_bot.dsn) == "waiting"
    assert (tmp_path / "ran.log").read_text() == "first\n"  # nothing re-ran or moved on
    await click(bot, fake, escalator, "run_abort")
    assert await wait_state(start_bot.dsn, fake, "aborted") == "aborted"
