"""Socket Mode's stops: a token Slack refuses is one line and exit 1 (no retry loop), Slack
trouble is retried with one line per attempt, and SIGTERM works in every state."""

from __future__ import annotations

import signal

import pytest

from tests.e2e.harness import fetch, posts_in
from tests.e2e.socket_support import APP_TOKEN, SocketBot, click, command
from tests.e2e.test_socket_mode import CHANNEL, DECLARER, SECOND, approval_button

# --- start-up failures: one line naming the setting, exit 1, no retry loop ------------------

APP_TOKEN_REFUSALS = {
    "invalid_auth": lambda fake: fake.app_tokens.clear(),  # Slack doesn't know the token
    "token_revoked": lambda fake: fake.revoked_tokens.add(APP_TOKEN),
    # Slack knows the token, but not as an app-level one
    "not_allowed_token_type": lambda fake: (
        fake.app_tokens.discard(APP_TOKEN),
        fake.tokens.add(APP_TOKEN),
    ),
}
BOT_TOKEN_REFUSALS = {
    "invalid_auth": lambda fake: fake.tokens.clear(),
    "token_revoked": lambda fake: fake.revoked_tokens.add("xoxb-test-token"),
    "account_inactive": lambda fake: fake.fail("auth.test", error="account_inactive", times=None),
}


async def assert_stops_with_one_line(bot: SocketBot, *words: str) -> str:
    code = await bot.wait_exit(30)  # a bound on a hang, not a benchmark: it takes seconds
    output = bot.logs()
    assert code == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("rollback-bot: ") and "Traceback" not in output
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


@pytest.mark.parametrize("error", sorted(APP_TOKEN_REFUSALS))
async def test_an_app_token_slack_refuses_stops_serve_with_one_line(start_socket_bot, fake, error):
    APP_TOKEN_REFUSALS[error](fake)
    bot = await start_socket_bot(wait=False, ROLLBACK_LOG_LEVEL="WARNING")
    line = await assert_stops_with_one_line(bot, "SLACK_APP_TOKEN", error)
    assert "xapp-" in line and "App-Level Tokens" in line  # what to do
    assert len(fake.calls_to("apps.connections.open")) == 1  # refused for good: no retry


@pytest.mark.parametrize("error", sorted(BOT_TOKEN_REFUSALS))
async def test_a_bot_token_slack_refuses_stops_serve_with_one_line(start_socket_bot, fake, error):
    BOT_TOKEN_REFUSALS[error](fake)
    bot = await start_socket_bot(wait=False, ROLLBACK_LOG_LEVEL="WARNING")
    line = await assert_stops_with_one_line(bot, "SLACK_BOT_TOKEN", error)
    assert "xoxb-" in line and "reinstall" in line
    assert fake.calls_to("apps.connections.open") == []  # checked before connecting


async def test_http_mode_also_stops_on_a_refused_bot_token(start_socket_bot, fake):
    fake.revoked_tokens.add("xoxb-test-token")
    bot = await start_socket_bot(http=True, ROLLBACK_LOG_LEVEL="WARNING")
    await assert_stops_with_one_line(bot, "SLACK_BOT_TOKEN", "token_revoked")


async def test_slack_turning_socket_mode_off_stops_serve_with_one_line(start_socket_bot, fake):
    bot = await start_socket_bot()
    await fake.socket_mode.disconnect("link_disabled")
    code = await bot.wait_exit(30)
    assert code == 1, bot.logs()
    last = bot.logs().strip().splitlines()[-1]
    assert last.startswith("rollback-bot: Slack turned Socket Mode off") and "--http" in last
    assert "Traceback" not in bot.logs()


async def test_a_bot_token_where_the_app_token_belongs_is_named_in_one_line(start_socket_bot, fake):
    bot = await start_socket_bot(wait=False, SLACK_APP_TOKEN="xoxb-test-token")
    code = await bot.wait_exit(30)
    lines = bot.logs().strip().splitlines()
    # A token Slack would refuse: exit status 1, as for one it did refuse.
    assert code == 1 and len(lines) == 1, bot.logs()
    assert "SLACK_APP_TOKEN" in lines[0] and "xapp-" in lines[0]
    assert "SLACK_BOT_TOKEN" in lines[0] and "Traceback" not in bot.logs()
    assert fake.calls == []


async def test_a_refusal_while_running_also_stops_serve(start_socket_bot, fake):
    bot = await start_socket_bot()
    fake.revoked_tokens.add(APP_TOKEN)
    await fake.socket_mode.disconnect("refresh_requested")
    code = await bot.wait_exit(30)
    assert code == 1, bot.logs()
    last = bot.logs().strip().splitlines()[-1]
    assert last.startswith("rollback-bot: Slack refused SLACK_APP_TOKEN (token_revoked)")
    assert "Traceback" not in bot.logs()


async def test_slack_unreachable_is_retried_with_one_line_per_attempt(start_socket_bot, fake):
    fake.fail("apps.connections.open", status=503, times=2)
    bot = await start_socket_bot(wait=False, ROLLBACK_LOG_LEVEL="WARNING")
    await fake.socket_mode.wait_connected(1, timeout=30)  # the third attempt gets through
    await bot.wait_health(200)
    attempts = [line for line in bot.logs().splitlines() if "could not connect" in line]
    assert len(attempts) == 2, bot.logs()
    assert "attempt 1" in attempts[0] and "attempt 2" in attempts[1]
    assert "Traceback" not in bot.logs()
    assert len(fake.calls_to("apps.connections.open")) == 3


async def test_slack_failing_the_bot_token_check_is_retried_too(start_socket_bot, fake):
    fake.fail("auth.test", status=500, times=2)
    bot = await start_socket_bot(wait=False, ROLLBACK_LOG_LEVEL="WARNING")
    await fake.socket_mode.wait_connected(1, timeout=30)
    attempts = [line for line in bot.logs().splitlines() if "SLACK_BOT_TOKEN" in line]
    assert len(attempts) == 2 and "attempt 2" in attempts[1], bot.logs()
    assert "internal_error, HTTP 500" in attempts[0]
    assert "Traceback" not in bot.logs()


async def test_a_socket_slack_keeps_refusing_is_retried_with_growing_waits(start_socket_bot, fake):
    fake.socket_mode.refuse_connections = True  # the WebSocket handshake gets HTTP 503
    bot = await start_socket_bot(wait=False, ROLLBACK_LOG_LEVEL="WARNING")
    await fake.wait_for(lambda f: len(f.calls_to("apps.connections.open")) >= 3, timeout=30)
    fake.socket_mode.refuse_connections = False
    await fake.socket_mode.wait_connected(1, timeout=30)
    attempts = [line for line in bot.logs().splitlines() if "could not connect" in line]
    assert [("next in 1s" in attempts[0]), ("next in 2s" in attempts[1])] == [True, True]
    assert all("503" in line for line in attempts), attempts
    assert "ticket=" not in bot.logs()  # the one-time URL is a credential: never logged
    assert "Traceback" not in bot.logs()


# --- SIGTERM in every state (bounds on a hang, not benchmarks) --------------------------------


async def test_an_idle_connected_bot_exits_promptly_on_sigterm(start_socket_bot, fake):
    bot = await start_socket_bot()
    code = await bot.stop(signal.SIGTERM, timeout=5)
    assert code == 0, bot.logs()
    assert "Traceback" not in bot.logs() and "Warning" not in bot.logs()
    assert fake.socket_mode.live() == []


async def test_sigterm_while_slack_does_not_answer_the_connect_call(start_socket_bot, fake):
    fake.fail("apps.connections.open", delay=120, times=None)
    bot = await start_socket_bot(wait=False)
    await fake.wait_for(lambda f: f.calls_to("apps.connections.open"), timeout=30)
    assert await bot.stop(signal.SIGTERM, timeout=5) == 0, bot.logs()
    assert "Traceback" not in bot.logs()


async def test_sigterm_while_retrying_a_failed_connection(start_socket_bot, fake):
    fake.fail("apps.connections.open", status=503, times=None)
    bot = await start_socket_bot(wait=False)
    await fake.wait_for(lambda f: len(f.calls_to("apps.connections.open")) >= 2, timeout=30)
    body = await bot.wait_health(503)  # answered from the start, while it can't connect
    assert body == {
        "status": "unavailable",
        "socket": "disconnected",
        "database": "not checked yet",
    }
    assert await bot.stop(signal.SIGTERM, timeout=5) == 0, bot.logs()
    assert "Traceback" not in bot.logs()


async def test_sigterm_mid_run_finishes_the_current_step_within_the_grace(
    start_socket_bot, fake, tmp_path
):
    from tests.e2e.test_runs import SCENARIOS  # its `slow` scenario: a 4 s step, then another

    bot = await start_socket_bot(runbook_options={"scenarios": SCENARIOS, "workdir": tmp_path})
    envelope = await command(
        fake,
        "declare critical slow",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await fake.socket_mode.wait_ack(envelope)
    await fake.wait_for(
        lambda f: [p for p in posts_in(f, CHANNEL) if "Rollback requested" in p.get("text", "")]
    )
    value, ts = approval_button(fake)
    await click(
        fake,
        user=SECOND,
        action_id="rollback_approve",
        value=value,
        channel=CHANNEL,
        message_ts=ts,
        response_url=fake.response_url(),
    )
    await fake.wait_for(lambda f: (tmp_path / "ran.log").exists(), timeout=20)
    assert await bot.stop(signal.SIGTERM, timeout=30) == 0, bot.logs()
    steps = await fetch(start_socket_bot.dsn, "select name, status from step_results order by id")
    assert [tuple(s) for s in steps] == [("Long", "succeeded")]
    run = await fetch(start_socket_bot.dsn, "select state, next_step from runs")
    assert tuple(run[0]) == ("queued", 1)  # handed on for the next process
    assert (tmp_path / "ran.log").read_text() == "long-start\nlong-end\n"


async def test_a_health_port_in_use_stops_serve_with_one_line(start_socket_bot, fake):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        bot = await start_socket_bot(
            wait=False, health=False, ROLLBACK_LOG_LEVEL="WARNING", PORT=str(port)
        )
        line = await assert_stops_with_one_line(bot, "/healthz", str(port), "--health-port")
    assert "can't listen" in line
    assert fake.calls_to("apps.connections.open") == []  # nothing was started
