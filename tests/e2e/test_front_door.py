"""Signatures, hostile input and the everyday commands, through /slack/events."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.e2e.harness import SECRET, fetch, posts_in, text_of
from tests.slack_requests import sign, slash_command_body

CHANNEL = "CFRONT001"
USER = "UFRONT001"


async def test_forged_replayed_and_unsigned_requests_get_401_and_change_nothing(start_bot, fake):
    bot = await start_bot()
    body = slash_command_body(
        "declare critical database x",
        user_id=USER,
        channel_id=CHANNEL,
        response_url=fake.response_url(),
    )
    forged = sign(body, "not-the-secret")
    replayed = sign(body, SECRET, timestamp=int(time.time()) - 6 * 60)
    for headers in (forged, replayed, {}):
        status, _ = await bot.post(body, headers=dict(headers))
        assert status == 401
    tampered = sign(body, SECRET)
    status, _ = await bot.post(body.replace(b"critical", b"low"), headers=tampered)
    assert status == 401
    assert await fetch(start_bot.dsn, "select * from incidents") == []
    assert fake.calls_to("chat.postMessage") == []


HOSTILE = [
    "declare critical database; rm -rf /",
    "declare critical database $(touch /tmp/pwned-by-rollback-bot)",
    "declare low `id` <!channel> <!here> <@U0BOSS> <http://evil.example|click me>",
    "declare low @channel @here @everyone",
    "declare medium " + "A" * 5000,
    "declare low \x00\x07\x1b[31mred\u202eRTL\u200f marks",
    "declare",
    "declare urgent",
    "declare critical nosuchscenario",
    "resolve RB-99999",
    "resolve RB-abc",
    "escalate",
    "escalate RB-1 extreme",
    "status RB-0",
    "rehearse ../../etc/passwd",
    "notice RB-1 next 2031-13-45",
    "checklist sometimes",
    "frobnicate",
    "DECLARE LOW shouting",
    "\u202edeclare low",
    "'; drop table incidents; --",
    "%s%s%s%n",
    "{{ vars.db_name }}",
    "{% for x in y %}",
]


async def test_hostile_command_texts_are_answered_and_inject_nothing(start_bot, fake):
    bot = await start_bot()
    for text in HOSTILE * 12:  # a few hundred
        url = fake.response_url()
        status, body = await bot.command(text, user=USER, channel=CHANNEL, response_url=url)
        assert status == 200, (text, body)
    await asyncio.sleep(1.0)
    async with aiohttp.ClientSession() as session, session.get(bot.url + "/healthz") as health:
        assert health.status == 200
        assert (await health.json())["pid"] == bot.process.pid  # this process, not another
    import os

    assert not os.path.exists("/tmp/pwned-by-rollback-bot")
    for call in fake.calls:
        text = text_of(call.args) if call.method.startswith("chat.") else ""
        for forbidden in (
            "<!channel>",
            "<!here>",
            "<@U0BOSS>",
            "<http://evil",
            "@channel",
            "@here",
        ):
            assert forbidden not in text, (call.method, text)
    incidents = await fetch(start_bot.dsn, "select summary from incidents")
    assert all(len(r["summary"]) <= 2000 for r in incidents)
    assert all("\x00" not in r["summary"] and "\u202e" not in r["summary"] for r in incidents)


async def test_every_malformed_command_gets_an_answer_saying_the_correct_form(start_bot, fake):
    bot = await start_bot()
    for text in ("declare urgent", "frobnicate", "escalate RB-1 extreme", "checklist sometimes"):
        status, body = await bot.command(
            text, user=USER, channel=CHANNEL, response_url=fake.response_url()
        )
        assert status == 200
        assert "Usage" in body or "help" in body, (text, body)
    assert await fetch(start_bot.dsn, "select * from incidents") == []


async def test_an_omitted_id_picks_the_only_open_incident_and_asks_when_there_are_several(
    start_bot, fake
):
    bot = await start_bot()
    for text in ("declare low one", "declare medium two"):
        await bot.command(text, user=USER, channel=CHANNEL, response_url=fake.response_url())
    await fake.wait_for(lambda f: len(posts_in(f, CHANNEL)) >= 2)
    answer = await bot.ask("resolve", user=USER, channel=CHANNEL)
    assert "RB-1" in answer["text"] and "RB-2" in answer["text"]
    assert "Say which" in answer["text"]
    answer = await bot.ask("resolve RB-2 it was fine", user=USER, channel=CHANNEL)
    assert answer["text"] == "RB-2 is resolved."
    answer = await bot.ask("cancel", user=USER, channel=CHANNEL)
    assert "RB-1 is cancelled" in answer["text"]
    rows = await fetch(start_bot.dsn, "select id, state from incidents order by id")
    assert [tuple(r) for r in rows] == [(1, "cancelled"), (2, "resolved")]
    answer = await bot.ask("resolve RB-2", user=USER, channel=CHANNEL)
    assert "already resolved" in answer["text"]


async def test_status_and_history_answer_privately(start_bot, fake):
    bot = await start_bot()
    await bot.command(
        "declare low <b>bold</b> summary",
        user=USER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await fake.wait_for(lambda f: posts_in(f, CHANNEL))
    for text, expected in (("status", "RB-1"), ("history", "Recent incidents")):
        answer = await bot.ask(text, user=USER, channel=CHANNEL)
        assert expected in answer["text"]
        assert answer["response_type"] == "ephemeral"
        assert "<b>" not in answer["text"]


async def test_declare_without_arguments_opens_the_modal_and_its_submission_declares(
    start_bot, fake
):
    from tests.slack_requests import view_submission_body

    bot = await start_bot()
    await bot.command("declare", user=USER, channel=CHANNEL, response_url=fake.response_url())
    opened = await fake.wait_for(lambda f: f.calls_to("views.open"))
    view = opened[0].args["view"]
    assert view["callback_id"] == "declare_incident"
    detected = int(time.time()) - 600
    values = {
        "severity": {
            "severity": {"type": "static_select", "selected_option": {"value": "critical"}}
        },
        "scenario": {"scenario": {"type": "static_select", "selected_option": {"value": "full"}}},
        "summary": {"summary": {"type": "plain_text_input", "value": "orders missing"}},
        "detected": {"detected": {"type": "datetimepicker", "selected_date_time": detected}},
    }
    body = view_submission_body(
        user_id=USER,
        callback_id="declare_incident",
        values=values,
        private_metadata=view["private_metadata"],
    )
    status, _ = await bot.post(body)
    assert status == 200
    await fake.wait_for(
        lambda f: [p for p in posts_in(f, CHANNEL) if "Rollback requested" in p.get("text", "")]
    )
    rows = await fetch(
        start_bot.dsn,
        "select severity, scenario, summary,"
        " extract(epoch from detected_at)::bigint as d from incidents",
    )
    assert tuple(rows[0]) == ("critical", "full", "orders missing", detected)


async def test_modal_submission_with_errors_is_refused_field_by_field(start_bot, fake):
    from tests.slack_requests import view_submission_body

    bot = await start_bot()
    values = {
        "severity": {"severity": {"type": "static_select", "selected_option": {"value": "high"}}},
        "detected": {
            "detected": {"type": "datetimepicker", "selected_date_time": int(time.time()) + 86400}
        },
    }
    body = view_submission_body(
        user_id=USER,
        callback_id="declare_incident",
        values=values,
        private_metadata='{"channel": "CFRONT001"}',
    )
    status, text = await bot.post(body)
    assert status == 200
    assert '"response_action": "errors"' in text or '"response_action":"errors"' in text
    assert "scenario" in text and "future" in text
    assert await fetch(start_bot.dsn, "select * from incidents") == []
