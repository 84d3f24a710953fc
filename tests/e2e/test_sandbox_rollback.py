"""The shipped runbook, through the front door, on a realistic sandbox: restored byte for byte."""

from __future__ import annotations

import asyncio
import signal

from tests.e2e.harness import fetch, text_of

CHANNEL = "CPROD0001"
NOTICE = "CNOTICE01"
DECLARER, APPROVER = "UDECLARE1", "UAPPROVE1"


async def start_on(start_bot, sandbox, *, env: dict[str, str] | None = None, rewrite=True):
    """A bot process whose steps see the sandbox's tools and database."""
    runbook = sandbox.runbook_path
    if rewrite:
        runbook = sandbox.write_runbook(notice_channels=[NOTICE], contacts={"on_call": "UONCALL01"})
    environment = {"PATH": sandbox.env["PATH"], **sandbox.env, **(env or {})}
    return await start_bot(runbook=runbook, env=environment)


async def until(predicate, *, timeout: float = 60.0, what: str = "condition"):
    """Poll an async predicate until it is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if result := await predicate():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def nothing_owed(dsn) -> bool:
    """True when the outbox holds no undelivered message."""
    rows = await fetch(dsn, "select count(*) from outbox where done_at is null")
    return rows[0]["count"] == 0


async def run_states(dsn, kind: str) -> list[str]:
    rows = await fetch(dsn, "select state from runs where kind = $1 order by id", kind)
    return [r["state"] for r in rows]


async def take_backup(bot, fake, dsn) -> None:
    await bot.command("backup", user=DECLARER, channel=CHANNEL, response_url=fake.response_url())

    async def done():
        states = await run_states(dsn, "backup")
        assert not states or states[-1] in ("queued", "running", "succeeded"), states
        return states and states[-1] == "succeeded"

    await until(done, what="the backup")


def approve_button(fake) -> tuple[str, str]:
    for root in fake.messages(CHANNEL):
        for message in fake.thread(CHANNEL, root["ts"]):
            for block in message.get("blocks") or []:
                for element in block.get("elements") or []:
                    if element.get("action_id") == "rollback_approve":
                        return element["value"], message["ts"]
    raise AssertionError("no approve button")


async def declare_full(bot, fake) -> tuple[str, str]:
    await bot.command(
        "declare critical full WMS sync corrupted orders",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await fake.wait_for(
        lambda f: [
            p
            for p in f.calls_to("chat.postMessage")
            if "Rollback requested" in p.args.get("text", "")
        ],
        timeout=20,
    )
    return approve_button(fake)


async def approve(bot, fake, value: str, ts: str) -> None:
    await bot.click(
        user=APPROVER,
        action_id="rollback_approve",
        value=value,
        channel=CHANNEL,
        message_ts=ts,
        response_url=fake.response_url(),
    )


async def wait_rollback(dsn, *states: str, timeout: float = 120.0) -> str:
    async def ended():
        found = await run_states(dsn, "rollback")
        return found and found[-1] in states and found[-1]

    return await until(ended, timeout=timeout, what=f"the rollback to reach {states}")


def incident_thread(fake) -> list[dict]:
    root = next(m for m in fake.messages(CHANNEL) if "RB-1" in text_of(m))
    return fake.thread(CHANNEL, root["ts"])


async def test_full_rollback_restores_database_and_files_exactly_and_reports_every_step(
    start_bot, fake, sandbox
):
    bot = await start_on(start_bot, sandbox)
    await take_backup(bot, fake, start_bot.dsn)
    artifacts = {r["name"] for r in await fetch(start_bot.dsn, "select name from artifacts")}
    assert {"db_dump", "code_branch", "project_files", "env_file"} <= artifacts
    before = sandbox.snapshot()
    sandbox.break_like_failed_integration()
    assert sandbox.snapshot() != before

    value, ts = await declare_full(bot, fake)
    await approve(bot, fake, value, ts)
    assert await wait_rollback(start_bot.dsn, "succeeded", "waiting") == "succeeded"

    after = sandbox.snapshot()
    assert after.database == before.database
    assert after.files == before.files
    dumps = await fetch(
        start_bot.dsn,
        "select count(*) from step_results where name = 'Backup current failed state'",
    )
    assert dumps[0]["count"] == 1
    [rollback] = await fetch(start_bot.dsn, "select id, ts from runs where kind = 'rollback'")
    kept = f"backup/failed_state/RB-1-run{rollback['id']}-{rollback['ts']}"  # README: run_dir
    assert (sandbox.project / kept / "code_failed.tar.gz").stat().st_size > 0
    assert sandbox.kept_databases() == [f"{sandbox.db_name}_failed_{rollback['ts']}"]

    run = await fetch(start_bot.dsn, "select verification_passed from runs where kind='rollback'")
    checks = await fetch(start_bot.dsn, "select name, passed, detail from check_results")
    assert run[0]["verification_passed"] is True, [tuple(c) for c in checks]
    await fake.wait_for(
        lambda f: any("Rollback finished" in text_of(m) for m in incident_thread(f)), timeout=30
    )
    thread = "\n".join(text_of(m) for m in incident_thread(fake))
    steps = await fetch(
        start_bot.dsn,
        "select name, status from step_results r join runs u"
        " on u.id = r.run_id where u.kind = 'rollback' order by r.id",
    )
    for step in steps:
        assert step["name"] in thread
    assert "Verification: 5/5 checks passed" in thread
    assert f"Kept the failed state in {kept}" in thread  # the thread says where
    assert f"Kept the failed database as {sandbox.db_name}_failed_{rollback['ts']}" in thread
    everything = str([c.args for c in fake.calls]) + str([r.body for r in fake.responses])
    for secret in sandbox.secrets:
        assert secret not in everything
    state = await fetch(start_bot.dsn, "select state from incidents")
    assert state[0]["state"] == "rolled_back"


async def test_slack_throttling_and_errors_during_a_run_lose_and_duplicate_nothing(
    start_bot, fake, sandbox
):
    bot = await start_on(start_bot, sandbox)
    await take_backup(bot, fake, start_bot.dsn)
    sandbox.break_like_failed_integration()
    value, ts = await declare_full(bot, fake)
    fake.fail("chat.postMessage", retry_after=1, times=3)
    fake.fail("chat.update", status=500, times=4)
    fake.fail("chat.postMessage", status=503, times=2)
    await approve(bot, fake, value, ts)
    assert await wait_rollback(start_bot.dsn, "succeeded", "waiting") == "succeeded"
    await fake.wait_for(
        lambda f: any("Rollback finished" in text_of(m) for m in incident_thread(f)), timeout=60
    )
    posted = [c for c in fake.calls_to("chat.postMessage") if c.ok]
    keys = [c.args["metadata"]["event_payload"]["key"] for c in posted]
    assert len(keys) == len(set(keys)), "a message was posted twice"
    await until(lambda: nothing_owed(start_bot.dsn), what="every owed message to be delivered")
    thread = incident_thread(fake)
    step_messages = [text_of(m) for m in thread if "Step " in m.get("text", "")]
    numbers = [int(t.split("Step ", 1)[1].split("/", 1)[0]) for t in step_messages]
    assert numbers == sorted(numbers), "step messages out of order"
    total = await fetch(start_bot.dsn, "select total_steps from runs where kind = 'rollback'")
    assert len(step_messages) == total[0]["total_steps"]


async def test_three_clicks_on_two_processes_run_once_and_dump_the_failed_state_once(
    start_bot, fake, sandbox
):
    first = await start_on(start_bot, sandbox)
    second = await start_on(start_bot, sandbox, rewrite=False)
    await take_backup(first, fake, start_bot.dsn)
    sandbox.break_like_failed_integration()
    value, ts = await declare_full(second, fake)
    await asyncio.gather(
        approve(first, fake, value, ts),
        approve(second, fake, value, ts),
        approve(first, fake, value, ts),
    )
    assert await wait_rollback(start_bot.dsn, "succeeded", "waiting") == "succeeded"
    assert len(await run_states(start_bot.dsn, "rollback")) == 1
    dumps = await fetch(
        start_bot.dsn,
        "select count(*) from step_results where name = 'Backup current failed state'",
    )
    assert dumps[0]["count"] == 1
    await fake.wait_for(
        lambda f: any("Rollback finished" in text_of(m) for m in incident_thread(f)), timeout=30
    )
    posted = [
        c.args["metadata"]["event_payload"]["key"]
        for c in fake.calls_to("chat.postMessage")
        if c.ok
    ]
    assert len(posted) == len(set(posted))


async def test_slack_down_and_the_bot_killed_while_messages_are_owed_delivers_each_once(
    start_bot, fake, sandbox
):
    bot = await start_on(start_bot, sandbox)
    await take_backup(bot, fake, start_bot.dsn)
    sandbox.break_like_failed_integration()
    value, ts = await declare_full(bot, fake)
    await approve(bot, fake, value, ts)
    await fake.wait_for(lambda f: any("Step 1/" in text_of(m) for m in incident_thread(f)))
    for method in ("chat.postMessage", "chat.update"):
        fake.fail(method, status=503, times=None)
    assert await wait_rollback(start_bot.dsn, "succeeded", "waiting") == "succeeded"
    owed = await fetch(start_bot.dsn, "select count(*) from outbox where done_at is null")
    assert owed[0]["count"] > 0
    await bot.stop(signal.SIGKILL)
    fake.heal()
    await start_on(start_bot, sandbox, rewrite=False)

    await until(lambda: nothing_owed(start_bot.dsn), timeout=90, what="every owed message")
    posted = [
        c.args["metadata"]["event_payload"]["key"]
        for c in fake.calls_to("chat.postMessage")
        if c.ok
    ]
    assert len(posted) == len(set(posted))
    assert any("Rollback finished" in text_of(m) for m in incident_thread(fake))
