"""Shared steps of the communication tests: a runbook with checks and checklists, a rollback."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from tests.e2e.harness import ack_body, fetch, outcome, text_of

CHANNEL = "CCOMMS001"
NOTICE_CHANNELS = ("CNOTICE01", "CNOTICE02")
DECLARER, APPROVER, HELPER = "UDECLARE1", "UAPPROVE1", "UHELPER01"
HOSTILE = "<!channel> @here [click](http://evil.example) {{ 7*7 }} orders corrupted"


def write_comms_runbook(
    tmp_path: Path, *, check: str = "true", reminder: str = "24h", project: str = "WMS integration"
) -> Path:
    """A runbook with harmless steps, one `run` check we control, checklists and contacts."""
    path = tmp_path / "runbook.toml"
    channels = ", ".join(f'"{c}"' for c in NOTICE_CHANNELS)
    path.write_text(
        textwrap.dedent(f"""
        [project]
        name = "{project}"
        workdir = "{tmp_path}"

        [policy]
        approval_expires_after = "30m"
        postmortem_reminder_after = "{reminder}"

        [notify]
        notice_channels = [{channels}]

        [contacts]
        database_admin = "UDBA00001"
        on_call = "UONCALL01"

        [checklists]
        pre = ["Database backup completed", "Current state documented", "Rollback scripts tested"]
        during = ["Services stopped", "Database restored", "Services restarted"]
        post = ["All services running", "Users notified", "Post-mortem scheduled"]

        [backup]
          [[backup.step]]
          name = "Dump"
          run = "echo dump > {{{{ artifact }}}}"
          artifact = {{ name = "dump", path = "dump_{{{{ ts }}}}.txt" }}
          checklist = "Database backup completed"

        [[scenario]]
        key = "database"
        title = "Database migration failure"
        trigger = "Migration fails"
          [[scenario.step]]
          name = "Stop services"
          run = "echo stopping"
          checklist = "Services stopped"
          [[scenario.step]]
          name = "Restore database"
          run = "echo restoring"
          checklist = "Database restored"

        [[verify.check]]
        name = "App responsive"
        run = "{check}"
        """)
    )
    return path


def buttons(fake, action_id: str, channel: str = CHANNEL) -> list[tuple[str, str]]:
    """(value, ts) of every button with this action id in the channel and its threads."""
    found = []
    for root in fake.messages(channel):
        for message in [root, *fake.thread(channel, root["ts"])]:
            for block in message.get("blocks") or []:
                for element in block.get("elements") or []:
                    if element.get("action_id") == action_id:
                        found.append((element["value"], message["ts"]))
    return found


async def click(bot, fake, user: str, action_id: str, value: str, ts: str = "1.0") -> str:
    """Press a button as `user`; the response URL of the click."""
    url = fake.response_url()
    await bot.click(
        user=user, action_id=action_id, value=value, channel=CHANNEL, message_ts=ts,
        response_url=url,
    )  # fmt: skip
    return url


_ACKS: dict[str, dict] = {}  # response URL -> the command's acknowledgement, when it had a body


async def command(bot, fake, text: str, user: str = DECLARER) -> str:
    """Send `/rollback text` in CHANNEL; the response URL (its answer: `answer()`)."""
    url = fake.response_url()
    status, reply = await bot.command(text, user=user, channel=CHANNEL, response_url=url)
    assert status == 200
    if body := ack_body(reply):
        _ACKS[url] = body
    return url


async def answer(fake, url: str, timeout: float = 15) -> dict:
    """The command's answer: its acknowledgement's body, else the first post to its URL."""
    return await outcome(fake, _ACKS.pop(url, {}), url, timeout)


async def wait_row(dsn: str, query: str, *args, timeout: float = 30) -> list:
    """Poll a query until it returns rows."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if rows := await fetch(dsn, query, *args):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"no rows within {timeout}s: {query}")


async def roll_back(bot, fake, dsn: str, summary: str = HOSTILE) -> None:
    """Declare CRITICAL with a detection time, approve as a second person, wait for the end."""
    await command(bot, fake, f"declare critical database detected=10m {summary}")
    found = await fake.wait_for(lambda f: buttons(f, "rollback_approve"), timeout=20)
    value, ts = found[-1]
    await click(bot, fake, APPROVER, "rollback_approve", value, ts)
    await wait_row(dsn, "select 1 from runs where kind = 'rollback' and ended_at is not null")


def posts_to(fake, channel: str) -> list[dict]:
    """Successful chat.postMessage calls to a channel."""
    return [
        c.args for c in fake.calls_to("chat.postMessage") if c.ok and c.args["channel"] == channel
    ]


def thread_text(fake) -> str:
    """Everything visible in the incident channel's threads."""
    return "\n".join(
        text_of(m) for root in fake.messages(CHANNEL) for m in fake.thread(CHANNEL, root["ts"])
    )
