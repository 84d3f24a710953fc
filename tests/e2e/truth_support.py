"""Shared steps of the restore-point and discarded-data tests, on the sandbox."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import parse_qs

import asyncpg

from actions.render import TS_FORMAT
from tests.e2e.harness import fetch, text_of
from tests.e2e.test_sandbox_rollback import (
    APPROVER,
    CHANNEL,
    DECLARER,
    NOTICE,
    until,
)
from tests.slack_requests import _payload_body, block_actions_body

RESTORE = (
    "psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d {{ vars.db_name }} "
    "< {{ backup.db_dump }}\n"
)


def write_keeping_runbook(sandbox, *, incomplete: bool = False):
    """The sandbox's runbook (whose steps keep the failed database, renamed to {{ failed_db }});
    `incomplete`: the restore then drops audit_log, as a restore that failed half-way would."""
    path = sandbox.write_runbook(notice_channels=[NOTICE], contacts={"on_call": "UONCALL01"})
    text = path.read_text()
    assert RESTORE in text
    if incomplete:
        text = text.replace(
            RESTORE, RESTORE + "psql -d {{ vars.db_name }} -c 'DROP TABLE audit_log'\n"
        )
    path.write_text(text)
    return path


async def start_keeping(start_bot, sandbox, *, incomplete: bool = False):
    runbook = write_keeping_runbook(sandbox, incomplete=incomplete)
    return await start_bot(runbook=runbook, env={"PATH": sandbox.env["PATH"], **sandbox.env})


async def drop_kept(sandbox) -> None:
    """Drop the failed databases the rollbacks kept (the sandbox drops only its own)."""
    conn = await asyncpg.connect(sandbox.server_dsn)
    try:
        names = await conn.fetch(
            "select datname from pg_database where datname like $1", sandbox.db_name + "_failed_%"
        )
        for row in names:
            await conn.execute(f'drop database if exists "{row["datname"]}" with (force)')
    finally:
        await conn.close()


async def backup(bot, fake, dsn) -> int:
    """Take one more backup and wait until it succeeded; its run id."""
    before = await fetch(dsn, "select count(*) from runs where kind = 'backup'")
    await bot.command("backup", user=DECLARER, channel=CHANNEL, response_url=fake.response_url())

    async def done():
        rows = await fetch(dsn, "select id, state from runs where kind = 'backup' order by id")
        if len(rows) <= before[0]["count"]:
            return None
        assert rows[-1]["state"] in ("queued", "running", "succeeded"), await failed_steps(dsn)
        return rows[-1]["state"] == "succeeded" and rows[-1]["id"]

    return await until(done, timeout=120, what="the backup")


async def next_second(dsn) -> None:
    """Wait until the clock is past the latest run's `ts` second (each backup names its files
    and branch by the second it started)."""
    rows = await fetch(dsn, "select ts from runs order by id desc limit 1")

    async def moved():
        return not rows or datetime.now().strftime(TS_FORMAT) > rows[0]["ts"]

    await until(moved, what="the next second")


async def failed_steps(dsn) -> list:
    """(name, message, output) of every failed step, for assertion messages."""
    rows = await fetch(
        dsn, "select name, message, output_tail from step_results where status = 'failed'"
    )
    return [tuple(r) for r in rows]


def add_orders(sandbox, count: int) -> None:
    """Orders placed now (after the backup), as customers would during the integration."""
    sandbox.psql(
        "INSERT INTO orders (customer_id, status, total, created_at) "
        f"SELECT 1, 'paid', 10, now() FROM generate_series(1, {count});"
    )


def order_count(sandbox) -> int:
    return int(sandbox.psql("SELECT count(*) FROM orders").strip())


async def declare(bot, fake, scenario: str = "database") -> None:
    await bot.command(
        f"declare critical {scenario} orders look wrong",
        user=DECLARER, channel=CHANNEL, response_url=fake.response_url(),
    )  # fmt: skip


def request_message(fake) -> dict:
    """The approval request in the incident's thread (as it stands now)."""
    for root in fake.messages(CHANNEL):
        for message in fake.thread(CHANNEL, root["ts"]):
            for block in message.get("blocks") or []:
                for element in block.get("elements") or []:
                    if element.get("action_id") == "rollback_approve":
                        return message
    raise AssertionError("no approval request")


def message_at(fake, ts: str) -> dict:
    """The incident-thread message posted at `ts`, as it stands now."""
    for root in fake.messages(CHANNEL):
        for message in fake.thread(CHANNEL, root["ts"]):
            if message["ts"] == ts:
                return message
    raise AssertionError(f"no message at {ts}")


async def wait_request(fake) -> dict:
    return await fake.wait_for(lambda f: _maybe(lambda: request_message(f)), timeout=30)


def _maybe(read):
    try:
        return read()
    except AssertionError:
        return None


def approve_value(message: dict) -> str:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == "rollback_approve":
                return element["value"]
    raise AssertionError("no approve button")


async def approve(bot, fake, message: dict, user: str = APPROVER) -> str:
    url = fake.response_url()
    await bot.click(
        user=user, action_id="rollback_approve", value=approve_value(message), channel=CHANNEL,
        message_ts=message["ts"], response_url=url,
    )  # fmt: skip
    return url


async def choose_backup(
    bot, fake, message: dict, value: str, *, user: str = APPROVER, block_id: str | None = None
) -> str:
    """Pick a restore point in the request's menu (a static_select block action)."""
    menu_block = next(b for b in message["blocks"] if b.get("block_id", "").startswith("restore-"))
    url = fake.response_url()
    body = block_actions_body(
        user_id=user, action_id="restore_point_choose", value="", channel_id=CHANNEL,
        message_ts=message["ts"], response_url=url,
    )  # fmt: skip
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    payload["actions"] = [{
        "type": "static_select", "action_id": "restore_point_choose",
        "block_id": block_id or menu_block["block_id"],
        "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value},
        "action_ts": "1.0",
    }]  # fmt: skip
    await bot.post(_payload_body(payload))
    return url


async def response(fake, url: str) -> str:
    found = await fake.wait_for(lambda f: f.responses_to(url), timeout=20)
    return text_of(found[0].body)


async def ended_rollback(dsn: str) -> asyncpg.Record:
    async def ended():
        rows = await fetch(
            dsn, "select * from runs where kind = 'rollback' and ended_at is not null"
        )
        return rows and rows[-1]

    return await until(ended, timeout=180, what="the rollback to end")


def thread_messages(fake) -> list[dict]:
    root = next(m for m in fake.messages(CHANNEL) if "RB-1" in text_of(m))
    return fake.thread(CHANNEL, root["ts"])


def discarded_message(fake) -> str | None:
    found = [
        text_of(m) for m in thread_messages(fake) if "What the rollback discarded" in text_of(m)
    ]
    return found[-1] if found else None


def notice_text(fake) -> str | None:
    posts = [
        c.args for c in fake.calls_to("chat.postMessage") if c.ok and c.args["channel"] == NOTICE
    ]
    return text_of(posts[-1]) if posts else None
