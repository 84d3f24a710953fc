"""The HIGH deadline: fires once, at the deadline, across restarts and processes."""

from __future__ import annotations

import asyncio
import signal

from tests.e2e.harness import fetch, posts_in, text_of

CHANNEL = "CHIGH0001"
DECLARER = "UDECLARE1"


async def declare_high(bot, fake, text="declare high database checkout is slow"):
    status, _ = await bot.command(
        text, user=DECLARER, channel=CHANNEL, response_url=fake.response_url()
    )
    assert status == 200
    await fake.wait_for(lambda f: [p for p in posts_in(f, CHANNEL) if "HIGH:" in text_of(p)])


def approval_requests(fake):
    return [p for p in posts_in(fake, CHANNEL) if "Rollback requested" in p.get("text", "")]


async def test_high_deadline_posts_the_approval_request_once(start_bot, fake):
    first = await start_bot(high_after="2s")
    await start_bot(rewrite=False)  # a second process watching the same deadline
    await declare_high(first, fake)
    await fake.wait_for(approval_requests, timeout=20)
    await asyncio.sleep(2.0)  # both processes had time to fire it
    assert len(approval_requests(fake)) == 1
    assert "<@UONCALL01>" in text_of(approval_requests(fake)[0])
    [deadline] = await fetch(
        start_bot.dsn,
        "select d.due_at, d.fired_at, i.declared_at from deadlines d"
        " join incidents i on i.id = d.incident_id where d.kind = 'high_rollback'",
    )
    assert (deadline["due_at"] - deadline["declared_at"]).total_seconds() == 2
    assert deadline["fired_at"] >= deadline["due_at"]  # at the deadline, never before it
    kinds = [r["kind"] for r in await fetch(start_bot.dsn, "select kind from events order by id")]
    assert kinds == ["declare", "request_approval"]


async def pass_the_deadline(dsn: str) -> None:
    """Move every HIGH deadline into the past, as if its two hours had gone by."""
    await fetch(
        dsn,
        "update deadlines set due_at = now() - interval '1 second'"
        " where kind = 'high_rollback' returning id",
    )


async def test_resolved_high_incident_never_fires(start_bot, fake):
    bot = await start_bot()  # high_rollback_after = 1h: nothing fires by itself during the test
    await declare_high(bot, fake)
    answer = await bot.ask("resolve fixed the index", user=DECLARER, channel=CHANNEL)
    assert answer["text"] == "RB-1 is resolved."
    # The deadline passes while the bot restarts: a restart fires every due deadline at once,
    # so a cancelled one that fired would show now.
    await bot.stop(signal.SIGKILL)
    await pass_the_deadline(start_bot.dsn)
    await start_bot(rewrite=False)
    await asyncio.sleep(2.0)
    assert approval_requests(fake) == []
    [deadline] = await fetch(
        start_bot.dsn,
        "select fired_at, cancelled_at from deadlines where kind = 'high_rollback'",
    )
    assert deadline["fired_at"] is None and deadline["cancelled_at"] is not None


async def test_deadline_that_passes_while_the_bot_is_killed_fires_once_after_restart(
    start_bot, fake
):
    bot = await start_bot()  # high_rollback_after = 1h
    await declare_high(bot, fake)
    await bot.stop(signal.SIGKILL)
    await pass_the_deadline(start_bot.dsn)  # the deadline passes while nothing runs
    assert approval_requests(fake) == []
    await start_bot(rewrite=False)
    await fake.wait_for(approval_requests, timeout=20)
    await asyncio.sleep(1.5)
    assert len(approval_requests(fake)) == 1
    fired = await fetch(
        start_bot.dsn,
        "select count(*) from deadlines where fired_at is not null and kind = 'high_rollback'",
    )
    assert fired[0]["count"] == 1


async def test_escalating_high_to_critical_asks_at_once_and_cancels_the_deadline(start_bot, fake):
    bot = await start_bot(high_after="1h")
    await declare_high(bot, fake)
    url = fake.response_url()
    await bot.command("escalate RB-1 critical", user=DECLARER, channel=CHANNEL, response_url=url)
    await fake.wait_for(approval_requests)
    rows = await fetch(start_bot.dsn, "select kind, cancelled_at from deadlines order by id")
    assert rows[0]["kind"] == "high_rollback" and rows[0]["cancelled_at"] is not None
    incident = await fetch(start_bot.dsn, "select severity, state from incidents")
    assert tuple(incident[0]) == ("critical", "awaiting_approval")
