"""A backup file is read in full once per run, at its start: approval checks size and time.

Swapping a dump's bytes while keeping its size and modification time passes the approval
(which reads no file, so a 1 GB dump doesn't cost a second per click) and is refused by the
run's start, which compares the sha256 before any step runs.
"""

from __future__ import annotations

import asyncio
import os

from tests.e2e.harness import fetch
from tests.e2e.test_runs import (
    CHANNEL,
    DECLARER,
    roll_back,
    start,
    thread_text,
    wait_state,
)


async def test_same_size_and_time_passes_approval_and_is_refused_at_the_start(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    await bot.command("backup", user=DECLARER, channel=CHANNEL, response_url=fake.response_url())
    for _ in range(200):
        rows = await fetch(start_bot.dsn, "select state from runs where kind = 'backup'")
        if rows and rows[0]["state"] == "succeeded":
            break
        await asyncio.sleep(0.1)
    artifact = (await fetch(start_bot.dsn, "select path, size, mtime from artifacts"))[0]
    dump = tmp_path / artifact["path"]
    stat = dump.stat()
    assert abs(stat.st_mtime - artifact["mtime"]) < 1e-3
    dump.write_bytes(b"X" * (stat.st_size - 1) + b"\n")  # other bytes, same size
    os.utime(dump, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the recorded time
    await roll_back(bot, fake, "restore")  # approved: size and time are as recorded
    assert await wait_state(start_bot.dsn, fake, "failed") == "failed"
    await fake.wait_for(lambda f: "sha256 differs" in thread_text(f), timeout=60)
    run = (await fetch(start_bot.dsn, "select id from runs where kind = 'rollback'"))[0]
    steps = await fetch(start_bot.dsn, "select * from step_results where run_id = $1", run["id"])
    assert steps == []  # refused before its first step
    assert not (tmp_path / "ran.log").exists()
