"""Command-line backups never block later ones, `rollback-bot runs` / `abort`, and an orphan
that can't be reported (issue 12, paths 4 and 5)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
import textwrap

import asyncpg

from tests.e2e.harness import fetch, text_of
from tests.e2e.test_cli import clean_env, run_bot_async
from tests.e2e.test_one_operation import answer, wait_rows
from tests.e2e.test_runs import CHANNEL

BACKUP = textwrap.dedent("""
    [backup]
      [[backup.step]]
      name = "Dump"
      run = "test -f slow && { echo $$ > step.pid; sleep 60; }; test -f fail && exit 3; echo ok > {{ artifact }}"
      artifact = { name = "dump", path = "dump_{{ ts }}.txt" }

    [[scenario]]
    key = "quick"
    title = "Quick"
    trigger = "test"
      [[scenario.step]]
      name = "Quick"
      run = "true"
""")  # noqa: E501


def settings(start_bot, tmp_path, **extra) -> dict[str, str]:
    return {
        "ROLLBACK_RUNBOOK": str(tmp_path / "runbook.toml"),
        "DATABASE_URL": start_bot.dsn,
        "ROLLBACK_DATA_DIR": str(tmp_path / "data"),
        **extra,
    }


async def cli(start_bot, tmp_path, *args, **extra) -> tuple[int, str, str]:
    return await run_bot_async(*args, cwd=tmp_path, **settings(start_bot, tmp_path, **extra))


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


async def test_cli_backups_failed_or_interrupted_never_block_the_next_and_can_be_aborted(
    start_bot, fake, tmp_path
):
    bot = await start_bot(scenarios=BACKUP, workdir=tmp_path)
    dsn = start_bot.dsn
    (tmp_path / "fail").write_text("")
    for _ in (1, 2):  # a failed CLI backup ends as failed: the next one runs
        code, out, _ = await cli(start_bot, tmp_path, "backup")
        assert code == 1 and "backup NOT completed (failed)" in out, out
        assert "`rollback-bot backup` again" in out
    rows = await fetch(dsn, "select state from runs order by id")
    assert [r["state"] for r in rows] == ["failed", "failed"]
    (tmp_path / "fail").unlink()

    (tmp_path / "slow").write_text("")  # a CLI backup whose process dies mid-step
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "backup", cwd=tmp_path,
        env=clean_env(**settings(start_bot, tmp_path)),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    pid_file = tmp_path / "step.pid"
    try:
        for _ in range(600):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            await asyncio.sleep(0.1)
        process.kill()
        await process.wait()
    finally:
        with contextlib.suppress(Exception):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    run_id = (await fetch(dsn, "select id from runs order by id desc limit 1"))[0]["id"]

    code, _, err = await cli(start_bot, tmp_path, "backup")
    line = one_line(err)
    assert code == 1 and "no backup started" in line and f"rollback-bot abort {run_id}" in line
    assert "command line" in line and "UniqueViolation" not in line

    text = await answer(bot, fake, "backup")  # Slack is pointed at the CLI, not at a thread
    assert "from the command line" in text and f"rollback-bot abort {run_id}" in text, text
    assert "abort it there" not in text

    code, _, err = await cli(start_bot, tmp_path, "abort", str(run_id))
    line = one_line(err)  # its lease (30 s) still runs: refused, saying why and when
    assert code == 1 and "is running in process" in line and "lease" in line, line
    assert (await fetch(dsn, "select state from runs where id = $1", run_id))[0][0] == "running"

    # A stand-in for the lease running out: the clock is the database's, moved by SQL.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "update runs set lease_until = now() - interval '1 minute' where id = $1", run_id
        )
    finally:
        await conn.close()
    code, out, err = await cli(start_bot, tmp_path, "runs")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["ID", "KIND", "INCIDENT", "STATE"]
    mine = next(r for r in rows if r.split()[0] == str(run_id))
    assert mine.split()[1] == "backup" and "Dump (" in mine, mine
    assert mine.split()[3] in ("running?", "interrupted"), mine

    code, out, err = await cli(start_bot, tmp_path, "abort", str(run_id))
    assert code == 0 and f"aborted run {run_id}" in out, (out, err)
    event = await fetch(dsn, "select actor from events where run_id = $1 and kind = 'run_abort'",
                        run_id)  # fmt: skip
    assert [e["actor"] for e in event] == [f"cli:{getpass.getuser()}"]

    (tmp_path / "slow").unlink()
    code, out, _ = await cli(start_bot, tmp_path, "backup")
    assert code == 0 and "backup completed" in out, out
    for bad in ("x1", "-3", ""):
        code, _, err = await cli(start_bot, tmp_path, "abort", bad)
        assert code != 0 and "Traceback" not in err
    code, _, err = await cli(start_bot, tmp_path, "abort", "999")
    assert code == 1 and "there is no run 999" in one_line(err)


async def test_an_orphan_that_cannot_be_reported_is_logged_once_and_blocks_nothing_for_good(
    start_bot, fake, tmp_path
):
    bot = await start_bot(scenarios=BACKUP, workdir=tmp_path)
    dsn = start_bot.dsn
    conn = await asyncpg.connect(dsn)
    try:  # a run left by a dead process, whose incident's thread root is gone (a bad row)
        incident = await conn.fetchval(
            "insert into incidents (channel, severity, scenario, state, declared_by)"
            " values ($1, 'critical', 'quick', 'rolling_back', 'UDECLARE1') returning id",
            CHANNEL,
        )
        bad = await conn.fetchval(
            "insert into runs (kind, incident_id, channel, scenario, state, requested_by, ts,"
            " total_steps, owner, lease_until, started_at) values ('rollback', $1, $2, 'quick',"
            " 'running', 'UAPPROVE1', '20260101_000000', 1, 'gone',"
            " now() - interval '1 minute', now() - interval '2 minutes') returning id",
            incident,
            CHANNEL,
        )
    finally:
        await conn.close()
    await wait_rows(dsn, "select 1 from runs where id = $1 and state = 'interrupted'", bad)
    events = await fetch(dsn, "select detail from events where run_id = $1", bad)
    assert [json.loads(e["detail"])["reported"] for e in events] == [False]

    text = await answer(bot, fake, "backup")  # held behind it, and told which
    assert "Backup queued" in text, text
    await fake.wait_for(lambda f: any(
        f"RB-{incident}'s rollback (run {bad}, interrupted" in text_of(c.args)
        for c in f.calls_to("chat.postMessage")
    ))  # fmt: skip
    code, _, err = await run_bot_async(
        "abort", str(bad), cwd=tmp_path,
        ROLLBACK_RUNBOOK=str(tmp_path / "runbook.toml"), DATABASE_URL=dsn,
        ROLLBACK_DATA_DIR=str(tmp_path / "data"),
    )  # fmt: skip
    assert code == 0, err
    await wait_rows(dsn, "select 1 from runs where kind = 'backup' and state = 'succeeded'")
    rows = await fetch(dsn, "select state from incidents where id = $1", incident)
    assert rows[0]["state"] == "rollback_failed"  # a person can resolve it from here
    assert bot.logs().count("could not be reported in its thread") == 1
