"""Acks while a step floods output: `/rollback status` during `seq 1000000` steps vs idle.

The same bot, the same requests, interleaved: each round sends one idle batch and runs one
flood rollback with status requests at 20 concurrent from its claim to its end (which goes
first flips every round). `seq 1000000` takes well under a second through the bot, so the
flood scenario is a few such steps back to back, to give the window enough requests. While
it floods the bot's RSS is read every 50 ms; afterwards every step's stored tail and the
step message the bot delivered to Slack must end with seq's last lines.
"""

from __future__ import annotations

import asyncio
import json

import asyncpg

from benchmarks import drive
from benchmarks.acks import READER, STATUS_CHANNEL, AckBenchmark
from benchmarks.load import percentile
from benchmarks.memory import LIMIT_MIB
from benchmarks.report import Row, ms, times
from benchmarks.sizes import Size

LINES = 1_000_000
STEPS = 4  # `seq 1000000` steps per flood run
TARGET = 1.5  # status p99 during the flood against the same bot's idle p99
FLOOD_CHANNEL = "CBFLOOD01"
TAIL = "\n".join(str(n) for n in range(LINES - 19, LINES + 1))  # the bot keeps 20 lines
SCENARIOS = {"flood": [f"seq {LINES}"] * STEPS}


def rounds(size: Size) -> int:
    """Flood runs (and idle batches): one for the smoke test, four otherwise."""
    return 1 if size.name == "quick" else 4


async def _channel_drained(conn: asyncpg.Connection) -> None:
    """Wait until the bot owes Slack nothing in the flood channel (the ack benchmark's
    declares are still being posted, one a second, in theirs)."""
    await drive.poll(
        conn,
        "select 1 where not exists (select 1 from outbox o join messages m"
        " on m.key = o.message_key where o.done_at is null and m.channel = $1)",
        FLOOD_CHANNEL,
        timeout=300,
    )


async def _status_until(acks: AckBenchmark, over: asyncio.Event, concurrency: int):
    """Status requests with `concurrency` in flight until `over` is set; their latencies."""
    slack = acks.traffic["bot"].slack
    latencies: list[float] = []

    async def worker() -> None:
        while not over.is_set():
            request = slack.command("status", user=READER, channel=STATUS_CHANNEL)
            try:
                latencies.append(await slack.send(request))
            except Exception as error:  # counted with the ack benchmark's failures
                acks.failures.append(f"bot status during flood: {error}")
            acks.sent_to_bot += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _flood_run(acks: AckBenchmark, conn: asyncpg.Connection, concurrency: int):
    """One flood rollback with status traffic over it: (latencies, peak RSS, run row)."""
    bot, slack = acks.servers["bot"], acks.traffic["bot"].slack
    incident = await drive.declare(slack, conn, "critical flood benchmark", channel=FLOOD_CHANNEL)
    approval = await drive.poll(
        conn,
        "select id from approvals where incident_id = $1 and state = 'pending'",
        incident["id"],
    )
    await bot.settle()
    peak = bot.rss_mib()
    click = slack.click(user=drive.APPROVER, value=str(approval["id"]), channel=FLOOD_CHANNEL)
    await slack.send(click)
    run = await drive.poll(
        conn,
        "select * from runs where approval_id = $1 and state <> 'queued'",
        approval["id"],
    )
    over = asyncio.Event()
    traffic = asyncio.create_task(_status_until(acks, over, concurrency))
    while True:
        peak = max(peak, bot.rss_mib())
        ended = await conn.fetchrow(
            "select * from runs where id = $1 and state = any($2::text[])",
            run["id"],
            list(drive.RUN_ENDS),
        )
        if ended is not None:
            break
        await asyncio.sleep(0.05)
    over.set()
    latencies = await traffic
    await drive.resolve(slack, conn, incident_id=incident["id"], channel=FLOOD_CHANNEL)
    await bot.settle()
    return latencies, max(peak, bot.rss_mib()), ended


async def _tail_problems(conn: asyncpg.Connection, run) -> list[str]:
    """What is wrong with the run's stored tails and its delivered step messages (nothing: [])."""
    problems = [] if run["state"] == "succeeded" else [f"run {run['id']} ended {run['state']}"]
    steps = await conn.fetch(
        "select step_index, status, output_tail from step_results where run_id = $1 order by id",
        run["id"],
    )
    if len(steps) != STEPS:
        problems.append(f"run {run['id']} stored {len(steps)} steps, not {STEPS}")
    for step in steps:
        if step["output_tail"] != TAIL:
            problems.append(f"step {step['step_index']} stored tail {step['output_tail'][-40:]!r}")
        delivered = await conn.fetchrow(
            "select payload, outcome from outbox where message_key = $1 order by id desc limit 1",
            f"run/{run['id']}/step/{step['step_index']}/1",
        )
        payload = delivered["payload"] if delivered else "{}"
        shown = json.dumps(json.loads(payload) if isinstance(payload, str) else payload)
        posted = delivered is not None and delivered["outcome"] == "sent"
        if not posted or json.dumps(TAIL)[1:-1] not in shown:
            problems.append(f"step {step['step_index']} message to Slack lacks seq's last lines")
    return problems


async def measure(acks: AckBenchmark, conn: asyncpg.Connection, size: Size) -> list[Row]:
    """Status p99 during floods against idle (same bot), peak RSS, and the tails' truth."""
    bot = acks.servers["bot"]
    idle: list[float] = []
    flooded: list[float] = []
    peak, ended = 0.0, []
    for number in range(rounds(size)):
        for phase in ("idle", "flood") if number % 2 == 0 else ("flood", "idle"):
            if phase == "idle":
                idle += await acks.batch("bot", "status", size.batch * 3, size.concurrency)
                continue
            latencies, rss, run = await _flood_run(acks, conn, size.concurrency)
            flooded += latencies
            peak = max(peak, rss)
            ended.append(run)
    await _channel_drained(conn)  # the step messages are paced, one a second
    problems = [problem for run in ended for problem in await _tail_problems(conn, run)]
    await bot.settle()
    after = bot.rss_mib()
    ratio = percentile(flooded, 99) / percentile(idle, 99)
    for problem in problems[:10]:
        print(f"flood: {problem}")
    return [
        Row(
            f"Ack `status` @{size.concurrency} during {STEPS} × `seq {LINES}` steps,"
            f" p50 / p99 (n={len(flooded)})",
            f"{ms(percentile(flooded, 50))} / {ms(percentile(flooded, 99))}",
            f"{ms(percentile(idle, 50))} / {ms(percentile(idle, 99))} (idle, n={len(idle)})",
            f"p99 {times(ratio)}",
            f"p99 ≤ {TARGET}×",
            ratio <= TARGET,
        ),
        Row(
            "Bot RSS during / after the floods (peak, 50 ms reads)",
            f"{peak:.1f} MiB / {after:.1f} MiB",
            target=f"≤ {LIMIT_MIB:g} MiB",
            passed=max(peak, after) <= LIMIT_MIB,
        ),
        Row(
            f"Flood steps' tails stored and posted = seq's last 20 lines ({len(ended)} runs)",
            "right" if not problems else f"{len(problems)} wrong",
            target="right",
            passed=not problems,
        ),
    ]
