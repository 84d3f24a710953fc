"""The outbox on its own: coalescing, order, and giving up only on what can't be fixed."""

from __future__ import annotations

import asyncpg
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.postgres import create_pool, migrate
from bot.slack import outbox
from tests.e2e.harness import TOKEN
from tests.fake_slack.server import FakeSlack


@pytest.fixture
async def sending(fresh_database):
    """(pool, fake Slack, sender) on a migrated fresh database."""
    await migrate(fresh_database)
    pool = await create_pool(fresh_database, max_size=4)
    async with FakeSlack() as fake:
        client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)
        yield pool, fake, outbox.Sender(pool, client, min_interval=0)
    await pool.close()


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


async def test_a_revoked_token_keeps_messages_owed(sending):
    pool, fake, sender = sending
    fake.tokens.clear()  # every call now answers invalid_auth
    await owe(pool, outbox.post, channel="C1", text="important")
    await sender.deliver_all()
    async with pool.acquire() as conn:
        assert await outbox.owed_count(conn) == 1
