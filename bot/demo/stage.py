"""The demo's stage: the embedded PostgreSQL, a sandbox, the Slack stand-in and the real bot.

Everything lives under `ROLLBACK_DATA_DIR/demo/` and in two databases of the demo's own
(SHOP_DB, BOT_DB); the bot runs as `python -m bot serve --http` on 127.0.0.1, with the
sandbox's environment, talking to the stand-in instead of Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

from bot.demo.sandbox.build import Sandbox, build_sandbox, database_url
from bot.demo.standin import FakeSlack

CHANNEL, NOTICE_CHANNEL = "CDEMOOPS01", "CDEMONEWS01"
ALICE, BOB, DANA, PRIYA = "UDEMOALICE", "UDEMOBOB01", "UDEMODANA1", "UDEMOPRIYA"
PEOPLE = {ALICE: "alice", BOB: "bob", DANA: "dana", PRIYA: "priya"}
REAL_NAMES = {
    ALICE: "Alice (on call)",
    BOB: "Bob (DevOps lead)",
    DANA: "Dana (database admin)",
    PRIYA: "Priya (project manager)",
}
CONTACTS = {"database_admin": DANA, "devops_lead": BOB, "project_manager": PRIYA, "on_call": ALICE}
CHANNEL_NAMES = {CHANNEL: "ecom-ops", NOTICE_CHANNEL: "announcements"}
SHOP_DB, BOT_DB = "ecom_os_demo", "rollback_bot_demo"
MARKER = ".rollback-bot-demo"  # a demo directory without it is not ours to delete
TOKEN = "xoxb-demo-token"
HEALTH_TIMEOUT = 60.0


class DemoError(Exception):
    """The demo can't go on; str() says why and what to do."""


@dataclass
class Stage:
    """What a running demo holds."""

    root: Path
    server_dsn: str
    sandbox: Sandbox
    fake: FakeSlack
    db: asyncpg.Connection  # to the bot's database: run states, owed messages
    bot_url: str
    secret: str
    log_path: Path
    shop_db: str
    bot_db: str


DEMO_CLUSTER = "demo-postgres"  # the demo's own PostgreSQL: never the bot's `postgres` one


def embedded_server_dsn(data_dir: Path) -> str:
    """Start (or reuse) the demo's own embedded PostgreSQL under data_dir; its server DSN."""
    import pgserver

    pgdata = data_dir / DEMO_CLUSTER
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    embedded_server_dsn.server = server  # keep the handle for the life of the process
    return server.get_uri()


def prepare_root(root: Path) -> None:
    """An empty demo directory; a previous demo's is emptied, anything else is refused."""
    if root.exists() and any(root.iterdir()):
        if not (root / MARKER).exists():
            raise DemoError(f"{root} exists and was not made by the demo; move it away first.")
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(
        "made by `rollback-bot demo`; `rollback-bot demo --clean` removes it\n"
    )


async def recreate_database(server_dsn: str, name: str, *, create: bool = True) -> None:
    """Drop the demo's database `name` if it exists (and create it afresh)."""
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
        if create:
            await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()


def bot_environment(stage_env: dict[str, str], **settings: str) -> dict[str, str]:
    """The bot's environment: ours without Slack/database settings, the sandbox's, the demo's."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "ROLLBACK_", "PG")) and k != "DATABASE_URL"
    }
    source = str(Path(__file__).resolve().parents[2])  # `python -m bot` works from anywhere
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
    return {**inherited, **stage_env, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **settings}


async def start_standin() -> FakeSlack:
    """The Slack stand-in, knowing the demo's people."""
    fake = FakeSlack()
    await fake.start()
    fake.tokens.add(TOKEN)
    for user, name in PEOPLE.items():
        real = REAL_NAMES[user]
        fake.users[user] = {
            "name": name,
            "real_name": real,
            "profile": {"real_name": real, "display_name": name},
        }
    return fake


async def start_bot(env: dict[str, str], cwd: Path, log_path: Path, port: int):
    """`python -m bot serve --http` on 127.0.0.1:port, once /healthz answers 200."""
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            cwd=str(cwd),
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + HEALTH_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise DemoError(f"the bot stopped at start-up; its log: {log_path}")
            with contextlib.suppress(aiohttp.ClientError, ValueError):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    # Only our process counts: another one may hold the port if ours couldn't
                    # bind it (then ours exits, and the loop above says so).
                    if response.status == 200 and (await response.json()).get("pid") == process.pid:
                        return process
            await asyncio.sleep(0.1)
    process.kill()
    raise DemoError(f"the bot did not become healthy in {HEALTH_TIMEOUT:.0f}s; log: {log_path}")


async def stop_bot(process) -> None:
    """SIGTERM, as a platform would; the bot delivers what it owes, then exits."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def staged(
    *,
    root: Path,
    server_dsn: str,
    rows: int,
    keep: bool,
    suffix: str = "",
    pace: float = 0.0,
    tools_cache: Path | None = None,
) -> AsyncIterator[Stage]:
    """Build everything, start the bot; on exit stop it all and, unless `keep`, delete it."""
    shop_db, bot_db = SHOP_DB + suffix, BOT_DB + suffix
    prepare_root(root)
    await recreate_database(server_dsn, bot_db)
    sandbox = await asyncio.to_thread(
        build_sandbox,
        root / "sandbox",
        server_dsn=server_dsn,
        db_name=shop_db,
        rows=rows,
        tools_cache=tools_cache,
    )
    fake = process = db = None
    try:
        await asyncio.to_thread(sandbox.start_app)
        runbook = sandbox.write_runbook(notice_channels=[NOTICE_CHANNEL], contacts=CONTACTS)
        fake = await start_standin()
        secret, port = secrets.token_hex(16), _free_port()
        env = bot_environment(
            sandbox.env,
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_SIGNING_SECRET=secret,
            SLACK_API_URL=fake.base_url,
            DATABASE_URL=database_url(server_dsn, bot_db),
            ROLLBACK_RUNBOOK=str(runbook),
            ROLLBACK_DATA_DIR=str(root / "bot"),
            ROLLBACK_SLACK_MIN_INTERVAL=str(pace),
            ROLLBACK_SYNC_INTERVAL="0.5",
            ROLLBACK_LOG_LEVEL="INFO",
        )
        (root / "bot").mkdir()
        log_path = root / "bot.log"
        process = await start_bot(env, root / "bot", log_path, port)
        db = await asyncpg.connect(database_url(server_dsn, bot_db))
        yield Stage(
            root=root,
            server_dsn=server_dsn,
            sandbox=sandbox,
            fake=fake,
            db=db,
            bot_url=f"http://127.0.0.1:{port}",
            secret=secret,
            log_path=log_path,
            shop_db=shop_db,
            bot_db=bot_db,
        )
    finally:
        if db is not None:
            await db.close()
        if process is not None:
            await stop_bot(process)
        if fake is not None:
            await fake.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(sandbox.stop_app)
        if not keep:
            await asyncio.to_thread(sandbox.destroy)
            await recreate_database(server_dsn, bot_db, create=False)
            shutil.rmtree(root / "bot", ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
