"""Memory: the bot's RSS after many mixed requests, then after each of several runs."""

from __future__ import annotations

import asyncpg

from benchmarks import drive
from benchmarks.acks import KINDS, AckBenchmark
from benchmarks.report import Row, times
from benchmarks.sizes import Size

LIMIT_MIB = 120.0
NOISE_MIB = 2.0  # RSS of an idle CPython process wanders by about a MiB between reads
RUN_CHANNEL = "CBRUNS001"


async def after_requests(acks: AckBenchmark, size: Size) -> list[Row]:
    """Top the ack benchmark's requests up to `size.mixed_requests`, then read both RSS."""
    while acks.sent_to_bot < size.mixed_requests:
        for kind in KINDS:
            await acks.batch("bot", kind, size.batch, size.concurrency)
    bot, bare = acks.servers["bot"].rss_mib(), acks.servers["bare"].rss_mib()
    return [
        Row(
            f"Bot RSS after {acks.sent_to_bot} mixed requests",
            f"{bot:.1f} MiB",
            f"{bare:.1f} MiB (bare app)",
            times(bot / bare),
            f"≤ {LIMIT_MIB:g} MiB",
            bot <= LIMIT_MIB,
        )
    ]


async def after_runs(acks: AckBenchmark, conn: asyncpg.Connection, size: Size) -> list[Row]:
    """Roll back (and resolve) `size.memory_runs` times; RSS at half-way and at the end."""
    bot = acks.servers["bot"]
    slack = acks.traffic["bot"].slack
    readings = []
    for _ in range(size.memory_runs):
        run = await drive.roll_back(slack, conn, scenario="quick", channel=RUN_CHANNEL)
        if run["state"] != "succeeded":
            raise RuntimeError(f"run {run['id']} ended {run['state']}")
        await drive.resolve(slack, conn, incident_id=run["incident_id"], channel=RUN_CHANNEL)
        await bot.settle()
        readings.append(bot.rss_mib())
    half = size.memory_runs // 2
    growth = readings[-1] - readings[half - 1]
    return [
        Row(
            f"Bot RSS after {size.memory_runs} more runs",
            f"{readings[-1]:.1f} MiB",
            target=f"≤ {LIMIT_MIB:g} MiB",
            passed=readings[-1] <= LIMIT_MIB,
        ),
        Row(
            f"Bot RSS growth, run {half} → run {size.memory_runs}",
            f"{growth:+.1f} MiB",
            f"{readings[half - 1]:.1f} MiB at run {half}",
            target=f"≤ {NOISE_MIB:g} MiB (noise)",
            passed=growth <= NOISE_MIB,
        ),
    ]
