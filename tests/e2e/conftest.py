"""Fixtures for end-to-end tests: a fake Slack, a fresh database, and bot processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from actions.runbook import load_runbook
from bot.db.postgres import create_pool, migrate
from bot.services import Services
from bot.slack import outbox
from tests.e2e.harness import TOKEN, Bot, bot_env, free_port, write_runbook
from tests.e2e.socket_support import APP_TOKEN, SocketBot
from tests.fake_slack.server import FakeSlack


@pytest.fixture
async def fake():
    """A fake Slack Web API on a free port."""
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def start_bot(fresh_database, fake, tmp_path):
    """start_bot(**runbook_options) -> a healthy bot process; all are killed after the test."""
    bots: list[Bot] = []
    runbook_path = tmp_path / "runbook.toml"

    async def start(
        *,
        env: dict[str, str] | None = None,
        rewrite: bool = True,
        runbook: Path | None = None,
        **options,
    ) -> Bot:
        if runbook is None and (rewrite or not runbook_path.exists()):
            write_runbook(runbook_path, **options)
        environment = bot_env(
            dsn=fresh_database,
            fake=fake,
            runbook=runbook or runbook_path,
            data_dir=tmp_path / "data",
            **(env or {}),
        )
        bot = Bot(env=environment, log_path=tmp_path / f"bot{len(bots)}.log")
        bots.append(bot)
        return await bot.start()

    start.dsn = fresh_database
    yield start
    for bot in bots:
        await bot.stop(signal.SIGKILL)


@pytest.fixture(scope="session", autouse=True)
def tools_cache(tmp_path_factory):
    """Sandboxes (also the demo's, in subprocesses) install the real pm2 once per session."""
    from bot.demo.sandbox.services import CACHE_ENV

    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers of one run share one install
        path = tmp_path_factory.getbasetemp().parent / "tools-cache"  # (moved into place whole)
    else:
        path = tmp_path_factory.mktemp("tools-cache")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(path)
    yield path
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture
def sandbox(pg_server_dsn, tmp_path):
    """A realistic project to roll back: its database, git repo, the app running under the
    real pm2 (behind the real nginx when installed), and stand-ins for what can't run here."""
    import uuid

    from bot.demo.sandbox.build import build_sandbox

    box = build_sandbox(
        tmp_path / "sandbox",
        server_dsn=pg_server_dsn,
        db_name=f"ecom_os_{uuid.uuid4().hex[:8]}",
        rows=2000,
    )
    box.start_app()
    yield box
    box.destroy()


@pytest.fixture
async def start_socket_bot(fresh_database, fake, tmp_path):
    """start_socket_bot(...) -> a Socket Mode bot process; all are killed after the test."""
    bots: list[SocketBot] = []
    runbook = write_runbook(tmp_path / "runbook.toml")

    async def start(
        *,
        wait: bool = True,
        health: bool = True,
        dsn: str | None = None,
        runbook_options: dict | None = None,
        http: bool = False,
        **env: str,
    ) -> SocketBot:
        if runbook_options:
            write_runbook(runbook, **runbook_options)
        environment = bot_env(
            dsn=dsn or fresh_database,
            fake=fake,
            runbook=runbook,
            data_dir=tmp_path / "data",
            **{"SLACK_APP_TOKEN": APP_TOKEN, **env},
        )
        if not http:
            environment.pop("SLACK_SIGNING_SECRET")  # Socket Mode needs none
        bot = SocketBot(
            environment,
            tmp_path / f"socket-bot{len(bots)}.log",
            fake,
            health_port=free_port() if health and not http else None,
        )
        bots.append(bot)
        if http:
            return await bot.launch("--http", "--port", str(free_port()))
        return await (bot.start() if wait else bot.launch())

    start.dsn = fresh_database
    yield start
    for bot in bots:
        await bot.stop(signal.SIGKILL)


@pytest.fixture
async def sending(fresh_database):
    """(pool, fake Slack, outbox sender) on a migrated fresh database: the outbox on its own."""
    await migrate(fresh_database)
    pool = await create_pool(fresh_database, max_size=4)
    async with FakeSlack() as fake:
        client = AsyncWebClient(token=TOKEN, base_url=fake.base_url)
        yield pool, fake, outbox.Sender(pool, client, min_interval=0)
    await pool.close()


@pytest.fixture
async def services(fresh_database, tmp_path):
    """The workflow layer's Services on a migrated fresh database, with the harness runbook."""
    await migrate(fresh_database)
    pool = await create_pool(fresh_database, max_size=4)
    runbook = load_runbook(write_runbook(tmp_path / "runbook.toml"))
    yield Services(pool=pool, runbook=runbook, process_id="test")
    await pool.close()
