"""Socket Mode end to end: `rollback-bot serve` with SLACK_APP_TOKEN, driven by envelopes over
the fake Slack's WebSocket — commands, clicks, reconnects, two processes, health, failures."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.db_proxy import DatabaseProxy
from tests.e2e.harness import bot_env, fetch, free_port, posts_in, write_runbook
from tests.e2e.socket_support import APP_TOKEN, SocketBot, click, command

CHANNEL = "CINCIDENT1"
DECLARER, SECOND = "UDECLARE1", "USECOND01"


@pytest.fixture
async def start_socket_bot(fresh_database, fake, tmp_path):
    """start_socket_bot(...) -> a Socket Mode bot process; all are killed after the test."""
    bots: list[SocketBot] = []
    runbook = write_runbook(tmp_path / "runbook.toml")

    async def start(
        *, wait: bool = True, health: bool = True, dsn: str | None = None, **env: str
    ) -> SocketBot:
        environment = bot_env(
            dsn=dsn or fresh_database,
            fake=fake,
            runbook=runbook,
            data_dir=tmp_path / "data",
            SLACK_APP_TOKEN=APP_TOKEN,
            **env,
        )
        environment.pop("SLACK_SIGNING_SECRET")  # Socket Mode needs none
        bot = SocketBot(
            environment,
            tmp_path / f"socket-bot{len(bots)}.log",
            fake,
            health_port=free_port() if health else None,
        )
        bots.append(bot)
        return await (bot.start() if wait else bot.launch())

    start.dsn = fresh_database
    yield start
    for bot in bots:
        await bot.stop(signal.SIGKILL)


def root_of(fake, channel: str = CHANNEL) -> dict:
    return fake.messages(channel)[0]


def approval_button(fake) -> tuple[str, str]:
    """(value, message ts) of the Approve button in the incident's thread."""
    for message in fake.thread(CHANNEL, root_of(fake)["ts"]):
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == "rollback_approve":
                    return element["value"], message["ts"]
    raise AssertionError("no approval button in the thread")


async def test_a_slash_command_is_acknowledged_over_the_socket_with_its_answer(
    start_socket_bot, fake
):
    await start_socket_bot()
    refused = await command(
        fake, "declare urgent", user=DECLARER, channel=CHANNEL, response_url=fake.response_url()
    )
    ack = await fake.socket_mode.wait_ack(refused)
    assert ack.payload["response_type"] == "ephemeral"
    assert ack.payload["text"].startswith(":warning:") and "urgent" in ack.payload["text"]
    assert await fetch(start_socket_bot.dsn, "select * from incidents") == []

    declared = await command(
        fake,
        "declare medium database orders look odd",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    ack = await fake.socket_mode.wait_ack(declared)
    assert ack.payload is None and ack.connection == declared.connection
    await fake.wait_for(lambda f: posts_in(f, CHANNEL))
    assert "RB-1" in root_of(fake)["text"]
    rows = await fetch(start_socket_bot.dsn, "select state, severity, declared_by from incidents")
    assert [tuple(r) for r in rows] == [("open", "medium", DECLARER)]
    assert fake.socket_mode.problems == []
