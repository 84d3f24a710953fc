"""The Socket Mode client's pure parts: which failures are for good, how long to wait, and the
one line a refusal prints."""

from __future__ import annotations

import asyncio

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.socket_mode import (
    PERMANENT_ERRORS,
    Refused,
    backoff,
    describe,
    retry_after,
    until_stopped,
)


def api_error(code: str, status: int = 200) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,
        http_verb="POST",
        api_url="u",
        req_args={},
        data={"ok": False, "error": code},
        headers={},
        status_code=status,
    )
    return SlackApiError(code, response)


def test_waits_grow_then_stay_at_thirty_seconds():
    assert [backoff(n) for n in range(1, 8)] == [1.0, 2.0, 5.0, 10.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize("code", ["invalid_auth", "token_revoked", "not_allowed_token_type"])
def test_token_refusals_are_for_good(code):
    assert code in PERMANENT_ERRORS


@pytest.mark.parametrize("code", ["ratelimited", "internal_error", "fatal_error"])
def test_slack_trouble_is_not(code):
    assert code not in PERMANENT_ERRORS


def test_a_failed_attempt_is_described_in_one_short_line():
    assert describe(api_error("internal_error", 503)) == "internal_error, HTTP 503"
    assert describe(api_error("ratelimited")) == "ratelimited"
    assert describe(ConnectionRefusedError(111, "Connect call failed\nmore")) == (
        "ConnectionRefusedError: [Errno 111] Connect call failed"
    )
    assert describe(TimeoutError()) == "TimeoutError"


@pytest.mark.parametrize("setting", ["SLACK_APP_TOKEN", "SLACK_BOT_TOKEN"])
def test_a_refusal_names_the_setting_and_what_to_do(setting):
    line = str(Refused.token(setting, "token_revoked"))
    assert line.startswith(f"Slack refused {setting} (token_revoked): ")
    assert "\n" not in line and ("App-Level Tokens" in line or "reinstall" in line)


async def test_until_stopped_cancels_the_work_when_stop_comes_first():
    stop = asyncio.Event()
    work = asyncio.ensure_future(asyncio.sleep(60))
    asyncio.get_running_loop().call_later(0.05, stop.set)
    assert await until_stopped(stop, work) == (True, None)
    assert work.cancelled()
    assert await until_stopped(asyncio.Event(), asyncio.sleep(0, "done")) == (False, "done")


def test_a_rate_limit_waits_as_long_as_slack_asks():
    limited = api_error("ratelimited", 429)
    limited.response.headers["Retry-After"] = "30"
    assert retry_after(limited) == 30.0
    assert retry_after(api_error("internal_error", 500)) == 0.0
