"""`rollback-bot demo` plays the whole incident through the real bot and really restores its
sandbox; what it shows is the conversation, step by step."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg

from actions.runbook import load_runbook
from bot.demo.play import DemoOptions, clean, names, play_demo
from bot.demo.sandbox import files as sandbox_files
from bot.demo.sandbox.build import DEFAULT_RUNBOOK, database_url
from bot.demo.sandbox.services import CACHE_ENV
from bot.demo.stage import BOT_DB, SHOP_DB
from bot.demo.terminal import TerminalView
from bot.demo.transcript import Transcript

COMMS = importlib.util.find_spec("bot.comms.notice") is not None  # the communications work


def full_steps() -> list[str]:
    scenario = next(s for s in load_runbook(DEFAULT_RUNBOOK).scenarios if s.key == "full")
    return [step.name for step in scenario.steps]


def assert_in_order(text: str, *parts: str) -> None:
    position = 0
    for part in parts:
        found = text.find(part, position)
        assert found >= 0, f"{part!r} not found after position {position} in:\n{text}"
        position = found + len(part)


async def count_rows(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
        return {
            t["tablename"]: await conn.fetchval(f'select count(*) from "{t["tablename"]}"')
            for t in tables
        }
    finally:
        await conn.close()


async def test_demo_plays_every_step_refuses_the_declarer_and_restores_the_sandbox(
    pg_server_dsn, tmp_path
):
    suffix = "_" + uuid.uuid4().hex[:6]
    options = DemoOptions(
        data_dir=tmp_path / "data", rows=500, server_dsn=pg_server_dsn, keep=True, suffix=suffix
    )
    transcript = Transcript(names())
    screen = io.StringIO()
    view = TerminalView(transcript, stream=screen, styled_output=False)
    try:
        outcome = await play_demo(options, transcript, view)
        shown = screen.getvalue()
        restored = await count_rows(database_url(pg_server_dsn, SHOP_DB + suffix))
        files = [Path(p.removeprefix("the file ")) for p in outcome.postmortem if "file " in p]
        postmortems = [path.read_text() for path in files if path.is_file()]
    finally:
        view.close()
        assert await clean(options) == 0

    steps = full_steps()
    assert_in_order(
        shown,
        f"It touches nothing outside {options.root}",
        "━━ 1 · Before the integration",
        "@alice in #ecom-ops:  /rollback backup",
        "Backup completed",
        "━━ 2 · The WMS integration fails",
        "orders 500 → 450",
        "━━ 3 · @alice declares a CRITICAL incident",
        "@alice in #ecom-ops:  /rollback declare critical full WMS sync is corrupting orders",
        "🔴 RB-1 · CRITICAL · waiting for rollback approval",
        f"1. {steps[0]}",
        "[Approve] [Reject]",
        "━━ 4 · @alice tries to approve her own rollback",
        "@alice in #ecom-ops › thread “RB-1 CRITICAL: WMS sync is corrupting orders”:  "
        "clicks [Approve], then [Approve and run]",
        "rollback-bot in #ecom-ops (only visible to @alice):",
        "a second person must approve",
        "━━ 5 · @bob approves",
        "@bob in #ecom-ops › thread",
        "✅ Approved by @bob",
        *(f"✅ Step {n}/{len(steps)}: {name} — succeeded" for n, name in enumerate(steps, 1)),
        "Verification: 5/5 checks passed",
        "Rollback finished",
        "━━ Summary",
        "Rollback `full`: succeeded; verification: 5/5 checks passed",
        "The declarer's own approval: refused",
        "Identical to before the failure: database yes, project files yes",
        "rollback-bot demo --clean",
    )
    assert "⏳ Step 1/" in shown and "↻ edited in place:" in shown  # steps change in place
    assert outcome.refused and outcome.restored
    assert outcome.rollback_state == "succeeded"
    assert outcome.counts["before"] == outcome.counts["after"] == restored
    assert outcome.counts["broken"] != outcome.counts["before"]
    assert outcome.counts["broken"]["orders"] < outcome.counts["before"]["orders"] == 500
    assert "wms_inventory_transaction" not in outcome.counts["broken"]
    for secret in sandbox_files.env_secrets(SHOP_DB + suffix).values():
        assert secret not in shown
    if COMMS:
        assert outcome.notice_posted
        assert "rollback-bot in #announcements:" in shown
        assert postmortems and all("RB-1" in text for text in postmortems)
    assert sorted(os.listdir(tmp_path / "data")) == []  # --clean left nothing behind


async def test_rollback_bot_demo_runs_on_the_embedded_server_and_cleans_up():
    # Not under pytest's tmp_path: as root, pgserver runs PostgreSQL as its own user, which must
    # reach the data directory, and every pytest session makes its temporary root private again.
    base = Path(tempfile.mkdtemp(prefix="rollback-bot-demo-test-"))
    base.chmod(0o755)
    try:
        await _demo_on_the_embedded_server(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def _demo_on_the_embedded_server(base: Path) -> None:
    data = base / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ROLLBACK_", "PG")) and k != "DATABASE_URL"
    }
    env.update(ROLLBACK_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    env[CACHE_ENV] = os.environ[CACHE_ENV]  # the session's pm2 install (tests/e2e/conftest.py)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "demo",
        "--rows",
        "300",
        cwd=str(base),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 170)
    shown = out.decode()
    assert process.returncode == 0, err.decode()[-3000:]
    assert "\x1b[" not in shown  # not a terminal: plain text
    assert "its own PostgreSQL in" in shown
    assert "Verification: 5/5 checks passed" in shown
    assert "npm, npx and pm2 run for real" in shown
    assert "Stand-ins: Prisma's CLI (its engines download from a host" in shown
    assert "Identical to before the failure: database yes, project files yes" in shown
    took = re.search(r"The demo took (\d+)s", shown)
    assert took and int(took.group(1)) < 120
    assert (data / "demo-postgres").is_dir()  # the demo's own server, under ROLLBACK_DATA_DIR
    assert not (data / "postgres").exists()  # the bot's own embedded cluster is untouched
    demo = data / "demo"
    assert not (demo / "sandbox").exists() and not (demo / "bot").exists()
    assert (demo / "transcript.txt").read_text().strip() == shown.strip()
    assert sorted(os.listdir(data)) == ["demo", "demo-postgres"]
    assert BOT_DB in shown
