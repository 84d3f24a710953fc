"""The outbox on its own: coalescing, order, and giving up only on what can't be fixed."""

from __future__ import annotations

import asyncio

import asyncpg
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.postgres import create_pool, migrate
from bot.slack import outbox
from tests.e2e.db_proxy import DatabaseProxy
from tests.e2e.harness import TOKEN
from tests.fake_slack.server import FakeSlack


async def owe(pool: asyncpg.Pool, op, **message) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await op(conn, **message)


async def test_edits_owed_before_the_post_went_out_are_merged_into_it(sending):
    pool, fake, sender = sending
    await owe(pool, outbox.post, channel="C1", key="run/1/step/0/1", text="running")
    for text in ("half", "almost", "succeeded"):
        await owe(pool, outbox.update, key="run/1/step/0/1", text=text)
    await sender.deliver_all()
    assert [c.args["text"] for c in fake.calls_to("chat.postMessage")] == ["succeeded"]
    assert fake.calls_to("chat.update") == []


async def test_only_the_newest_of_several_owed_edits_is_sent(sending):
    pool, fake, sender = sending
    await owe(pool, outbox.post, channel="C1", key="progress", text="0/3")
    await sender.deliver_all()
    for text in ("1/3", "2/3", "3/3"):
        await owe(pool, outbox.update, key="progress", text=text)
    await sender.deliver_all()
    assert [c.args["text"] for c in fake.calls_to("chat.update")] == ["3/3"]
    assert [m["text"] for m in fake.messages("C1")] == ["3/3"]


async def test_thread_replies_keep_their_order_and_follow_their_root(sending):
    pool, fake, sender = sending
    await owe(pool, outbox.post, channel="C1", key="root", text="root")
    for n in range(5):
        await owe(pool, outbox.post, channel="C1", text=f"reply {n}", thread_key="root")
    fake.fail("chat.postMessage", status=500, times=3)  # absorbed by the retry policy
    for _ in range(10):
        await sender.deliver_all()
        async with pool.acquire() as conn:
            if await outbox.owed_count(conn) == 0:
                break
            await conn.execute("update outbox set not_before = now()")  # skip the backoff
    root = fake.messages("C1")[0]
    assert [m["text"] for m in fake.thread("C1", root["ts"])] == [f"reply {n}" for n in range(5)]


async def test_a_message_slack_refuses_for_good_is_given_up_and_the_rest_go_on(sending):
    pool, fake, sender = sending
    fake.not_in_channels.add("CSECRET")
    await owe(pool, outbox.post, channel="CSECRET", text="can't go")
    await owe(pool, outbox.post, channel="C1", text="goes")
    await sender.deliver_all()
    async with pool.acquire() as conn:
        rows = await conn.fetch("select outcome from outbox order by id")
    assert [r["outcome"] for r in rows] == ["failed: not_in_channel", "sent"]


async def test_a_delivery_that_fails_unexpectedly_is_logged_and_the_row_stays_owed(sending, caplog):
    """A payload the sender can't read (a bug, an older release's row) raises inside a
    channel's delivery task: it must be logged, not dropped with the task, and other channels
    go on."""
    pool, _, sender = sending
    async with pool.acquire() as conn:
        await conn.execute(
            "insert into messages (key, channel) values ('m/bad', 'CBAD');"
            " insert into outbox (message_key, channel, op, payload)"
            " values ('m/bad', 'CBAD', 'post', '{}')"
        )
    await owe(pool, outbox.post, channel="C1", text="goes")
    await sender.deliver_all()
    assert "outbox: delivering to CBAD failed" in caplog.text and "KeyError" in caplog.text
    async with pool.acquire() as conn:
        rows = await conn.fetch("select channel, done_at is null as owed from outbox order by id")
    assert [(r["channel"], r["owed"]) for r in rows] == [("CBAD", True), ("C1", False)]


async def test_a_revoked_token_keeps_messages_owed(sending):
    pool, fake, sender = sending
    fake.tokens.clear()  # every call now answers invalid_auth
    await owe(pool, outbox.post, channel="C1", text="important")
    await sender.deliver_all()
    async with pool.acquire() as conn:
        assert await outbox.owed_count(conn) == 1


async def test_a_holder_whose_database_link_freezes_loses_the_channel(fresh_database):
    """A process that goes silent while it holds a channel (here: its database link freezes
    while Slack is answering it) loses the channel: another process delivers the next message,
    and finds the first one already posted rather than posting it twice."""
    await migrate(fresh_database)
    proxy = DatabaseProxy(fresh_database)
    await proxy.start()
    stuck_pool = await create_pool(proxy.dsn, max_size=2)
    pool = await create_pool(fresh_database, max_size=4)
    async with FakeSlack() as fake:
        client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)
        stuck = outbox.Sender(stuck_pool, client, min_interval=0, bound=2)
        other = outbox.Sender(pool, client, min_interval=0, bound=2)
        await owe(pool, outbox.post, channel="C1", key="first", text="first")
        fake.fail("chat.postMessage", delay=3)  # the holder's post is in flight for a while
        holder = asyncio.create_task(stuck.deliver_all())
        try:
            await fake.wait_for(lambda f: f.calls_to("chat.postMessage"), timeout=30)
            proxy.freeze()  # the holder can neither record the post nor keep its session up
            await owe(pool, outbox.post, channel="C1", key="second", text="second")
            for _ in range(300):
                await other.deliver_all()
                async with pool.acquire() as conn:
                    if await outbox.owed_count(conn) == 0:
                        break
                    await conn.execute("update outbox set not_before = now()")  # skip backoff
                await asyncio.sleep(0.2)
            assert [m["text"] for m in fake.messages("C1")] == ["first", "second"]
        finally:
            proxy.thaw()
            holder.cancel()
            await asyncio.gather(holder, return_exceptions=True)
            await proxy.cut()
            stuck_pool.terminate()
            await pool.close()


async def test_a_live_holder_waiting_on_a_slow_slack_keeps_the_channel(sending):
    """Slack answering more slowly than the bound doesn't cost a live holder its channel."""
    pool, fake, _ = sending
    client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)
    slow = outbox.Sender(pool, client, min_interval=0, bound=1)
    other = outbox.Sender(pool, client, min_interval=0, bound=1)
    await owe(pool, outbox.post, channel="C1", key="only", text="only")
    fake.fail("chat.postMessage", delay=4)
    holder = asyncio.create_task(slow.deliver_all())
    await fake.wait_for(lambda f: f.calls_to("chat.postMessage"), timeout=30)
    while not holder.done():
        await other.deliver_all()  # finds the channel taken every time
        await asyncio.sleep(0.2)
    await holder
    async with pool.acquire() as conn:
        rows = await conn.fetch("select outcome, attempts from outbox")
    assert [(r["outcome"], r["attempts"]) for r in rows] == [("sent", 1)]
    assert [m["text"] for m in fake.messages("C1")] == ["only"]


async def test_a_post_slack_got_but_the_bot_never_recorded_is_not_posted_twice(sending):
    """An attempt whose outcome is unknown (counted, no ts stored): the next delivery finds the
    message in the channel by its metadata and records it, instead of posting it again. The
    fake's timestamps are the moment of posting, as Slack's are, so the lookup from the row's
    `created_at` sees it."""
    pool, fake, sender = sending
    await owe(pool, outbox.post, channel="C1", key="once", text="once")
    client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)
    sent = await client.chat_postMessage(  # what the lost attempt had delivered
        channel="C1",
        text="once",
        metadata={"event_type": outbox.METADATA_TYPE, "event_payload": {"key": "once"}},
    )
    async with pool.acquire() as conn:
        await conn.execute("update outbox set attempts = 1 where message_key = 'once'")
    await sender.deliver_all()
    assert [m["text"] for m in fake.messages("C1")] == ["once"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("select ts from messages where key = 'once'") == sent["ts"]
        assert await outbox.owed_count(conn) == 0


async def test_the_database_notifies_the_senders_when_an_owing_transaction_commits(
    sending, fresh_database
):
    """Migration 011: an owed message wakes every sender at the commit of the transaction that
    owes it (no writer sends its own notify); a rolled-back one wakes nobody."""
    pool, _, _ = sending
    heard: asyncio.Queue = asyncio.Queue()
    listener = await asyncpg.connect(fresh_database)
    try:
        await listener.add_listener(outbox.NOTIFY_CHANNEL, lambda *args: heard.put_nowait(args))
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await outbox.post(conn, channel="C1", key="undone", text="undone")
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
        await asyncio.sleep(0.3)
        assert heard.empty()
        await owe(pool, outbox.post, channel="C1", key="owed", text="owed")
        await asyncio.wait_for(heard.get(), 5)
    finally:
        await listener.close()


async def test_a_postponed_message_holds_back_its_channel_and_no_other(sending):
    pool, fake, sender = sending
    await owe(pool, outbox.post, channel="C1", key="first", text="first")
    await owe(pool, outbox.post, channel="C1", key="second", text="second")
    await owe(pool, outbox.post, channel="C2", key="elsewhere", text="elsewhere")
    async with pool.acquire() as conn:  # as after a 429: Slack said wait
        await conn.execute(
            "update outbox set not_before = now() + interval '1 hour' where message_key = 'first'"
        )
    await sender.deliver_all()
    assert [m["text"] for m in fake.messages("C2")] == ["elsewhere"]
    assert fake.messages("C1") == []  # "second" waits behind "first": order is kept
    async with pool.acquire() as conn:
        await conn.execute("update outbox set not_before = now()")
    await sender.deliver_all()
    assert [m["text"] for m in fake.messages("C1")] == ["first", "second"]


def _rows_read(plan: dict) -> int:
    """Rows every node of an EXPLAIN ANALYZE plan produced or threw away, over all its loops."""
    read = (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * plan["Actual Loops"]
    return read + sum(_rows_read(child) for child in plan.get("Plans", []))


async def assert_lookups_read_a_handful_of_rows(conn: asyncpg.Connection) -> None:
    """The sender's three look-ups, EXPLAIN ANALYZEd on channel C1 and message m1500."""
    lookups = {
        "channels with due messages": (outbox._DUE_CHANNELS,),
        "a channel's head": (outbox._HEAD, "C1"),
        "a message's newest content": (outbox._LATEST, "m1500"),
    }
    for name, (query, *args) in lookups.items():
        [plan] = await conn.fetchval(f"explain (analyze, format json) {query}", *args)
        assert _rows_read(plan["Plan"]) < 30, (name, plan)


async def test_the_senders_lookups_read_a_handful_of_rows_whatever_is_owed(sending):
    """Migration 012. With 3,000 messages owed (a channel Slack is rate-limiting), each delivery
    used to read every owed row, and check each against every older one (13 ms of database
    CPU per message at 2,000); and the look for channels with due messages, after every
    commit, read them all again."""
    pool, _, _ = sending
    async with pool.acquire() as conn:
        await conn.execute(
            "insert into messages (key, channel) select 'm' || n, 'C' || n % 3"
            " from generate_series(1, 3000) n"
        )
        await conn.execute(
            "insert into outbox (message_key, channel, op, payload)"
            " select key, channel, 'post', '{\"text\": \"x\"}' from messages"
        )
        await conn.execute("analyze outbox; analyze messages")
        await assert_lookups_read_a_handful_of_rows(conn)
        assert {r["channel"] for r in await conn.fetch(outbox._DUE_CHANNELS)} == {"C0", "C1", "C2"}
        assert (await conn.fetchrow(outbox._HEAD, "C1"))["message_key"] == "m1"


async def test_only_a_channels_oldest_owed_message_notifies_the_senders(sending, fresh_database):
    """Migration 013: NOTIFY serialises every notifying commit in the cluster, so a message
    owed behind an older one in its channel (a sender is already on its way there) notifies
    nobody; the first one a channel owes, or one in another channel, does."""
    pool, _, sender = sending
    heard: asyncio.Queue = asyncio.Queue()
    listener = await asyncpg.connect(fresh_database)
    try:
        await listener.add_listener(outbox.NOTIFY_CHANNEL, lambda *args: heard.put_nowait(args))
        await owe(pool, outbox.post, channel="C1", key="first", text="first")
        await asyncio.wait_for(heard.get(), 5)
        await owe(pool, outbox.post, channel="C1", key="behind", text="behind")
        await owe(pool, outbox.update, key="first", text="first, edited")
        await asyncio.sleep(0.3)
        assert heard.empty()
        await owe(pool, outbox.post, channel="C2", key="other", text="other")
        await asyncio.wait_for(heard.get(), 5)
        await sender.deliver_all()
        async with pool.acquire() as conn:
            assert await outbox.owed_count(conn) == 0
        await owe(pool, outbox.update, key="behind", text="behind, edited")  # C1 owes nothing
        await asyncio.wait_for(heard.get(), 5)
    finally:
        await listener.close()
