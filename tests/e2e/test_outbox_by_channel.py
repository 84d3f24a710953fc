"""Migration 012 (outbox.channel) and the sender's by-channel look-ups, under attack: a
database that already owes messages, a process of the previous release still writing during a
deploy, the old head rule against the new one, wake-ups during the dispatch gap, and a declare
that fails half-way."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.db import postgres
from bot.db.postgres import create_pool, migrate
from bot.incidents import flow as workflow
from bot.incidents.approvals import root_key
from bot.lifecycle import Severity
from bot.slack import blocks, outbox
from tests.e2e.harness import TOKEN
from tests.e2e.test_outbox import assert_lookups_read_a_handful_of_rows, owe
from tests.fake_slack.server import FakeSlack

# The previous release's writes (before migration 012), verbatim: during a deploy without
# downtime ("start the new processes, then SIGTERM the old ones", README) the old processes
# keep owing messages this way after a new one has applied 012.
OLD_POST = (
    "with message as (insert into messages (key, channel, thread_key)"
    " values ($1, $2, $3) returning key)"
    " insert into outbox (message_key, op, payload) select key, 'post', $4::jsonb from message"
)
OLD_UPDATE = "insert into outbox (message_key, op, payload) values ($1, 'update', $2)"
# The previous release's head rule: the oldest due row with no older not-yet-due row.
OLD_HEAD = (
    "select o.id from outbox o join messages m on m.key = o.message_key"
    " where m.channel = $1 and o.done_at is null and o.not_before <= now()"
    " and not exists (select 1 from outbox e join messages em on em.key = e.message_key"
    "   where em.channel = $1 and e.done_at is null and e.id < o.id and e.not_before > now())"
    " order by o.id limit 1"
)
OLD_DUE_CHANNELS = (
    "select distinct m.channel from outbox o join messages m on m.key = o.message_key"
    " where o.done_at is null and o.not_before <= now()"
)


def payload(text: str) -> dict:
    """A payload as the previous release wrote it."""
    return {"text": text, "blocks": None, "failure_response_url": None, "failure_note": None}


async def _migrate_up_to(dsn: str, last: int, monkeypatch) -> None:
    files = postgres._migration_files
    with monkeypatch.context() as patch:
        patch.setattr(postgres, "_migration_files", lambda: [f for f in files() if f[0] <= last])
        await migrate(dsn)


async def test_a_process_of_the_previous_release_can_still_owe_messages_after_012(sending):
    """A deploy without downtime: the new process migrated, the old ones still serve. Their
    posts and edits (no `channel`) must not fail, and must be delivered in their channel."""
    pool, fake, sender = sending
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(OLD_POST, "old", "C1", None, payload("from the old process"))
        await conn.execute(OLD_UPDATE, "old", payload("edited by the old process"))
    await owe(pool, outbox.post, channel="C1", key="new", text="from the new process")
    await sender.deliver_all()
    assert [m["text"] for m in fake.messages("C1")] == [
        "edited by the old process",
        "from the new process",
    ]


async def test_012_on_a_database_that_already_owes_and_delivered(fresh_database, monkeypatch):
    """Migrations 001-011, rows written the old way (delivered, owed, postponed, edits owed
    for a post still owed), then 012: every row gets its message's channel, and the sender
    delivers what was owed, in order, coalesced."""
    await _migrate_up_to(fresh_database, 11, monkeypatch)
    conn = await asyncpg.connect(fresh_database)
    try:
        await postgres._init_connection(conn)
        await conn.execute(OLD_POST, "done", "C1", None, payload("delivered long ago"))
        await conn.execute(
            "update messages set ts = '1.000001', posted_at = now() where key = 'done';"
            " update outbox set done_at = now(), outcome = 'sent'"
        )
        await conn.execute(OLD_UPDATE, "done", payload("delivered, edited"))
        await conn.execute(OLD_POST, "a", "C1", None, payload("a v1"))
        await conn.execute(OLD_POST, "b", "C2", None, payload("b"))
        await conn.execute(OLD_UPDATE, "a", payload("a v2"))
        await conn.execute(OLD_POST, "reply", "C1", "a", payload("reply"))
    finally:
        await conn.close()
    assert (await migrate(fresh_database))[0] == "012_outbox_by_channel.sql"
    conn = await asyncpg.connect(fresh_database)
    try:
        rows = await conn.fetch(
            "select o.channel, m.channel as expected from outbox o"
            " join messages m on m.key = o.message_key"
        )
        assert rows and all(r["channel"] == r["expected"] for r in rows)
    finally:
        await conn.close()
    pool = await create_pool(fresh_database, max_size=4)
    try:
        async with FakeSlack() as fake:
            client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)
            await outbox.Sender(pool, client, min_interval=0).deliver_all()
            assert [m["text"] for m in fake.messages("C2")] == ["b"]
            root = next(m for m in fake.messages("C1") if m["text"] == "a v2")
            assert [m["text"] for m in fake.thread("C1", root["ts"])] == ["reply"]
    finally:
        await pool.close()


async def test_the_head_is_the_old_rule_on_random_backlogs(sending):
    """The new head (the channel's oldest owed row, if due) against the old rule (the oldest
    due row with no older row not yet due), and the channels each finds, on random data."""
    pool, _, _ = sending
    rng = random.Random(12)
    async with pool.acquire() as conn:
        for _ in range(40):
            await conn.execute("truncate outbox, messages cascade")
            for n in range(rng.randint(0, 25)):
                channel = f"C{rng.randint(1, 4)}"
                await outbox.post(conn, channel=channel, key=f"k{n}", text="x")
                for _ in range(rng.randint(0, 2)):
                    await outbox.update(conn, key=f"k{n}", text="y")
            await conn.execute(
                "update outbox set not_before = now() + interval '1 hour' where random() < 0.3;"
                " update outbox set done_at = now() where random() < 0.3"
            )
            async with conn.transaction():  # one now() for all, as in a delivery
                for channel in ("C1", "C2", "C3", "C4"):
                    new = await outbox._head(conn, channel)
                    old = await conn.fetchval(OLD_HEAD, channel)
                    assert (new["id"] if new else None) == old
                assert {r[0] for r in await conn.fetch(outbox._DUE_CHANNELS)} == {
                    r[0]
                    for r in await conn.fetch(OLD_DUE_CHANNELS)
                    if await conn.fetchval(OLD_HEAD, r[0]) is not None
                }


async def test_a_message_owed_during_the_dispatch_gap_is_delivered_at_once(sending):
    """Notifications arriving while the sender sleeps out DISPATCH_GAP (or just before it
    clears its wake-up) are not lost: with a 60 s poll, only the notification can wake it."""
    pool, fake, _ = sending
    client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)
    sender = outbox.Sender(pool, client, min_interval=0, poll_interval=60)
    running = asyncio.create_task(sender.run())
    try:
        await asyncio.sleep(0.3)  # LISTEN is up
        for n in range(30):
            await owe(pool, outbox.post, channel=f"C{n % 3}", key=f"m{n}", text=f"m{n}")
            await asyncio.sleep(rng_delay(n))
        await fake.wait_for(
            lambda f: sum(len(f.messages(f"C{c}")) for c in range(3)) == 30, timeout=10
        )
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def rng_delay(n: int) -> float:
    return (n * 7 % 11) / 100  # 0 to 100 ms: inside and outside the 50 ms gap


async def _rows(services) -> dict[str, int]:
    async with services.pool.acquire() as conn:
        return {
            t: await conn.fetchval(f"select count(*) from {t}")
            for t in ("incidents", "events", "incident_requesters", "messages", "outbox",
                      "deadlines", "approvals")
        }  # fmt: skip


@pytest.mark.parametrize("severity", [Severity.LOW, Severity.HIGH, Severity.CRITICAL])
async def test_a_declare_that_fails_half_way_leaves_nothing(services, severity):
    """The last write of a declare fails (the outbox refuses it): no incident, audit row,
    requester, message or deadline is left behind, whatever the severity."""
    async with services.pool.acquire() as conn:
        await conn.execute(
            "create function refuse() returns trigger language plpgsql as $$"
            " begin if (select count(*) from outbox) >= $1 then raise 'refused'; end if;"
            " return new; end $$".replace("$1", "1" if severity is Severity.LOW else "2")
        )
        await conn.execute(
            "create trigger refuse after insert on outbox for each row execute function refuse()"
        )
    with pytest.raises(asyncpg.RaiseError):
        await workflow.declare(
            services, channel="C1", user="U1", severity=severity, scenario="database",
            summary="x", detected_at=None,
        )  # fmt: skip
    assert set((await _rows(services)).values()) == {0}


async def test_two_processes_declaring_at_once_get_ordered_ids_and_whole_incidents(services):
    async def declare(n: int) -> str:
        return await workflow.declare(
            services, channel=f"C{n % 2}", user=f"U{n}", severity=Severity.LOW,
            scenario="database", summary=f"s{n}", detected_at=None,
        )  # fmt: skip

    await asyncio.gather(*(declare(n) for n in range(12)))
    async with services.pool.acquire() as conn:
        rows = await conn.fetch(
            "select i.id, i.declared_at, e.at, o.channel = i.channel as same"
            " from incidents i join events e on e.incident_id = i.id"
            " join outbox o on o.message_key = 'RB-' || i.id || '/root' order by i.id"
        )
    assert len(rows) == 12 and all(r["same"] for r in rows)
    assert all(r["at"] >= r["declared_at"] for r in rows)


@pytest.mark.parametrize("severity", [Severity.LOW, Severity.CRITICAL])
async def test_the_declare_audit_row_and_requester_bear_the_incidents_declared_at(
    services, severity
):
    """Before 012 the incident, its `declare` audit row and its requester row were written in
    one transaction, so they bore one time. Now one statement writes them (and the first
    message, rendered before): the audit log must still say the incident was declared when the
    incident says it was (the post-mortem's timeline reads the audit row)."""
    await workflow.declare(
        services, channel="C1", user="U1", severity=severity, scenario="database",
        summary="x", detected_at=None,
    )  # fmt: skip
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow(
            "select i.declared_at, e.at, r.at as requester_at from incidents i"
            " join events e on e.incident_id = i.id and e.kind = 'declare'"
            " join incident_requesters r on r.incident_id = i.id and r.part = 'declared'"
        )
    assert row["at"] == row["declared_at"] == row["requester_at"]


def _times() -> list[datetime]:
    """Minute edges, a leap day, offsets whose UTC date differs, and a seeded random spread."""
    edges = [
        datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 7, 1, 0, 0, tzinfo=UTC),
        datetime(2028, 2, 29, 12, 30, 0, 500000, tzinfo=UTC),
        datetime(2024, 7, 1, 1, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 6, 30, 20, 0, tzinfo=timezone(timedelta(hours=-8))),
    ]
    rng, start = random.Random(12), datetime(2000, 1, 1, tzinfo=UTC)
    spread = [start + timedelta(seconds=rng.uniform(0, 100 * 365 * 86400)) for _ in range(500)]
    return edges + spread


async def test_slack_time_in_sql_is_slack_time(services):
    """The declare statement writes the first message's time in SQL: the same text as Python."""
    moments = _times()
    async with services.pool.acquire() as conn:
        rendered = await conn.fetchval(
            f"select array_agg({blocks.slack_time_sql('t')} order by n)"
            " from unnest($1::timestamptz[]) with ordinality as m(t, n)",
            moments,
        )
    assert rendered == [blocks.slack_time(m) for m in moments]


@pytest.mark.parametrize("severity", [Severity.LOW, Severity.HIGH])
async def test_the_first_message_shows_the_id_and_time_the_database_gave_the_incident(
    services, severity
):
    """Rendered before the row exists, the root is owed with the id and time the statement gave
    the incident: exactly what rendering the written row says. The marks can't be typed: in a
    summary they are escaped like any user text, and stay as typed."""
    summary = "orders <rb:incident-id> & <rb:declared-at> lost"
    detected = datetime(2024, 6, 30, 19, 0, tzinfo=UTC)
    await workflow.declare(
        services, channel="C1", user="U1", severity=severity, scenario="database",
        summary=summary, detected_at=detected, response_url="https://hooks.example/r1",
    )  # fmt: skip
    async with services.pool.acquire() as conn:
        incident = await conn.fetchrow("select * from incidents")
        owed = await conn.fetchrow(
            "select m.key, m.channel, o.payload from messages m join outbox o on o.message_key"
            " = m.key where m.thread_key is null"
        )
        deadline = await conn.fetchrow("select due_at from deadlines")
    text, root = blocks.incident_root(incident, services.scenario_title("database"))
    assert owed["key"] == root_key(incident["id"]) and owed["channel"] == "C1"
    assert owed["payload"] == {
        "text": text,
        "blocks": root,
        "failure_response_url": "https://hooks.example/r1",
        "failure_note": None,
    }
    assert "&lt;rb:incident-id&gt; &amp; &lt;rb:declared-at&gt;" in str(root)
    assert incident["summary"] == summary
    if severity is Severity.HIGH:  # the deadline counts from the declaration's own time
        assert deadline["due_at"] - incident["declared_at"] == timedelta(hours=1)


async def test_the_lookups_stay_cheap_when_a_backlog_builds_after_the_last_analyze(sending):
    """A year of delivered rows, analyzed while nothing was owed (the statistics say the
    owed rows are none); then Slack rate-limits one channel and 3,000 rows pile up before
    autovacuum analyzes again. The sender's look-ups must still read a handful of rows."""
    pool, _, _ = sending
    async with pool.acquire() as conn:
        await conn.execute("alter table outbox set (autovacuum_enabled = false)")
        await conn.execute(
            "insert into messages (key, channel) select 'd' || n, 'C' || n % 50"
            " from generate_series(1, 20000) n;"
            " insert into outbox (message_key, channel, op, payload, done_at)"
            " select key, channel, 'post', '{}', now() from messages;"
            " analyze outbox; analyze messages"
        )
        await conn.execute(
            "insert into messages (key, channel) select 'm' || n, case when n = 3001 then 'C1'"
            " else 'CBUSY' end from generate_series(1, 3001) n;"
            " insert into outbox (message_key, channel, op, payload)"
            " select key, channel, 'post', '{\"text\": \"x\"}' from messages where key like 'm%'"
            " order by substr(key, 2)::int"
        )
        await assert_lookups_read_a_handful_of_rows(conn)
