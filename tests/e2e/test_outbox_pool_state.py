"""A connection goes back to the pool as clean as it came out, however a delivery ends.

The pool sends no reset query on release (`bot.db.postgres`): asyncpg rolls back a transaction
left open, and the session state the outbox takes — the channel lock, the sender's LISTEN — is
the outbox's to undo. Each test ends deliveries badly (Slack refuses or stalls, the task is
cancelled at a database call, the server ends the session, the commit fails) and then checks
that no session holds an advisory lock, that every pooled connection is idle, outside a
transaction, listening to nothing, with no cursor and default settings, that another session
can take the channel, and that every owed message still reaches Slack, in order.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.postgres import create_pool, migrate
from bot.slack import outbox
from tests.e2e.db_proxy import DatabaseProxy
from tests.e2e.harness import TOKEN
from tests.fake_slack.server import FakeSlack

CHANNEL = "C1"
QUERIES = ("execute", "fetch", "fetchval", "fetchrow")  # every asyncpg call the outbox makes


@pytest.fixture
async def world(fresh_database):
    """(dsn, pool, fake Slack, client) on a migrated fresh database."""
    await migrate(fresh_database)
    pool = await create_pool(fresh_database, max_size=4)
    async with FakeSlack() as fake:
        yield fresh_database, pool, fake, AsyncWebClient(token=TOKEN, base_url=fake.base_url)
    await close(pool)


async def close(pool: asyncpg.Pool) -> None:
    try:
        await asyncio.wait_for(pool.close(), 5)
    except TimeoutError:  # a connection never given back: the test has already failed
        pool.terminate()


async def owe(pool: asyncpg.Pool, text: str, channel: str = CHANNEL) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.post(conn, channel=channel, text=text)


async def eventually(probe, expected, seconds: float = 5.0):
    """probe() once it returns `expected` (a dropped session's backend takes a moment to go)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (got := await probe()) != expected and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return got


async def assert_clean(dsn: str, pool: asyncpg.Pool, channel: str = CHANNEL) -> None:
    """No advisory lock anywhere, every pooled connection back and clean, the channel free."""
    other = await asyncpg.connect(dsn)
    try:

        async def locks() -> list:
            rows = await other.fetch(
                "select pid, classid, objid from pg_locks where locktype = 'advisory'"
                " and database = (select oid from pg_database where datname = current_database())"
            )
            return [tuple(r) for r in rows]

        assert await eventually(locks, []) == []
        default_timeout = await other.fetchval("show idle_in_transaction_session_timeout")

        async def checked_out() -> int:
            return pool.get_size() - pool.get_idle_size()

        assert await eventually(checked_out, 0) == 0, "a connection was never given back"
        async with asyncio.timeout(10):
            conns = [await pool.acquire() for _ in range(pool.get_max_size())]
        try:
            for conn in conns:
                assert not conn.is_in_transaction()
                state = await conn.fetchrow(
                    "select (select count(*) from pg_locks where locktype = 'advisory'"
                    "   and pid = pg_backend_pid()) as locks,"
                    " (select count(*) from pg_listening_channels()) as listening,"
                    " (select count(*) from pg_cursors where name <> '') as cursors,"
                    " current_setting('idle_in_transaction_session_timeout') as idle_timeout"
                )
                assert dict(state) == {
                    "locks": 0,
                    "listening": 0,
                    "cursors": 0,
                    "idle_timeout": default_timeout,
                }
        finally:
            for conn in conns:
                await pool.release(conn)
        taken = await other.fetchval(
            "select pg_try_advisory_lock($1, hashtext($2))", outbox.CHANNEL_LOCK_CLASS, channel
        )
        assert taken, "another session can't take the channel"
    finally:
        await other.close()


async def settle(pool: asyncpg.Pool, client: AsyncWebClient) -> None:
    """Deliver everything still owed (skipping the backoff), as a fresh process would."""
    sender = outbox.Sender(pool, client, min_interval=0)
    for _ in range(100):
        await sender.deliver_all()
        async with pool.acquire() as conn:
            if await outbox.owed_count(conn) == 0:
                return
            await conn.execute("update outbox set not_before = now()")
        await asyncio.sleep(0.05)
    raise AssertionError("messages stay owed: is the channel lock stuck?")


def texts(fake: FakeSlack, channel: str = CHANNEL) -> list[str]:
    """What reached the channel, each text once, in the order it first appeared. (A retry
    after an unknown outcome may post again here: the fake's ts count up from 2023, so the
    outbox's search from the row's created_at - 60 s finds nothing; not what these test.)"""
    return list(dict.fromkeys(m["text"] for m in fake.messages(channel)))


class CancelAt:
    """Cancels one task at its n-th database call: before the call is sent ("before"), while
    the server runs it ("during"), or once the server has done it but before the task reads
    the answer ("after"). "timeout" is "after" with the TimeoutError asyncpg raises when
    `command_timeout` runs out: the statement took effect, the caller was told it failed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, when: str) -> None:
        self.when, self.task, self.at, self.calls, self.sprung = when, None, -1, 0, False
        for name in QUERIES:
            monkeypatch.setattr(
                asyncpg.Connection, name, self._wrap(getattr(asyncpg.Connection, name))
            )

    def arm(self, task: asyncio.Task, at: int) -> None:
        self.task, self.at, self.calls, self.sprung = task, at, 0, False

    def _wrap(self, original):
        async def query(conn, *args, **kwargs):
            task = asyncio.current_task()
            if task is not self.task or self.sprung:
                return await original(conn, *args, **kwargs)
            self.calls += 1
            if self.calls - 1 != self.at:
                return await original(conn, *args, **kwargs)
            self.sprung = True
            if self.when == "before":
                task.cancel()
                await asyncio.sleep(0)
            if self.when == "during":
                asyncio.get_running_loop().call_soon(task.cancel)
                return await original(conn, *args, **kwargs)
            await original(conn, *args, **kwargs)
            if self.when == "timeout":
                raise TimeoutError
            task.cancel()
            await asyncio.sleep(0)
            raise AssertionError("not cancelled")

        return query


@pytest.mark.parametrize("when", ["before", "during", "after"])
async def test_a_delivery_cancelled_at_any_database_call_leaves_nothing_behind(
    world, monkeypatch, when
):
    dsn, pool, fake, client = world
    trap = CancelAt(monkeypatch, when)
    sender = outbox.Sender(pool, client, min_interval=0)
    sent = []
    for at in range(100):
        sent.append(f"message {at}")
        await owe(pool, sent[-1])
        task = asyncio.create_task(sender._deliver_channel(CHANNEL))
        trap.arm(task, at)
        await asyncio.gather(task, return_exceptions=True)
        if not trap.sprung:
            break  # past the last call of a whole delivery
        assert task.cancelled(), f"call {at}: {task}"
        await assert_clean(dsn, pool)
        await settle(pool, client)
        assert texts(fake) == sent, f"cancelled {when} call {at}"
    assert at > 8, "the sweep never got past the first message"


async def test_a_delivery_cancelled_while_slack_answers_slowly_leaves_nothing_behind(world):
    """Cancelled mid-send, with the keep-alive running meanwhile (a short bound)."""
    dsn, pool, fake, client = world
    sender = outbox.Sender(pool, client, min_interval=0, bound=0.6)
    await owe(pool, "slow")
    fake.fail("chat.postMessage", delay=2)
    task = asyncio.create_task(sender.deliver_all())
    await fake.wait_for(lambda f: f.calls_to("chat.postMessage"), timeout=30)
    await asyncio.sleep(0.5)  # a keep-alive or two have gone by
    task.cancel()
    await asyncio.gather(task, *sender._channels.values(), return_exceptions=True)
    await assert_clean(dsn, pool)
    await asyncio.sleep(2)  # the slow post lands in Slack after all
    await settle(pool, client)
    assert texts(fake) == ["slow"]


@pytest.mark.parametrize(
    "fault",
    [
        {"error": "not_in_channel"},  # given up
        {"status": 500},  # postponed
        {"retry_after": 1},  # rate limited
        {"error": "invalid_auth"},  # the bot's setup: stays owed
        {"delay": 2, "client_timeout": 0.5},  # our side gives up waiting
    ],
)
async def test_a_slack_failure_leaves_nothing_behind(world, fault):
    dsn, pool, fake, client = world
    await owe(pool, "first")
    fault = dict(fault)
    impatient = AsyncWebClient(
        token=TOKEN, base_url=fake.base_url, timeout=fault.pop("client_timeout", 30)
    )
    fake.fail("chat.postMessage", **fault)
    await outbox.Sender(pool, impatient, min_interval=0).deliver_all()
    await assert_clean(dsn, pool)
    fake.heal()
    await settle(pool, client)
    assert texts(fake) == ([] if fault.get("error") == "not_in_channel" else ["first"])


async def test_a_session_the_server_ends_mid_delivery_leaves_nothing_behind(world):
    dsn, pool, fake, client = world
    await owe(pool, "first")
    fake.fail("chat.postMessage", delay=1.5)
    sender = outbox.Sender(pool, client, min_interval=0)
    task = asyncio.create_task(sender.deliver_all())
    await fake.wait_for(lambda f: f.calls_to("chat.postMessage"), timeout=30)
    admin = await asyncpg.connect(dsn)
    try:
        killed = await admin.fetchval(
            "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory'"
        )
    finally:
        await admin.close()
    assert killed
    await asyncio.gather(task, *sender._channels.values(), return_exceptions=True)
    await assert_clean(dsn, pool)
    await settle(pool, client)
    assert texts(fake) == ["first"]


async def test_a_holder_the_idle_timeout_ends_leaves_its_pool_clean(world):
    """Its link frozen while Slack answers, the holder's session is ended by the server
    (idle_in_transaction_session_timeout); once the link thaws, its pool is clean too."""
    dsn, pool, fake, client = world
    proxy = DatabaseProxy(dsn)
    await proxy.start()
    stuck_pool = await create_pool(proxy.dsn, max_size=2)
    try:
        await owe(pool, "first")
        fake.fail("chat.postMessage", delay=1)
        sender = outbox.Sender(stuck_pool, client, min_interval=0, bound=1)
        task = asyncio.create_task(sender.deliver_all())
        await fake.wait_for(lambda f: f.calls_to("chat.postMessage"), timeout=30)
        proxy.freeze()
        other = await asyncpg.connect(dsn)
        try:

            async def held() -> int:
                return await other.fetchval(
                    "select count(*) from pg_locks where locktype = 'advisory'"
                )

            assert await eventually(held, 0, seconds=15) == 0
        finally:
            await other.close()
        proxy.thaw()
        await asyncio.gather(task, *sender._channels.values(), return_exceptions=True)
        await assert_clean(dsn, stuck_pool)
        await settle(pool, client)
        assert texts(fake) == ["first"]
    finally:
        proxy.thaw()
        await proxy.cut()
        stuck_pool.terminate()


async def test_a_commit_that_fails_leaves_nothing_behind(world):
    """The commit that ends a delivery fails (a deferred check): the lock is still freed."""
    dsn, pool, fake, client = world
    async with pool.acquire() as conn:
        await conn.execute(
            "create function refuse() returns trigger language plpgsql as"
            " $$ begin raise exception 'refused at commit'; end $$;"
            " create constraint trigger refuse after update on messages"
            " deferrable initially deferred for each row execute function refuse()"
        )
    await owe(pool, "first")
    await outbox.Sender(pool, client, min_interval=0).deliver_all()
    await assert_clean(dsn, pool)
    async with pool.acquire() as conn:
        assert await outbox.owed_count(conn) == 1
        await conn.execute("drop trigger refuse on messages")
    await settle(pool, client)
    assert texts(fake) == ["first"]


async def test_no_pooled_connection_keeps_anything_after_a_burst(world):
    dsn, pool, fake, client = world
    channels = [f"C{n}" for n in range(6)]
    fake.not_in_channels.add("C5")
    for n in range(8):
        for channel in channels:
            await owe(pool, f"{channel} {n}", channel=channel)
    fake.fail("chat.postMessage", status=500, times=5)
    fake.fail("chat.postMessage", delay=0.3, times=5)
    sender = outbox.Sender(pool, client, min_interval=0)
    await asyncio.gather(*(sender.deliver_all() for _ in range(3)))
    await settle(pool, client)
    for channel in channels:
        await assert_clean(dsn, pool, channel)
    for channel in channels[:5]:
        assert texts(fake, channel) == [f"{channel} {n}" for n in range(8)]


async def test_a_stopped_sender_gives_its_listen_connection_back_unlistened(world):
    dsn, pool, fake, client = world
    sender = outbox.Sender(pool, client, min_interval=0, poll_interval=0.1)
    task = asyncio.create_task(sender.run())
    await owe(pool, "first")
    await fake.wait_for(lambda f: f.calls_to("chat.postMessage"), timeout=30)
    task.cancel()
    await asyncio.gather(task, *sender._channels.values(), return_exceptions=True)
    await assert_clean(dsn, pool)


@pytest.mark.parametrize("when", ["before", "during", "after", "timeout"])
async def test_a_sender_stopped_while_it_starts_listening_leaves_nothing_behind(
    world, monkeypatch, when
):
    """Cancelled (or timed out) at its LISTEN or its first look for work: the LISTEN
    connection still goes back, listening to nothing."""
    dsn, pool, _, client = world
    trap = CancelAt(monkeypatch, when)
    for at in (0, 1):  # LISTEN, then dispatch's query
        sender = outbox.Sender(pool, client, min_interval=0, poll_interval=0.1)
        task = asyncio.create_task(sender.run())
        trap.arm(task, at)
        if when == "timeout":
            await asyncio.sleep(0.5)  # the sender carries on, polling
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*sender._channels.values(), return_exceptions=True)
        assert trap.sprung
        await assert_clean(dsn, pool)
