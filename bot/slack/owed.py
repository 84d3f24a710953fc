"""What the bot owes Slack, written by the caller in the transaction that changes state.

`post` and `update` owe a message or an edit; `OwedPost` owes a message inside another
statement of the caller's. `bot.slack.outbox` delivers them (and keeps these names).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg


@dataclass(frozen=True)
class OwedPost:
    """A new message to owe, as common table expressions another statement can carry.

    A writer whose change and message must commit together, and whose answer waits for the
    commit, owes the message in its own statement rather than one more round trip.
    """

    channel: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    key: str = field(default_factory=lambda: f"m/{uuid.uuid4().hex}")
    thread_key: str | None = None
    failure_response_url: str | None = None
    failure_note: tuple[str, str] | None = None

    def ctes(self, first: int) -> str:
        """`owed_message` and `owed_post`, their parameters numbered from `$first`."""
        key, channel, thread_key, payload = (f"${n}" for n in range(first, first + 4))
        return (
            f"owed_message as (insert into messages (key, channel, thread_key)"
            f" values ({key}, {channel}, {thread_key}) returning key, channel),"
            f" owed_post as (insert into outbox (message_key, channel, op, payload)"
            f" select key, channel, 'post', {payload}::jsonb from owed_message)"
        )

    def payload(self) -> dict[str, Any]:
        """The outbox row's payload: the message, and what to do if Slack refuses it."""
        return {
            "text": self.text,
            "blocks": self.blocks,
            "failure_response_url": self.failure_response_url,
            "failure_note": self.failure_note,
        }

    def args(self) -> tuple[Any, ...]:
        """The four parameters of `ctes`, in order."""
        return self.key, self.channel, self.thread_key, self.payload()


async def post(
    conn: asyncpg.Connection,
    *,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    key: str | None = None,
    thread_key: str | None = None,
    failure_response_url: str | None = None,
    failure_note: tuple[str, str] | None = None,
) -> str:
    """Owe a new message (in a thread when thread_key names its root); return its key.

    If Slack refuses it for good, `failure_response_url` gets a private explanation and
    `failure_note` (thread key, sentence) is posted in that thread with Slack's reason.
    """
    owed = OwedPost(
        channel,
        text,
        blocks,
        **({"key": key} if key else {}),
        thread_key=thread_key,
        failure_response_url=failure_response_url,
        failure_note=failure_note,
    )
    await conn.execute(f"with {owed.ctes(1)} select", *owed.args())
    return owed.key


async def update(
    conn: asyncpg.Connection, *, key: str, text: str, blocks: list[dict[str, Any]] | None = None
) -> None:
    """Owe an edit of the message `key` (posted earlier, or still owed)."""
    await conn.execute(
        "insert into outbox (message_key, channel, op, payload)"
        " values ($1, (select channel from messages where key = $1), 'update', $2)",
        key,
        {"text": text, "blocks": blocks},
    )


async def owed_count(conn: asyncpg.Connection) -> int:
    """How many outbox rows are still undelivered."""
    return await conn.fetchval("select count(*) from outbox where done_at is null")
