"""Every benchmark in one run, each next to a baseline measured in the same run."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import aiohttp
import asyncpg

from benchmarks import acks, database, flood, memory, real_size, runs, startup, year
from benchmarks.drive import write_scenarios
from benchmarks.load import HookPool, Slack, session
from benchmarks.procs import Server, bare_server, bot_server, fake_server
from benchmarks.report import Row
from benchmarks.sizes import Size
from tests.e2e.harness import SECRET, TOKEN
from tests.fake_slack.server import FakeSlack

HOOKS = 20_000
# `--size real`: the long sections, each `(work, server) -> rows`, run in this order.
REAL_SECTIONS = [real_size.measure]


def environment(*, api_url: str, runbook: Path, data_dir: Path, dsn: str | None) -> dict:
    """A server's environment: the bot's defaults (1 s between posts), nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=api_url,
        ROLLBACK_RUNBOOK=str(runbook),
        ROLLBACK_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
    )
    if dsn:
        env["DATABASE_URL"] = dsn
    return env


async def run_benchmarks(size: Size, *, work: Path, server: str | None = None) -> list[Row]:
    """All rows of the table; `work` holds runbooks, workdirs and every process's log."""
    server = server or database.server_dsn()
    rows: list[Row] = []
    if size.name == "real":  # the long ones first, then everything the default run measures
        for section in REAL_SECTIONS:
            rows += await section(work, server)
    runbook = write_scenarios(
        work / "runbook.toml",
        workdir=work,
        scenarios={
            "quick": ["echo one", "echo two", "echo three"],
            **runs.scenarios(size),
            **flood.SCENARIOS,
        },
    )
    rows += await _with_bare_app(size, work, server, runbook)
    rows += await _runs(size, work, server, runbook)
    env = environment(api_url="", runbook=runbook, data_dir=work / "data", dsn=None)
    rows += await year.measure(size, env, work, server)
    return rows


async def _with_bare_app(size: Size, work: Path, server: str, runbook: Path) -> list[Row]:
    """Start-up, ack latency and memory: the fake Slack, the bare app and a bot as processes."""
    fake = fake_server(dict(os.environ), work / "fake-slack.log", hooks=HOOKS)
    servers: list[Server] = [fake]
    try:
        await fake.start()
        env = environment(
            api_url=fake.url + "/api/", runbook=runbook, data_dir=work / "data", dsn=None
        )
        bare = bare_server(env, work / "bare-app.log")
        servers.append(bare)
        await bare.start()
        rows = await startup.measure(env, work / "startup-data", work, bare.ready_after)
        async with (
            database.fresh_database(server) as dsn,
            session(size.burst_concurrency) as http,
        ):
            bot = bot_server(env | {"DATABASE_URL": dsn}, work / "bot-acks.log")
            servers.append(bot)
            await bot.start()
            conn = await asyncpg.connect(dsn)
            try:
                rows += await _acks_and_memory(size, bot, bare, fake, http, conn)
            finally:
                await conn.close()
                await bot.stop(signal.SIGKILL)  # its database is dropped next; nothing owed
        return rows
    finally:
        for process in reversed(servers):
            with contextlib.suppress(ProcessLookupError):
                await process.stop(signal.SIGKILL)


async def _acks_and_memory(
    size: Size,
    bot: Server,
    bare: Server,
    fake: Server,
    http: aiohttp.ClientSession,
    conn: asyncpg.Connection,
) -> list[Row]:
    """Ack latency on both servers, then the bot's RSS after requests and after runs."""
    hooks = HookPool(fake.url, HOOKS)
    bot_slack, bare_slack = Slack(bot.url, hooks, http), Slack(bare.url, hooks, http)
    approval_id = await acks.prepare(bot_slack, conn)
    benchmark = acks.AckBenchmark(
        servers={"bot": bot, "bare": bare},
        traffic={
            "bot": acks.Traffic(bot_slack, approval_id),
            "bare": acks.Traffic(bare_slack, approval_id),
        },
    )
    await benchmark.run(size)
    rows = benchmark.rows(size)
    rows += await memory.after_requests(benchmark, size)
    rows += await memory.after_runs(benchmark, conn, size)
    rows += await flood.measure(benchmark, conn, size)
    for failure in benchmark.failures[:10]:
        print(f"not acked: {failure}")
    return rows


async def _runs(size: Size, work: Path, server: str, runbook: Path) -> list[Row]:
    """Slack calls per step (Slack's tiers enforced) and wall time against bash."""
    async with (
        FakeSlack() as fake,
        database.fresh_database(server) as dsn,
        session(10) as http,
    ):
        fake.enforce_rate_limits = True
        env = environment(api_url=fake.base_url, runbook=runbook, data_dir=work / "data", dsn=dsn)
        bot = bot_server(env, work / "bot-runs.log")
        await bot.start()
        conn = await asyncpg.connect(dsn)
        try:
            slack = Slack(bot.url, fake.response_url, http)
            rows = await runs.calls_per_step(fake, slack, conn, size)
            rows += await runs.overhead(slack, conn, work, size)
        finally:
            await conn.close()
            await bot.stop(signal.SIGKILL)
        return rows
