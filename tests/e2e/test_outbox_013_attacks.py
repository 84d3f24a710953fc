"""Migration 013 (notify only when a row is its channel's oldest owed one, checked at commit),
attacked: a writer whose transaction outlives the older row's delivery, an edit in flight,
several messages in one transaction, a postponed head, an old-release insert, two processes."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.postgres import create_pool, migrate
from bot.slack import outbox
from tests.e2e.harness import TOKEN
from tests.fake_slack.server import FakeSlack


@pytest.fixture
async def world(fresh_database):
    """(dsn, pool, fake Slack, start(poll_interval) -> running Sender)."""
    await migrate(fresh_database)
    pool = await create_pool(fresh_database, max_size=6)
    tasks: list[asyncio.Task] = []
    async with FakeSlack() as fake:
        client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)

        async def start(poll_interval: float, min_interval: float = 0) -> outbox.Sender:
            sender = outbox.Sender(
                pool, client, min_interval=min_interval, poll_interval=poll_interval
            )
            tasks.append(asyncio.create_task(sender.run()))
            await asyncio.sleep(0.2)  # LISTEN is in place
            return sender

        try:
            yield fresh_database, pool, fake, start
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await pool.close()


async def owe(pool: asyncpg.Pool, op, **message) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await op(conn, **message)


async def posted(fake, channel: str, text: str, timeout: float) -> float:
    """Seconds until `text` is posted in `channel` (raises TimeoutError after `timeout`)."""
    start = time.monotonic()
    while not any(m["text"] == text for m in fake.messages(channel)):
        if time.monotonic() - start > timeout:
            raise TimeoutError(text)
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def idle(sender: outbox.Sender, pool: asyncpg.Pool, key: str) -> None:
    """Until `key`'s rows are closed and the sender runs no delivery task."""
    for _ in range(1000):
        async with pool.acquire() as conn:
            open_rows = await conn.fetchval(
                "select count(*) from outbox where message_key = $1 and done_at is null", key
            )
        if not open_rows and not sender._channels:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("sender never went idle")


async def owe_second_across_firsts_delivery(world, *senders: outbox.Sender) -> float:
    """ "first" is in flight while a transaction owes "second" (so 013 does not notify); the
    transaction commits once every sender has delivered "first" and gone idle. How long after
    the commit "second" was posted."""
    _, pool, fake, _ = world
    fake.fail("chat.postMessage", delay=0.05)  # "first" in flight while T2 owes "second"
    await owe(pool, outbox.post, channel="C1", key="first", text="first")
    await fake.wait_for(lambda f: f.calls_to("chat.postMessage"), timeout=5)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await outbox.post(conn, channel="C1", key="second", text="second")
        for sender in senders:  # each channel task saw nothing more and ended
            await idle(sender, pool, "first")
        await tx.commit()
    return await posted(fake, "C1", "second", timeout=10)


# --- The real problem: a writer whose transaction spans the channel's last delivery --------


@pytest.mark.parametrize(
    ("poll_interval", "min_interval"),
    [(1.0, 0), (3.0, 0), (1.0, 1.0)],  # 1.0: the default
)
async def test_a_message_owed_behind_one_that_is_delivered_before_it_commits(
    world, poll_interval, min_interval
):
    """T2 owes "second" while "first" is owed (so 013 does not notify), and commits after
        the channel's task has delivered "first", found nothing (T2 not yet visible) and ended.
        Checked at the insert, nobody was on its way and "second" waited for the next poll (947 ms
    at the default 1 s); checked at commit, T2 sees "first" delivered and notifies."""
    start = world[3]
    sender = await start(poll_interval, min_interval)
    assert await owe_second_across_firsts_delivery(world, sender) < 0.3


# --- Attacks that did not break it -------------------------------------------------------


async def test_an_update_keeps_the_channels_delivery_going(world):
    """`_deliver` returns True (not None) after a chat.update: a post owed behind an edit in
    flight goes out at once, without a poll (poll_interval 30 s)."""
    _, pool, fake, start = world
    await start(30.0)
    await owe(pool, outbox.post, channel="C1", key="a", text="a")
    await posted(fake, "C1", "a", timeout=5)
    fake.fail("chat.update", delay=0.3)
    await owe(pool, outbox.update, key="a", text="a, edited")  # the channel's oldest: notifies
    await fake.wait_for(lambda f: f.calls_to("chat.update"), timeout=5)
    await owe(pool, outbox.post, channel="C1", key="b", text="b")  # behind: notifies nobody
    await posted(fake, "C1", "b", timeout=2)


async def test_messages_owed_together_in_one_transaction_go_out_without_a_poll(world):
    _, pool, fake, start = world
    await start(30.0)
    async with pool.acquire() as conn, conn.transaction():
        for n in range(3):
            await outbox.post(conn, channel="C1", key=f"m{n}", text=f"m{n}")
        await outbox.update(conn, key="m0", text="m0, edited")
        await outbox.post(conn, channel="C2", key="c2", text="c2")
    await posted(fake, "C1", "m2", timeout=2)
    await posted(fake, "C2", "c2", timeout=2)


async def test_a_postponed_head_and_the_row_behind_it_go_out_at_the_next_poll_either_way(world):
    """A row owed behind a postponed head (Slack 500, retry in 2 s) goes out within one
    poll of the head becoming due, with or without 013."""
    _, pool, fake, start = world
    await start(1.0)
    fake.fail("chat.postMessage", status=500)
    await owe(pool, outbox.post, channel="C1", key="first", text="first")
    for _ in range(500):
        async with pool.acquire() as conn:
            not_before = await conn.fetchval(
                "select extract(epoch from not_before - now()) from outbox"
                " where message_key = 'first' and last_error is not null"
            )
        if not_before is not None:
            break
        await asyncio.sleep(0.01)
    await owe(pool, outbox.post, channel="C1", key="second", text="second")
    delay = await posted(fake, "C1", "second", timeout=10)
    assert delay < float(not_before) + 1.3


async def test_an_old_release_insert_without_a_channel_neither_fails_nor_goes_unheard(world):
    """012's BEFORE trigger fills `channel` before 013's trigger reads the row."""
    dsn, pool, fake, start = world
    heard: asyncio.Queue = asyncio.Queue()
    listener = await asyncpg.connect(dsn)
    try:
        await listener.add_listener(outbox.NOTIFY_CHANNEL, lambda *a: heard.put_nowait(a))
        async with pool.acquire() as conn:
            await conn.execute(
                "with message as (insert into messages (key, channel) values ('old', 'C9')"
                " returning key) insert into outbox (message_key, op, payload)"
                " select key, 'post', $1::jsonb from message",
                {"text": "old", "blocks": None},
            )
            await conn.execute(
                "insert into outbox (message_key, op, payload) values ('old', 'update', $1)",
                {"text": "old, edited", "blocks": None},
            )
            await conn.execute(
                "insert into outbox (message_key, op, payload) select"
                " 'old', 'update', '{}'::jsonb where false"
            )  # zero rows
            # A message that doesn't exist fails on 012's NOT NULL, as it did before 013.
            with pytest.raises(asyncpg.NotNullViolationError):
                await conn.execute(
                    "insert into outbox (message_key, op, payload)"
                    " values ('nope', 'update', '{}'::jsonb)"
                )
        await asyncio.wait_for(heard.get(), 5)
        sender = await start(30.0)
        await posted(fake, "C9", "old, edited", timeout=3)
        assert sender is not None
    finally:
        await listener.close()


async def test_two_processes_the_stranded_message_waits_for_whichever_polls_first(world):
    """Two senders (poll 1 s): the stranded case is bounded by one poll interval, no worse."""
    start = world[3]
    first = await start(1.0)
    second = await start(1.0)
    delay = await owe_second_across_firsts_delivery(world, first, second)
    print(f"two processes: 'second' posted {delay * 1000:.0f} ms after commit")
    assert delay < 1.2
