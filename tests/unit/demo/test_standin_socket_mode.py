"""The fake Slack's Socket Mode side behaves as Slack's does: app tokens only, one-time URLs,
hello first, each envelope to exactly one connection, acks recorded and checked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fake_slack import FakeSlack

APP_TOKEN, BOT_TOKEN = "xapp-1-A0001-test-token", "xoxb-test-token"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


async def open_url(fake: FakeSlack, token: str = APP_TOKEN) -> str:
    client = AsyncWebClient(base_url=fake.base_url)
    return (await client.apps_connections_open(app_token=token))["url"]


async def error_of(call) -> str:
    with pytest.raises(SlackApiError) as caught:
        await call
    return caught.value.response["error"]


async def test_connections_open_takes_only_an_app_token(fake):
    url = await open_url(fake)
    assert url.startswith(f"ws://127.0.0.1:{fake.port}/link/?ticket=")
    client = AsyncWebClient(base_url=fake.base_url)
    wrong_kind = await error_of(client.apps_connections_open(app_token=BOT_TOKEN))
    assert wrong_kind == "not_allowed_token_type"
    unknown = await error_of(client.apps_connections_open(app_token="xapp-1-nobody"))
    assert unknown == "invalid_auth"
    fake.revoked_tokens.add(APP_TOKEN)
    assert await error_of(client.apps_connections_open(app_token=APP_TOKEN)) == "token_revoked"


async def test_an_app_token_cannot_call_bot_methods(fake):
    client = AsyncWebClient(token=APP_TOKEN, base_url=fake.base_url)
    assert await error_of(client.chat_postMessage(channel="C1", text="x")) == (
        "not_allowed_token_type"
    )
    assert fake.messages("C1") == []


async def test_a_url_connects_once_and_says_hello_first(fake):
    url = await open_url(fake)
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"] == {"app_id": fake.app_id}
        with pytest.raises(aiohttp.WSServerHandshakeError) as again:
            await session.ws_connect(url)
        assert again.value.status == 401


async def test_each_envelope_goes_to_exactly_one_connection_and_acks_are_recorded(fake):
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(await open_url(fake)) for _ in range(2)]
        for ws in sockets:
            assert (await ws.receive_json(timeout=5))["type"] == "hello"
        await fake.socket_mode.wait_connected(2)
        envelopes = [
            await fake.socket_mode.send("slash_commands", {"command": "/rollback", "text": n})
            for n in ("a", "b", "c", "d")
        ]
        assert sorted(e.connection for e in envelopes) == [1, 1, 2, 2]
        received: list[dict] = []
        for ws in sockets:
            for _ in range(2):
                message = await ws.receive_json(timeout=5)
                received.append(message)
                await ws.send_str(
                    json.dumps({"envelope_id": message["envelope_id"], "payload": {"text": "ok"}})
                )
        assert sorted(m["payload"]["text"] for m in received) == ["a", "b", "c", "d"]
        assert all(m["accepts_response_payload"] for m in received)
        for envelope in envelopes:
            ack = await fake.socket_mode.wait_ack(envelope)
            assert ack.payload == {"text": "ok"} and ack.connection == envelope.connection
        assert fake.socket_mode.problems == []
        for ws in sockets:
            await ws.close()


async def test_acks_that_break_the_rules_are_reported(fake):
    async with aiohttp.ClientSession() as session, session.ws_connect(await open_url(fake)) as ws:
        await ws.receive_json(timeout=5)
        click = await fake.socket_mode.send("interactive", {"type": "block_actions"})
        message = await ws.receive_json(timeout=5)
        assert message["accepts_response_payload"] is False
        await ws.send_str(json.dumps({"envelope_id": click.envelope_id, "payload": {"x": 1}}))
        await ws.send_str(json.dumps({"envelope_id": click.envelope_id}))
        await ws.send_str(json.dumps({"envelope_id": "never-sent"}))
        await ws.send_str("not json")
        deadline = asyncio.get_running_loop().time() + 5
        while len(fake.socket_mode.problems) < 4:
            assert asyncio.get_running_loop().time() < deadline, fake.socket_mode.problems
            await asyncio.sleep(0.02)
    problems = "\n".join(fake.socket_mode.problems)
    assert "payload in the ack of a interactive envelope" in problems
    assert "second ack" in problems and "no envelope we sent" in problems
    assert "non-JSON" in problems


async def test_disconnect_asks_for_a_new_connection_and_closes_the_old_later(fake):
    async with aiohttp.ClientSession() as session, session.ws_connect(await open_url(fake)) as ws:
        await ws.receive_json(timeout=5)
        await fake.socket_mode.disconnect("refresh_requested")
        message = await ws.receive_json(timeout=5)
        assert message["type"] == "disconnect" and message["reason"] == "refresh_requested"
        assert fake.socket_mode.live() == []  # no more envelopes for the old connection
        assert not ws.closed
