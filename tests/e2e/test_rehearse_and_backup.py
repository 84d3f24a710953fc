"""Rehearsal (Slack and command line) and the command-line backup, on the sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from tests.e2e.harness import REPO, fetch

CHANNEL = "CREHEARSE"
USER = "UOPS00001"


def cli(sandbox, dsn: str, *args: str) -> subprocess.CompletedProcess:
    """Run `rollback-bot ARGS` the way an operator would, against the sandbox's runbook."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))}
    env.update(sandbox.env)
    env.update(
        DATABASE_URL=dsn,
        ROLLBACK_RUNBOOK=str(sandbox.runbook_path),
        ROLLBACK_DATA_DIR=str(sandbox.root / "data"),
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


async def test_command_line_rehearsal_fails_without_a_backup_and_passes_after_one(
    fresh_database, sandbox
):
    sandbox.write_runbook()
    before = cli(sandbox, fresh_database, "rehearse", "full")
    assert before.returncode == 1
    assert "No completed backup exists" in before.stdout
    assert "dropdb" in before.stdout  # every step's command, rendered
    backup = cli(sandbox, fresh_database, "backup")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "backup completed" in backup.stdout
    artifacts = await fetch(fresh_database, "select name, path, size, sha256 from artifacts")
    assert {"db_dump", "env_file"} <= {a["name"] for a in artifacts}
    after = cli(sandbox, fresh_database, "rehearse", "full")
    assert after.returncode == 0, after.stdout
    assert "Result: PASSED" in after.stdout
    dump = next(a for a in artifacts if a["name"] == "db_dump")
    assert f"backup/{dump['path'].split('/')[1]}/db_backup_" in after.stdout  # its own folder
    assert dump["size"] > 0
    passed = await fetch(
        fresh_database, "select detail from events where kind = 'rehearsal_passed'"
    )
    assert json.loads(passed[0]["detail"]) == {"scenario": "full"}
    unknown = cli(sandbox, fresh_database, "rehearse", "nope")
    assert unknown.returncode == 1 and "no scenario 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


async def test_slack_rehearsal_names_missing_programs_and_runs_nothing(start_bot, fake, sandbox):
    runbook = sandbox.write_runbook()
    env = {**sandbox.env, "PATH": "/usr/bin:/bin"}  # the sandbox's npm, pm2 … are not on PATH
    bot = await start_bot(runbook=runbook, env=env)
    before = sandbox.snapshot()
    answer = await bot.ask("rehearse database", user=USER, channel=CHANNEL)
    assert answer["response_type"] == "ephemeral"
    assert "Nothing was run" in answer["text"]
    assert "not on PATH: pm2" in answer["text"]
    assert "&lt;no backup of db_dump&gt;" in answer["text"]
    assert "problems found" in answer["text"]
    await asyncio.sleep(0.5)
    assert sandbox.snapshot() == before
    assert await fetch(start_bot.dsn, "select * from runs") == []
