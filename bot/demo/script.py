"""The incident the demo plays, through the bot's real front door: signed slash commands and
button clicks from two people, answered by the bot through the Slack stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.demo.stage import ALICE, BOB, CHANNEL, NOTICE_CHANNEL, PEOPLE, DemoError, Stage
from bot.demo.standin.slack_requests import block_actions_body, sign, slash_command_body
from bot.demo.transcript import Transcript, Watcher
from bot.slack import outbox
from bot.slack.ids import Action

ENDED = ("succeeded", "failed", "aborted", "cancelled", "waiting", "interrupted")
# Orders customers placed while the integration ran: a database restore discards them, and
# the bot's "What the rollback discarded" message names them.
ORDERS_DURING_INTEGRATION = (
    "INSERT INTO orders (customer_id, status, total, created_at) "
    "SELECT 1, 'paid', 42.50, now() FROM generate_series(1, 3);"
)
TABLES_SQL = "select tablename from pg_tables where schemaname = 'public' order by tablename"


@dataclass
class Outcome:
    """What the demo saw and checked."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # moment -> table -> rows
    database_restored: bool = False  # identical to before the break
    files_restored: bool = False  # the project's files, identical to before the break
    backup_state: str = ""
    rollback_state: str = ""
    refused: bool = False
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notice_posted: bool = False
    postmortem: list[str] = field(default_factory=list)  # where the post-mortem ended up
    discarded: str = ""  # what the bot said the rollback discarded (its stored comparison)

    @property
    def restored(self) -> bool:
        """Database and project files both identical to before the break."""
        return self.database_restored and self.files_restored

    @property
    def stopped(self) -> bool:
        """The run stopped at a failed step (or was interrupted): people must decide."""
        return self.rollback_state in ("waiting", "interrupted")


class People:
    """Alice and Bob in Slack: each command and click is a signed request to /slack/events."""

    def __init__(self, stage: Stage, transcript: Transcript, watcher: Watcher) -> None:
        self.stage, self.transcript, self.watcher = stage, transcript, watcher

    async def _post(self, body: bytes, user: str) -> None:
        headers = sign(body, self.stage.secret)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.stage.bot_url + "/slack/events", data=body, headers=headers
            ) as answer,
        ):
            status, reply = answer.status, await answer.text()
        if status != 200:
            raise DemoError(f"the bot answered HTTP {status}: {reply[:200]}")
        self.watcher.poll()
        if reply.strip().startswith("{"):  # an acknowledgement with a body: shown to `user` only
            ack = json.loads(reply)
            if ack.get("text") or ack.get("blocks"):
                self.watcher.ephemeral(ack, user, CHANNEL)

    def _response_url(self, user: str, message_ts: str | None = None) -> str:
        url = self.stage.fake.response_url(channel=CHANNEL, message_ts=message_ts)
        self.watcher.expect_response(url, user=user, channel=CHANNEL)
        return url

    async def command(self, user: str, text: str) -> None:
        """`user` types `/rollback text` in the ops channel."""
        self.transcript.action(user, f"/rollback {text}", channel=CHANNEL)
        body = slash_command_body(
            text,
            user_id=user,
            user_name=PEOPLE[user],
            channel_id=CHANNEL,
            response_url=self._response_url(user),
        )
        await self._post(body, user)

    async def click(self, user: str, message: dict[str, Any], action: Action) -> None:
        """`user` clicks the button `action` of `message` (and confirms its dialog)."""
        found = find_button(message, action)
        if found is None:
            raise DemoError(f"no {action.value} button in the message")
        block, button = found
        said = f"clicks [{button['text']['text']}]"
        if confirm := button.get("confirm"):
            said += f", then [{confirm['confirm']['text']}] in “{confirm['title']['text']}”"
        thread = message.get("thread_ts", "")
        self.transcript.action(user, said, channel=CHANNEL, thread=thread)
        body = block_actions_body(
            user_id=user,
            user_name=PEOPLE[user],
            button=button,
            block_id=block.get("block_id", ""),
            channel_id=CHANNEL,
            message=message,
            response_url=self._response_url(user, message["ts"]),
        )
        await self._post(body, user)


def find_button(message: dict[str, Any], action: Action) -> tuple[dict, dict] | None:
    """(block, button) of the button with this action id in the message, if it has one."""
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == action.value:
                return block, element
    return None


def message_with(stage: Stage, action: Action) -> dict[str, Any] | None:
    """The latest message in the ops channel (or its threads) offering this button."""
    messages = stage.fake.channels.everything(CHANNEL)
    return next((m for m in reversed(messages) if find_button(m, action)), None)


async def until(check: Callable[[], Any], watcher: Watcher, *, timeout: float, what: str) -> Any:
    """Poll (showing what arrives meanwhile) until `check()` gives something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        watcher.poll()
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise DemoError(f"gave up waiting for {what} after {timeout:.0f}s")
        await asyncio.sleep(0.1)


async def settle(stage: Stage, watcher: Watcher, *, timeout: float = 30.0) -> None:
    """Wait until the bot owes Slack nothing and nothing new arrived for a moment."""
    quiet = 0
    deadline = time.monotonic() + timeout
    while quiet < 4 and time.monotonic() < deadline:
        added = watcher.poll()
        owed = await outbox.owed_count(stage.db)
        quiet = quiet + 1 if not added and not owed else 0
        await asyncio.sleep(0.1)


async def last_run_state(stage: Stage, kind: str) -> str:
    """The state of the latest run of this kind ('' when there is none)."""
    state = await stage.db.fetchval(
        "select state from runs where kind = $1 order by id desc limit 1", kind
    )
    return state or ""


async def row_counts(stage: Stage) -> dict[str, int]:
    """Rows of every table of the shop database."""
    tables = (await asyncio.to_thread(stage.sandbox.psql, TABLES_SQL)).split()
    query = " union all ".join(
        f"select '{name}', count(*) from public.\"{name}\"" for name in tables
    )
    text = await asyncio.to_thread(stage.sandbox.psql, query) if tables else ""
    pairs = (line.split("|") for line in text.splitlines() if "|" in line)
    return {name: int(count) for name, count in pairs}


async def play(stage: Stage, transcript: Transcript, watcher: Watcher, scenario: str) -> Outcome:
    """The whole incident: backup, failure, declaration, refusal, approval, run, verification."""
    people, outcome = People(stage, transcript, watcher), Outcome()
    transcript.narrate(
        "1 · Before the integration: the pre-integration backup",
        "@alice asks the bot for the backup the plan requires.",
    )
    await people.command(ALICE, "backup")

    async def backup_ended() -> str:
        state = await last_run_state(stage, "backup")
        return state if state in ENDED else ""

    outcome.backup_state = await until(backup_ended, watcher, timeout=120, what="the backup")
    await settle(stage, watcher)
    if outcome.backup_state != "succeeded":
        raise DemoError(f"the backup ended {outcome.backup_state}; see {stage.log_path}")
    before = await asyncio.to_thread(stage.sandbox.snapshot)
    outcome.counts["before"] = await row_counts(stage)

    transcript.narrate(
        "2 · The WMS integration fails",
        "The demo breaks the sandbox as a failed integration would: orders changed "
        "and deleted, a table replaced,\na half-merged branch, uncommitted files, "
        "a changed .env.",
    )
    await asyncio.to_thread(stage.sandbox.break_like_failed_integration)
    outcome.counts["broken"] = await row_counts(stage)
    transcript.note(
        f"Rows of {stage.shop_db} the failure changed:\n" + _differences(outcome.counts)
    )
    await asyncio.to_thread(stage.sandbox.psql, ORDERS_DURING_INTEGRATION)  # lost by a restore
    transcript.note("Meanwhile customers placed 3 orders, which a database restore discards.")

    transcript.narrate("3 · @alice declares a CRITICAL incident")
    await people.command(ALICE, f"declare critical {scenario} WMS sync is corrupting orders")
    request = await until(
        lambda: message_with(stage, Action.APPROVE),
        watcher,
        timeout=30,
        what="the approval request",
    )
    await settle(stage, watcher)

    transcript.narrate(
        "4 · @alice tries to approve her own rollback",
        "The plan needs a second person: the bot refuses, only @alice sees why.",
    )
    shown = len(transcript.entries)
    await people.click(ALICE, request, Action.APPROVE)
    await until(
        lambda: any(e.kind == "ephemeral" for e in transcript.entries[shown:]),
        watcher,
        timeout=15,
        what="the bot's answer to @alice",
    )
    outcome.refused = await last_run_state(stage, "rollback") == ""
    await settle(stage, watcher)

    transcript.narrate(
        "5 · @bob approves; the bot runs the plan and verifies",
        f"Scenario {scenario}: every step posts in the incident's thread; "
        "the progress message at its top is kept current.",
    )
    await people.click(BOB, request, Action.APPROVE)

    async def rollback_ended() -> str:
        state = await last_run_state(stage, "rollback")
        return state if state in ENDED else ""

    outcome.rollback_state = await until(rollback_ended, watcher, timeout=300, what="the rollback")
    await settle(stage, watcher)
    if importlib.util.find_spec("bot.comms.notice") and not outcome.stopped:  # communications work
        await _wait_briefly(lambda: stage.fake.messages(NOTICE_CHANNEL), watcher)
        await settle(stage, watcher)
    outcome.notice_posted = bool(stage.fake.messages(NOTICE_CHANNEL))
    outcome.checks = [
        (row["name"], row["passed"])
        for row in await stage.db.fetch(
            "select c.name, c.passed from check_results c join runs r on r.id = c.run_id"
            " where r.kind = 'rollback' order by c.id"
        )
    ]
    outcome.counts["after"] = await row_counts(stage)
    compared = await stage.db.fetchrow(
        "select * from data_comparisons order by run_id desc limit 1"
    )
    if compared is not None:
        outcome.discarded = (
            compared["error"]
            or f"{compared['discarded_rows']} rows only in the "
            f"failed state (kept in {compared['failed_database']})"
        )
    after = await asyncio.to_thread(stage.sandbox.snapshot)
    outcome.database_restored = after.database == before.database
    outcome.files_restored = after.files == before.files
    return outcome


async def _wait_briefly(check: Callable[[], Any], watcher: Watcher, seconds: float = 10) -> None:
    with contextlib.suppress(DemoError):  # this version may not post it: show what is there
        await until(check, watcher, timeout=seconds, what="the notice")


def _differences(counts: dict[str, dict[str, int]]) -> str:
    before, broken = counts["before"], counts["broken"]
    changes = []
    for table in sorted(before.keys() | broken.keys()):
        old, new = before.get(table), broken.get(table)
        if old != new:
            changes.append(
                f"{table} {old if old is not None else '—'} → "
                f"{new if new is not None else 'dropped'}"
            )
    return "\n".join(changes) or "none"
