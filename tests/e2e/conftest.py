"""Fixtures for end-to-end tests: a fake Slack, a fresh database, and bot processes."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.harness import Bot, bot_env, free_port, write_runbook
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


@pytest.fixture
def sandbox(pg_server_dsn, tmp_path):
    """A realistic project to roll back: its database, git repo, running app and tool shims."""
    import uuid

    from bot.sandbox import build_sandbox

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
