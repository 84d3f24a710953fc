"""Runs: Slack calls per step with Slack's rate limits enforced; wall time against plain bash."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from pathlib import Path

import asyncpg

from benchmarks import drive
from benchmarks.load import Slack
from benchmarks.report import Row, ms, times
from benchmarks.sizes import Size
from tests.fake_slack.server import FakeSlack

CALLS_PER_STEP = 2.5
RATIO = 1.05
FAST_CHANNEL, TIMED_CHANNEL = "CBFAST001", "CBTIMED01"


def scenarios(size: Size) -> dict[str, list[str]]:
    """The runbook's scenarios: fast echo steps, `sleep 1` steps, `true` steps."""
    return {
        "fast": [f"echo {n}" for n in range(1, size.fast_steps + 1)],
        "sleepy": ["sleep 1"] * size.sleep_steps,
        "trues": ["true"] * size.true_steps,
    }


async def calls_per_step(fake: FakeSlack, slack: Slack, conn: asyncpg.Connection, size: Size):
    """Web API calls from Approve until the thread is complete, per step; 429s meanwhile."""
    incident = await drive.declare(slack, conn, "critical fast benchmark", channel=FAST_CHANNEL)
    approval = await drive.poll(
        conn, "select id from approvals where incident_id = $1", incident["id"]
    )
    await drive.outbox_drained(conn)
    mark = len(fake.calls)
    run = await drive.approve(slack, conn, approval_id=approval["id"], channel=FAST_CHANNEL)
    if run["state"] != "succeeded":
        raise RuntimeError(f"the {size.fast_steps}-step run ended {run['state']}")
    await drive.outbox_drained(conn)
    caught_up = time.time() - run["ended_at"].timestamp()
    calls = fake.calls[mark:]
    limited = sum(1 for call in fake.calls if call.status == 429)
    by_method = sorted(Counter(call.method for call in calls).items())
    methods = ", ".join(f"{method} {count}" for method, count in by_method)
    per_step = len(calls) / size.fast_steps
    return [
        Row(
            f"Web API calls per step, {size.fast_steps} fast steps",
            f"{per_step:.2f} ({len(calls)} calls)",
            target=f"≤ {CALLS_PER_STEP}",
            passed=per_step <= CALLS_PER_STEP,
        ),
        Row("… those calls by method", methods),
        Row(
            "HTTP 429s with Slack's tiers enforced (min interval 1 s)",
            str(limited),
            target="0",
            passed=limited == 0,
        ),
        Row(
            "Thread up to date in Slack, after the run ended",
            f"{caught_up:.1f} s",
        ),
    ]


async def bash_seconds(commands: list[str], workdir: Path) -> float:
    """Wall time of the same commands as one plain bash script."""
    script = workdir / "baseline.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(commands) + "\n")
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec("bash", str(script), cwd=workdir)
    if await process.wait() != 0:
        raise RuntimeError(f"the baseline script failed: {script}")
    return time.perf_counter() - started


async def bot_seconds(slack: Slack, conn: asyncpg.Connection, scenario: str) -> float:
    """The run's wall time from the bot's claim to its end (the database's clock)."""
    run = await drive.roll_back(slack, conn, scenario=scenario, channel=TIMED_CHANNEL)
    if run["state"] != "succeeded":
        raise RuntimeError(f"the {scenario} run ended {run['state']}")
    await drive.resolve(slack, conn, incident_id=run["incident_id"], channel=TIMED_CHANNEL)
    return run["seconds"]


async def side_by_side(
    slack: Slack,
    conn: asyncpg.Connection,
    workdir: Path,
    scenario: str,
    commands: list[str],
    reps: int,
) -> tuple[float, float]:
    """Median bot and bash wall times, alternating which of the two goes first."""
    bot, bash = [], []
    for rep in range(reps):
        if rep % 2 == 0:
            bash.append(await bash_seconds(commands, workdir))
            bot.append(await bot_seconds(slack, conn, scenario))
        else:
            bot.append(await bot_seconds(slack, conn, scenario))
            bash.append(await bash_seconds(commands, workdir))
    return statistics.median(bot), statistics.median(bash)


async def overhead(slack: Slack, conn: asyncpg.Connection, workdir: Path, size: Size) -> list[Row]:
    """Wall-time ratio for `sleep 1` steps; the fixed cost per step from `true` steps."""
    steps = scenarios(size)
    bot, bash = await side_by_side(
        slack, conn, workdir, "sleepy", steps["sleepy"], size.overhead_reps
    )
    bot_true, bash_true = await side_by_side(
        slack, conn, workdir, "trues", steps["trues"], size.overhead_reps
    )
    per_step = (bot_true - bash_true) / size.true_steps
    allowed = (RATIO - 1) * 1.0  # seconds per one-second step
    return [
        Row(
            f"Run wall time, {size.sleep_steps} × `sleep 1`",
            f"{bot:.2f} s",
            f"{bash:.2f} s (bash)",
            times(bot / bash),
            f"≤ {RATIO}×",
            bot / bash <= RATIO,
        ),
        Row(
            f"Fixed overhead per step ({size.true_steps} × `true`)",
            ms(per_step),
            f"{bot_true:.2f} s vs {bash_true:.3f} s (bash)",
            target=f"≤ {ms(allowed)} (5% of a 1 s step)",
            passed=per_step <= allowed,
        ),
    ]
