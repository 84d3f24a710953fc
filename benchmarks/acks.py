"""Ack latency: the bot and a bare Bolt app get the same signed requests, batches interleaved."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg

from benchmarks import drive
from benchmarks.load import Request, Slack, percentile
from benchmarks.procs import Server
from benchmarks.report import Row, ms, times
from benchmarks.sizes import Size

KINDS = ("status", "declare", "click")
# p99 against the bare app's: the targets for status and declare; a click's work
# (a read, then an answer) is like declare's, so it gets declare's.
TARGETS = {"status": 1.2, "declare": 1.5, "click": 1.5}
WELL_INSIDE = 1.5  # seconds: half of the three Slack allows
STATUS_CHANNEL, DECLARE_CHANNEL, CLICK_CHANNEL = "CBSTATUS1", "CBDECLARE", "CBCLICK01"
READER, CLICKER = "UREADER01", "UCLICKER1"


@dataclass
class Traffic:
    """Builds each kind of request for one server."""

    slack: Slack
    approval_id: int
    numbers: itertools.count = field(default_factory=itertools.count)

    def make(self, kind: str, count: int) -> list[Request]:
        """`count` requests of `kind`: status, declare (a write) or click (a read)."""
        if kind == "status":
            return [
                self.slack.command("status", user=READER, channel=STATUS_CHANNEL)
                for _ in range(count)
            ]
        if kind == "declare":
            return [
                self.slack.command(
                    f"declare low load test {next(self.numbers)}",
                    user=drive.DECLARER,
                    channel=DECLARE_CHANNEL,
                )
                for _ in range(count)
            ]
        return [
            self.slack.click(user=CLICKER, value=str(self.approval_id), channel=CLICK_CHANNEL)
            for _ in range(count)
        ]


async def prepare(slack: Slack, conn: asyncpg.Connection) -> int:
    """One open incident where status is asked; a decided approval to click; its id."""
    await drive.declare(slack, conn, "low the one open incident here", channel=STATUS_CHANNEL)
    run = await drive.roll_back(slack, conn, scenario="quick", channel=CLICK_CHANNEL)
    return run["approval_id"]


@dataclass
class AckBenchmark:
    """Latencies by (server, kind, concurrency), and every request that was not acked."""

    servers: dict[str, Server]  # "bot" and "bare"
    traffic: dict[str, Traffic]
    samples: dict[tuple[str, str, int], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    failures: list[str] = field(default_factory=list)
    sent_to_bot: int = 0

    async def batch(self, name: str, kind: str, count: int, concurrency: int) -> list[float]:
        """Send one batch to one server, then let it finish its leftover work."""
        result = await self.traffic[name].slack.flood(
            self.traffic[name].make(kind, count), concurrency
        )
        self.failures += [f"{name} {kind}: {failure}" for failure in result.failures]
        if name == "bot":
            self.sent_to_bot += count
        await self.servers[name].settle()
        return result.latencies

    async def run(self, size: Size) -> None:
        """Warm both up, then interleave: each round alternates which server goes first."""
        for name in self.servers:
            for kind in KINDS:
                await self.batch(name, kind, size.concurrency, size.concurrency)
        levels = (
            (size.concurrency, size.rounds, size.batch),
            (size.burst_concurrency, size.burst_rounds, size.burst_batch),
        )
        for concurrency, rounds, count in levels:
            for round_number in range(rounds):
                order = ("bot", "bare") if round_number % 2 == 0 else ("bare", "bot")
                for kind in KINDS:
                    for name in order:
                        latencies = await self.batch(name, kind, count, concurrency)
                        self.samples[name, kind, concurrency] += latencies

    def rows(self, size: Size) -> list[Row]:
        """p50/p99 per kind and concurrency; the slowest ack; requests not acked."""
        rows = []
        for concurrency in (size.concurrency, size.burst_concurrency):
            for kind in KINDS:
                bot = self.samples["bot", kind, concurrency]
                bare = self.samples["bare", kind, concurrency]
                ratio = percentile(bot, 99) / percentile(bare, 99)
                checked = concurrency == size.concurrency
                rows.append(
                    Row(
                        f"Ack `{kind}` @{concurrency} concurrent, p50 / p99 (n={len(bot)})",
                        f"{ms(percentile(bot, 50))} / {ms(percentile(bot, 99))}",
                        f"{ms(percentile(bare, 50))} / {ms(percentile(bare, 99))}",
                        f"p99 {times(ratio)}",
                        f"p99 ≤ {TARGETS[kind]}×" if checked else "—",
                        ratio <= TARGETS[kind] if checked else None,
                    )
                )
            slowest = max(max(self.samples["bot", k, concurrency]) for k in KINDS)
            bare_slowest = max(max(self.samples["bare", k, concurrency]) for k in KINDS)
            rows.append(
                Row(
                    f"Slowest ack @{concurrency} concurrent (all kinds)",
                    ms(slowest),
                    ms(bare_slowest),
                    times(slowest / bare_slowest),
                    f"≤ {WELL_INSIDE:g} s (Slack: 3 s)",
                    slowest <= WELL_INSIDE,
                )
            )
        rows.append(
            Row(
                "Requests not acked with HTTP 200",
                str(len(self.failures)),
                target="0",
                passed=not self.failures,
            )
        )
        return rows
