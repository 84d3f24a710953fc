"""Drive rollbacks as people do (declare CRITICAL, a second person approves) and watch the DB."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.load import Slack
from tests.e2e.harness import write_runbook

DECLARER, APPROVER = "UDECLARE1", "UAPPROVE1"
RUN_ENDS = ("succeeded", "failed", "waiting", "cancelled", "aborted", "interrupted")


async def poll(conn: asyncpg.Connection, query: str, *args: Any, timeout: float = 60.0):
    """The first row `query` returns, polling every 20 ms; TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while (row := await conn.fetchrow(query, *args)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing from {query!r} {args} within {timeout}s")
        await asyncio.sleep(0.02)
    return row


async def outbox_drained(conn: asyncpg.Connection, timeout: float = 300.0) -> None:
    """Wait until the bot owes Slack nothing."""
    await poll(
        conn,
        "select 1 where not exists (select 1 from outbox where done_at is null)",
        timeout=timeout,
    )


async def declare(slack: Slack, conn: asyncpg.Connection, text: str, *, channel: str):
    """`/rollback declare <text>`; the incident row once it is stored."""
    newest = await conn.fetchval("select coalesce(max(id), 0) from incidents")
    await slack.send(slack.command(f"declare {text}", user=DECLARER, channel=channel))
    return await poll(
        conn, "select * from incidents where id > $1 and channel = $2 order by id", newest, channel
    )


async def roll_back(slack: Slack, conn: asyncpg.Connection, *, scenario: str, channel: str):
    """Declare CRITICAL on `scenario`, approve it as a second person; the ended run's row."""
    incident = await declare(slack, conn, f"critical {scenario} benchmark", channel=channel)
    approval = await poll(
        conn,
        "select id from approvals where incident_id = $1 and state = 'pending'",
        incident["id"],
    )
    return await approve(slack, conn, approval_id=approval["id"], channel=channel)


async def approve(slack: Slack, conn: asyncpg.Connection, *, approval_id: int, channel: str):
    """Press Approve as the second person; the run's row once it has ended."""
    await slack.send(slack.click(user=APPROVER, value=str(approval_id), channel=channel))
    return await poll(
        conn,
        "select *, extract(epoch from ended_at - started_at)::float8 as seconds from runs"
        " where approval_id = $1 and state = any($2::text[])",
        approval_id,
        list(RUN_ENDS),
        timeout=600,
    )


async def resolve(slack: Slack, conn: asyncpg.Connection, *, incident_id: int, channel: str):
    """`/rollback resolve RB-<id>`, waiting until it is resolved."""
    await slack.send(slack.command(f"resolve RB-{incident_id}", user=DECLARER, channel=channel))
    await poll(conn, "select 1 from incidents where id = $1 and state = 'resolved'", incident_id)


def write_scenarios(path: Path, *, workdir: Path, scenarios: dict[str, list[str]]) -> Path:
    """A runbook whose scenarios run the given bash commands, one step each."""
    text = ""
    for key, commands in scenarios.items():
        text += f'\n[[scenario]]\nkey = "{key}"\ntitle = "Benchmark {key}"\ntrigger = "benchmark"\n'
        for number, command in enumerate(commands, 1):
            text += f'  [[scenario.step]]\n  name = "{key} {number}"\n  run = "{command}"\n'
    return write_runbook(path, workdir=workdir, scenarios=text)
