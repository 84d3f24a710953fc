"""Faults: the database going away, SIGTERM mid-run, and a barrage of hostile payloads."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from urllib.parse import urlencode

import aiohttp

from tests.e2e.db_proxy import DatabaseProxy
from tests.e2e.harness import SECRET, TOKEN, fetch, text_of
from tests.e2e.test_runs import SCENARIOS
from tests.slack_requests import sign

CHANNEL = "CFAULT001"
DECLARER, APPROVER = "UDECLARE1", "UAPPROVE1"


async def health(bot) -> int:
    async with aiohttp.ClientSession() as session, session.get(bot.url + "/healthz") as response:
        return response.status


async def answer_to(bot, fake, text: str, user: str = DECLARER) -> str:
    return (await bot.ask(text, user=user, channel=CHANNEL))["text"]


async def test_database_outage_turns_health_503_answers_clearly_and_recovers(start_bot, fake):
    proxy = DatabaseProxy(start_bot.dsn)
    await proxy.start()
    bot = await start_bot(env={"DATABASE_URL": proxy.dsn})
    assert "Declared RB-1" in await answer_to(bot, fake, "declare low before the outage")
    await proxy.cut()
    for _ in range(50):
        if await health(bot) == 503:
            break
        await asyncio.sleep(0.1)
    assert await health(bot) == 503
    text = await answer_to(bot, fake, "declare low during the outage")
    assert "database is unavailable" in text and "Try again" in text
    await proxy.start()
    for _ in range(100):
        if await health(bot) == 200:
            break
        await asyncio.sleep(0.1)
    assert await health(bot) == 200
    assert "Declared RB-2" in await answer_to(bot, fake, "declare low after the outage")
    rows = await fetch(start_bot.dsn, "select summary from incidents order by id")
    assert [r["summary"] for r in rows] == ["before the outage", "after the outage"]


async def test_sigterm_finishes_the_current_step_and_another_process_continues(
    start_bot, fake, tmp_path
):
    first = await start_bot(scenarios=SCENARIOS, workdir=tmp_path)  # its `slow` scenario
    await first.command(
        "declare critical slow", user=DECLARER, channel=CHANNEL, response_url=fake.response_url()
    )
    request = await fake.wait_for(
        lambda f: [
            c for c in f.calls_to("chat.postMessage") if "Rollback requested" in c.args["text"]
        ]
    )
    value = next(
        e["value"]
        for b in request[0].args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "rollback_approve"
    )
    await first.click(
        user=APPROVER,
        action_id="rollback_approve",
        value=value,
        channel=CHANNEL,
        message_ts="1.1",
        response_url=fake.response_url(),
    )
    await fake.wait_for(lambda f: (tmp_path / "ran.log").exists(), timeout=20)
    assert await first.stop(signal.SIGTERM, timeout=30) == 0
    steps = await fetch(start_bot.dsn, "select name, status from step_results order by id")
    assert [tuple(s) for s in steps] == [("Long", "succeeded")]
    run = await fetch(start_bot.dsn, "select state, next_step from runs")
    assert tuple(run[0]) == ("queued", 1)
    await start_bot(rewrite=False)
    for _ in range(100):
        run = await fetch(start_bot.dsn, "select state from runs")
        if run[0]["state"] == "succeeded":
            break
        await asyncio.sleep(0.2)
    assert run[0]["state"] == "succeeded"
    assert (tmp_path / "ran.log").read_text() == "long-start\nlong-end\nafter\n"
    await fake.wait_for(
        lambda f: any("is restarting" in text_of(c.args) for c in f.calls_to("chat.postMessage"))
    )


def hostile_payloads(rng: random.Random, approval_id: int) -> list[bytes]:
    """Interactivity bodies: malformed JSON, missing fields, unknown ids, forged values."""
    actions = [
        "rollback_approve",
        "rollback_reject",
        "run_retry",
        "run_skip",
        "run_abort",
        "run_resume",
        "run_cancel",
        "no_such_action",
        "",
        "<!channel>",
    ]
    values = [
        str(approval_id),
        f"{approval_id}:0",
        "UDECLARE1",
        "-1",
        "9" * 40,
        "1; drop",
        "",
        "<@U0BOSS>",
        "٣",
        "1:1:1",
        "\x00",
        "{}",
        "x" * 5000,
    ]
    bodies = [
        b"payload=not-json",
        b"payload=",
        b"payload=%7B",
        b"payload=[]",
        b"payload=null",
        b"nothing=here",
        b"",
        b"payload=" + b"A" * 20000,
    ]
    for _ in range(120):
        payload: dict = {
            "type": rng.choice(["block_actions", "view_submission", "shortcut", "bogus", None])
        }
        if rng.random() < 0.9:
            payload["user"] = {"id": rng.choice([APPROVER, DECLARER, "", None, 5, "U" * 300])}
        if rng.random() < 0.8:
            payload["actions"] = [
                {"action_id": rng.choice(actions), "value": rng.choice(values), "block_id": "b"}
            ]
        if rng.random() < 0.5:
            payload["view"] = {
                "callback_id": rng.choice(["declare_incident", "x"]),
                "private_metadata": rng.choice(["", "{", '{"channel": 5}']),
                "state": {"values": rng.choice([{}, None, {"severity": 3}])},
            }
        payload["team"] = {"id": "T0001"}
        payload["response_url"] = "http://127.0.0.1:9/nowhere"
        bodies.append(urlencode({"payload": json.dumps(payload)}).encode())
    return bodies


async def test_hostile_interactivity_payloads_get_no_5xx_and_change_nothing(start_bot, fake):
    bot = await start_bot()
    await bot.command(
        "declare critical database fuzz target",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await fake.wait_for(
        lambda f: [
            c for c in f.calls_to("chat.postMessage") if "Rollback requested" in c.args["text"]
        ]
    )
    before = await fetch(
        start_bot.dsn,
        "select (select count(*) from events) e,"
        " (select count(*) from runs) r, (select state from approvals) a",
    )
    approval_id = (await fetch(start_bot.dsn, "select id from approvals"))[0]["id"]
    bodies = hostile_payloads(random.Random(20261124), approval_id)
    for body in bodies:
        # The approver's genuine click is the one valid action; leave it out of the barrage.
        if b"UAPPROVE1" in body and b"rollback_approve" in body:
            continue
        status, _ = await bot.post(body, headers=sign(body, SECRET))
        assert status < 500, body[:200]
    await asyncio.sleep(1.0)
    after = await fetch(
        start_bot.dsn,
        "select (select count(*) from events) e,"
        " (select count(*) from runs) r, (select state from approvals) a",
    )
    assert tuple(after[0]) == tuple(before[0])
    assert await health(bot) == 200
    for call in fake.calls:
        assert "<!channel>" not in json.dumps(call.args) and "<@U0BOSS>" not in json.dumps(
            call.args
        )
    logs = bot.logs()
    assert TOKEN not in logs and SECRET not in logs
