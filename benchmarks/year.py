"""A year of history: `status`, `history`, `declare` and the Home tab on 10,000 past incidents.

Two bots, same settings, same requests, batches interleaved (which goes first flips every
round): one on an all but empty database, one on a database holding a year of resolved incidents
(`year_history.sql`, generated in SQL and ANALYZEd before the bot starts, as autovacuum
would have by then). The baseline database is empty but for 15 incidents in each channel:
`history` shows 15, so both answers are the same size and the ratio measures the database,
not the rendering of 15 lines against 1. Both have the one open incident `status` is asked
about.

`status`, `history` and `declare` are timed to their ack (the ack carries the answer, so
it includes the queries). The Home tab's ack comes before any work, so it is timed from
sending `app_home_opened` until the fake Slack receives that user's `views.publish`; the
fake Slack runs in this process for that, on the same clock.
"""

from __future__ import annotations

import asyncio
import json
import signal
import string
import time
from collections import defaultdict
from pathlib import Path

import asyncpg

from benchmarks import database, drive
from benchmarks.acks import DECLARE_CHANNEL, READER, STATUS_CHANNEL
from benchmarks.load import Request, Slack, percentile, session
from benchmarks.procs import Server, bot_server
from benchmarks.report import Row, ms, times
from benchmarks.sizes import Size
from bot.db.postgres import migrate
from tests.e2e.harness import SECRET
from tests.fake_slack.server import FakeSlack
from tests.slack_requests import app_home_opened_event_body, sign

KINDS = ("status", "history", "declare", "home")
TARGET = 1.2
CHANNELS = (STATUS_CHANNEL, DECLARE_CHANNEL, "CBOTHER01", "CBOTHER02")
SQL = Path(__file__).with_name("year_history.sql")
BASELINE = 15 * len(CHANNELS)  # what `history` shows in each channel (its limit)


def incidents(size: Size) -> int:
    """Past incidents in the year database: 10,000 (500 for the smoke test)."""
    return 500 if size.name == "quick" else 10_000


async def fill(dsn: str, count: int) -> None:
    """Write `count` resolved incidents over the past year (and their rows) into `dsn`."""
    sql = string.Template(SQL.read_text()).substitute(
        incidents=count,
        channels=", ".join(f"'{c}'" for c in CHANNELS),
        channel_count=len(CHANNELS),
    )
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(sql)
        await conn.execute("analyze")
    finally:
        await conn.close()


class Traffic:
    """One bot's requests of each kind; Home tab opens by users never used before."""

    def __init__(self, name: str, slack: Slack, fake: FakeSlack) -> None:
        self.name, self.slack, self.fake = name, slack, fake
        self.numbers = iter(range(10**9))

    def make(self, kind: str, count: int) -> list[Request]:
        """`count` requests of `kind`."""
        if kind in ("status", "history"):
            return [
                self.slack.command(kind, user=READER, channel=STATUS_CHANNEL) for _ in range(count)
            ]
        if kind == "declare":
            return [
                self.slack.command(
                    f"declare low history load {next(self.numbers)}",
                    user=drive.DECLARER,
                    channel=DECLARE_CHANNEL,
                )
                for _ in range(count)
            ]
        bodies = [
            app_home_opened_event_body(f"UH{self.name[0].upper()}{next(self.numbers):07d}")
            for _ in range(count)
        ]
        return [(body, sign(body, SECRET)) for body in bodies]

    async def home(self, count: int, concurrency: int) -> list[float]:
        """Open the Home tab `count` times; seconds from sending until views.publish arrived."""
        requests = self.make("home", count)
        users = [_home_user(body) for body, _ in requests]
        sent: dict[str, float] = {}
        queue = iter(zip(users, requests, strict=True))

        async def worker() -> None:
            for user, request in queue:
                sent[user] = time.time()
                await self.slack.send(request)

        mark = len(self.fake.calls)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wanted = set(users)
        deadline = time.monotonic() + 60
        while True:
            published = {
                c.args.get("user_id"): c.at
                for c in self.fake.calls[mark:]
                if c.method == "views.publish" and c.args.get("user_id") in wanted
            }
            if len(published) == len(wanted) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        if len(published) != len(wanted):
            raise RuntimeError(f"{len(wanted) - len(published)} Home tabs never published")
        return [published[user] - sent[user] for user in users]


def _home_user(body: bytes) -> str:
    return json.loads(body)["event"]["user"]


async def _interleave(
    servers: dict[str, Server], traffic: dict[str, Traffic], size: Size
) -> dict[tuple[str, str], list[float]]:
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    names = list(servers)
    rounds = 1 if size.name == "quick" else 4
    for round_number in range(-1, rounds):  # round -1 warms both up, unmeasured
        order = names if round_number % 2 == 0 else names[::-1]
        for kind in KINDS:
            for name in order:
                count = size.concurrency if round_number < 0 else size.batch
                if kind == "home":
                    latencies = await traffic[name].home(count, size.concurrency)
                else:
                    batch = await traffic[name].slack.flood(
                        traffic[name].make(kind, count), size.concurrency
                    )
                    if batch.failures:
                        raise RuntimeError(f"{name} {kind}: {batch.failures[0]}")
                    latencies = batch.latencies
                await servers[name].settle()
                if round_number >= 0:
                    samples[name, kind] += latencies
    return samples


async def measure(size: Size, env: dict[str, str], work: Path, server: str) -> list[Row]:
    """The four kinds on the year database against the empty one, p99 ratio each."""
    count = incidents(size)
    servers: dict[str, Server] = {}
    async with (
        FakeSlack() as fake,
        database.fresh_database(server) as empty_dsn,
        database.fresh_database(server) as year_dsn,
        session(size.concurrency) as http,
    ):
        await migrate(empty_dsn)
        await migrate(year_dsn)
        await fill(empty_dsn, BASELINE)
        started = time.monotonic()
        await fill(year_dsn, count)
        filled_in = time.monotonic() - started
        traffic = {}
        try:
            for name, dsn in (("empty", empty_dsn), ("year", year_dsn)):
                bot_env = env | {
                    "DATABASE_URL": dsn,
                    "SLACK_API_URL": fake.base_url,
                    "ROLLBACK_DATA_DIR": str(work / f"data-{name}"),
                }
                servers[name] = await bot_server(bot_env, work / f"bot-{name}.log").start()
                slack = Slack(servers[name].url, fake.response_url, http)
                traffic[name] = Traffic(name, slack, fake)
                conn = await asyncpg.connect(dsn)
                try:
                    await drive.declare(slack, conn, "low the open one", channel=STATUS_CHANNEL)
                    await drive.outbox_drained(conn)
                finally:
                    await conn.close()
            samples = await _interleave(servers, traffic, size)
        finally:
            for bot in servers.values():
                await bot.stop(signal.SIGKILL)
    rows = []
    for kind in KINDS:
        year, empty = samples["year", kind], samples["empty", kind]
        ratio = percentile(year, 99) / percentile(empty, 99)
        what = "until views.publish" if kind == "home" else "ack"
        rows.append(
            Row(
                f"`{kind}` {what} on {count:,} past incidents, p50 / p99 (n={len(year)})",
                f"{ms(percentile(year, 50))} / {ms(percentile(year, 99))}",
                f"{ms(percentile(empty, 50))} / {ms(percentile(empty, 99))} ({BASELINE} incidents)",
                f"p99 {times(ratio)}",
                f"p99 ≤ {TARGET}×",
                ratio <= TARGET,
            )
        )
    rows.append(Row(f"… writing those {count:,} incidents' rows in SQL", f"{filled_in:.1f} s"))
    return rows
