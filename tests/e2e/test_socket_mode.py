"""Socket Mode end to end: `rollback-bot serve` with SLACK_APP_TOKEN, driven by envelopes over
the fake Slack's WebSocket — commands, clicks, forms, reconnects, two processes, health.
(Start-up failures and SIGTERM: test_socket_mode_stops.py.)"""

from __future__ import annotations

import asyncio
import signal
import time

from tests.e2e.db_proxy import DatabaseProxy
from tests.e2e.harness import fetch, free_port, posts_in, text_of
from tests.e2e.socket_support import click, command, submit

CHANNEL = "CINCIDENT1"
DECLARER, SECOND = "UDECLARE1", "USECOND01"


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
    assert ack.connection == declared.connection
    # Acknowledged means done: the ack carries the outcome, committed before it was sent.
    assert ack.payload == {
        "text": "Declared RB-1. Its thread is the incident's log.",
        "response_type": "ephemeral",
    }
    await fake.wait_for(lambda f: posts_in(f, CHANNEL))
    assert "RB-1" in root_of(fake)["text"]
    rows = await fetch(start_socket_bot.dsn, "select state, severity, declared_by from incidents")
    assert [tuple(r) for r in rows] == [("open", "medium", DECLARER)]
    assert fake.socket_mode.problems == []


async def test_approving_by_a_click_over_the_socket_starts_the_run(start_socket_bot, fake):
    await start_socket_bot()
    declared = await command(
        fake,
        "declare critical database migration corrupted orders",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await fake.socket_mode.wait_ack(declared)
    await fake.wait_for(
        lambda f: [p for p in posts_in(f, CHANNEL) if "Rollback requested" in p.get("text", "")]
    )
    value, ts = approval_button(fake)

    own = fake.response_url()
    envelope = await click(
        fake,
        user=DECLARER,
        action_id="rollback_approve",
        value=value,
        channel=CHANNEL,
        message_ts=ts,
        response_url=own,
    )
    ack = await fake.socket_mode.wait_ack(envelope)
    assert ack.payload is None
    answer = await fake.wait_for(lambda f: f.responses_to(own))
    assert "second person" in answer[0].body["text"]
    assert await fetch(start_socket_bot.dsn, "select * from runs") == []

    envelope = await click(
        fake,
        user=SECOND,
        action_id="rollback_approve",
        value=value,
        channel=CHANNEL,
        message_ts=ts,
        response_url=fake.response_url(),
    )
    await fake.socket_mode.wait_ack(envelope)

    async def run_rows():
        return await fetch(
            start_socket_bot.dsn, "select kind, scenario, requested_by, state from runs"
        )

    await wait_until(run_rows)
    runs = await run_rows()
    assert [tuple(r)[:3] for r in runs] == [("rollback", "database", SECOND)]
    approvals = await fetch(start_socket_bot.dsn, "select state, decided_by from approvals")
    assert [tuple(r) for r in approvals] == [("approved", SECOND)]
    await fake.wait_for(lambda f: "Rollback finished" in thread_text(f), timeout=30)
    assert fake.socket_mode.problems == []


async def test_the_declare_form_over_the_socket_refuses_field_by_field_then_declares(
    start_socket_bot, fake
):
    await start_socket_bot()
    opened = await command(
        fake, "declare", user=DECLARER, channel=CHANNEL, response_url=fake.response_url()
    )
    assert (await fake.socket_mode.wait_ack(opened)).payload is None
    view = (await fake.wait_for(lambda f: f.calls_to("views.open")))[0].args["view"]
    severity = {"severity": {"type": "static_select", "selected_option": {"value": "critical"}}}
    scenario = {"scenario": {"type": "static_select", "selected_option": {"value": "full"}}}

    def detected(at: int) -> dict:
        return {"detected": {"type": "datetimepicker", "selected_date_time": at}}

    wrong = await submit(
        fake,
        user=DECLARER,
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        values={"severity": severity, "detected": detected(int(time.time()) + 86400)},
    )
    ack = await fake.socket_mode.wait_ack(wrong)
    assert ack.payload["response_action"] == "errors"
    assert set(ack.payload["errors"]) == {"scenario", "detected"}
    assert "future" in ack.payload["errors"]["detected"]
    assert await fetch(start_socket_bot.dsn, "select * from incidents") == []

    right = await submit(
        fake,
        user=DECLARER,
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        values={
            "severity": severity,
            "scenario": scenario,
            "detected": detected(int(time.time()) - 600),
        },
    )
    assert (await fake.socket_mode.wait_ack(right)).payload is None
    await fake.wait_for(lambda f: posts_in(f, CHANNEL))
    rows = await fetch(start_socket_bot.dsn, "select severity, scenario from incidents")
    assert [tuple(r) for r in rows] == [("critical", "full")]
    assert fake.socket_mode.problems == []


async def test_after_refresh_requested_the_bot_reconnects_and_commands_still_work(
    start_socket_bot, fake
):
    bot = await start_socket_bot()
    assert len(fake.calls_to("apps.connections.open")) == 1
    await fake.socket_mode.disconnect("refresh_requested")
    await fake.wait_for(lambda f: f.socket_mode.opened == 2 and f.socket_mode.live())
    assert len(fake.calls_to("apps.connections.open")) == 2
    assert [c.number for c in fake.socket_mode.live()] == [2]
    declared = await command(
        fake,
        "declare low orders slow",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    ack = await fake.socket_mode.wait_ack(declared)
    assert ack.connection == 2
    await fake.wait_for(lambda f: posts_in(f, CHANNEL))
    rows = await fetch(start_socket_bot.dsn, "select severity from incidents")
    assert [r["severity"] for r in rows] == ["low"]
    assert (await bot.health())[0] == 200
    assert fake.socket_mode.problems == []


async def test_two_processes_each_envelope_is_handled_once(start_socket_bot, fake):
    await start_socket_bot()
    await start_socket_bot()
    await fake.socket_mode.wait_connected(2)
    channels = [f"CINC{n:06d}" for n in range(6)]
    envelopes = [
        await command(
            fake,
            "declare medium database checkout failing",
            user=DECLARER,
            channel=channel,
            response_url=fake.response_url(),
        )
        for channel in channels
    ]
    for envelope in envelopes:
        await fake.socket_mode.wait_ack(envelope)
    assert {e.connection for e in envelopes} == {1, 2}  # both processes got some
    await fake.wait_for(lambda f: all(posts_in(f, c) for c in channels), timeout=20)
    rows = await fetch(start_socket_bot.dsn, "select channel from incidents order by channel")
    assert [r["channel"] for r in rows] == channels  # one incident per envelope, not two
    assert all(len(e.acks) == 1 for e in envelopes)
    for channel in channels:
        assert len(posts_in(fake, channel)) == 1
    assert fake.socket_mode.problems == []


async def wait_until(query, timeout: float = 20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await query()):
        assert asyncio.get_running_loop().time() < deadline, "not seen in time"
        await asyncio.sleep(0.1)
    return result


def thread_text(fake) -> str:
    return "\n".join(text_of(m) for m in fake.thread(CHANNEL, root_of(fake)["ts"]))


# --- /healthz in Socket Mode -----------------------------------------------------------------


async def test_health_is_503_while_the_socket_is_down_and_200_once_reconnected(
    start_socket_bot, fake
):
    bot = await start_socket_bot()
    assert await bot.wait_health(200) == {"status": "ok", "socket": "connected", "database": "ok"}
    fake.fail("apps.connections.open", status=503, times=None)  # reconnecting fails for now
    await fake.socket_mode.drop()
    body = await bot.wait_health(503)
    assert body == {"status": "unavailable", "socket": "disconnected", "database": "ok"}
    fake.heal("apps.connections.open")
    await bot.wait_health(200, timeout=60)
    envelope = await command(
        fake,
        "declare low after the drop",
        user=DECLARER,
        channel=CHANNEL,
        response_url=fake.response_url(),
    )
    await fake.socket_mode.wait_ack(envelope)
    await fake.wait_for(lambda f: posts_in(f, CHANNEL))


async def test_health_is_503_while_the_database_is_unreachable(start_socket_bot, fake):
    proxy = DatabaseProxy(start_socket_bot.dsn)
    await proxy.start()
    bot = await start_socket_bot(dsn=proxy.dsn)
    await proxy.cut()
    body = await bot.wait_health(503)
    assert body == {"status": "unavailable", "socket": "connected", "database": "unreachable"}
    await proxy.start()
    await bot.wait_health(200, timeout=60)


async def test_port_turns_health_on_and_without_either_there_is_none(start_socket_bot, fake):
    port = free_port()
    bot = await start_socket_bot(health=False, PORT=str(port))
    bot.health_port = port
    await bot.wait_health(200)
    await bot.stop(signal.SIGTERM)
    quiet = await start_socket_bot(health=False)
    assert quiet.health_port is None
    assert "/healthz" not in quiet.logs()
