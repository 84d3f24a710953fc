"""Messages the bot owes Slack: written in the caller's transaction, delivered in order, once.

Writers call `post` / `update` (`bot.slack.owed`) inside the transaction that changes state,
so a message is owed exactly when the change happened. Every process runs a `Sender`; a
per-channel advisory lock makes one of them deliver a channel's messages, oldest first. Edits
still waiting for the same message are coalesced: only the newest content is sent.

A holder that hangs loses its channel: while it holds the lock its connection is a guarded
session (`guarded_session`), which the server ends, freeing the lock, once it goes silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import asyncpg
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.db.postgres import give_back
from bot.slack.guarded_session import abandon, begin_guarded, while_away
from bot.slack.owed import OwedPost, owed_count, post, update
from bot.slack.responder import tell_requester

log = logging.getLogger(__name__)
# The writers' side (bot.slack.owed), kept under this module's name for every caller.
__all__ = ["OwedPost", "Sender", "owed_count", "post", "update"]

CHANNEL_LOCK_CLASS = 7_100_002  # advisory lock key space: one deliverer per channel
NOTIFY_CHANNEL = "rollback_outbox"  # notified when a channel's oldest owed row commits (013)
DISPATCH_GAP = 0.05  # seconds: at most 20 looks for due messages a second, however busy
METADATA_TYPE = "rollback_bot_message"  # every post carries its outbox key in its metadata
# Slack errors that retrying cannot fix: the message is given up and the reason logged.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "invalid_arguments",
        "no_text",
        "restricted_action",
        "too_many_attachments",
        "thread_missing",
    }
)
# Errors of the bot's whole setup (token, scopes), not of one message: keep owing and say so.
SETUP_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope"}
)


def slack_error_code(error: SlackApiError) -> str:
    """Slack's error code, also when the answer was not JSON (a proxy's 502 page)."""
    data = getattr(error.response, "data", None)
    return str(data.get("error", "unknown_error")) if isinstance(data, dict) else "not_json"


class Sender:
    """Delivers owed messages; one per process, safe to run in many processes at once."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: AsyncWebClient,
        *,
        min_interval: float = 1.0,
        poll_interval: float = 1.0,
        bound: float = 30.0,
    ) -> None:
        self.pool, self.client = pool, client
        self.min_interval, self.poll_interval = min_interval, poll_interval
        self.bound = bound  # a holder silent this long loses its channel (the server ends it)
        self._wake = asyncio.Event()
        self._channels: dict[str, asyncio.Task] = {}  # one delivery task per busy channel

    def wake(self) -> None:
        """Look for owed messages now rather than at the next poll."""
        self._wake.set()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; LISTEN wakes it when any process owes something."""
        listener = None
        try:
            try:
                listener = await self.pool.acquire()
                await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError):
                log.warning("outbox: no LISTEN connection; polling only")
            loop = asyncio.get_running_loop()
            while True:
                self._wake.clear()
                looked = loop.time()
                try:
                    await self.dispatch()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("outbox: database unavailable (%s); will retry", error)
                except Exception:  # the sender must outlive any surprise; owed rows stay owed
                    log.exception("outbox: delivery failed; will retry")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                # Commits arriving faster than this are looked at together, not one query each.
                await asyncio.sleep(looked + DISPATCH_GAP - loop.time())
        finally:
            if listener is not None:
                await give_back(self.pool, listener, self._unlisten)
            for task in self._channels.values():
                task.cancel()

    async def _unlisten(self, conn: asyncpg.Connection) -> None:
        await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)  # asyncpg's side
        await conn.execute("unlisten *")  # the server's: an unanswered LISTEN may have held

    async def dispatch(self) -> None:
        """Start a delivery task for each channel that has due messages and none running.

        Channels are independent: a busy incident thread never holds back another channel.
        """
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_DUE_CHANNELS)
        for channel in (r["channel"] for r in rows):
            if channel not in self._channels:
                task = asyncio.create_task(self._deliver_channel(channel))
                self._channels[channel] = task
                task.add_done_callback(lambda done, c=channel: self._delivered(c, done))

    def _delivered(self, channel: str, task: asyncio.Task) -> None:
        """A channel's delivery ended; one that failed unexpectedly says so (its rows stay
        owed, and the next dispatch tries again)."""
        self._channels.pop(channel, None)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "outbox: delivering to %s failed; its messages stay owed and will be retried",
                channel,
                exc_info=task.exception(),
            )

    async def deliver_all(self) -> None:
        """Deliver everything due now and wait for it (used when draining at shutdown)."""
        await self.dispatch()
        await asyncio.gather(*self._channels.values(), return_exceptions=True)

    async def _deliver_channel(self, channel: str) -> None:
        """Deliver a channel's messages oldest first, paced, one process at a time.

        The channel's advisory lock is held while one message is sent and recorded, not
        across the pacing pause, so no pool connection sits idle while we wait. From before
        the lock is taken until after it is released the connection is inside a transaction
        (`_begin`), so the server ends the session, and the lock with it, if we go silent.
        """
        while True:
            async with self.pool.acquire() as conn:
                await conn.execute(begin_guarded(self.bound))
                finished = False
                try:
                    locked = await conn.fetchval(
                        "select pg_try_advisory_lock($1, hashtext($2))", CHANNEL_LOCK_CLASS, channel
                    )
                    if not locked:
                        return  # another process is delivering this channel
                    row = await _head(conn, channel)
                    going_on = row is not None and await self._deliver(conn, row)
                    # One query string: the session is never outside a transaction holding it.
                    await conn.execute("commit; select pg_advisory_unlock_all()")
                    finished = True
                finally:
                    if not finished and not conn.is_closed():
                        await abandon(conn)
                if not going_on:
                    return
            if self.min_interval:
                await asyncio.sleep(self.min_interval)

    async def _deliver(self, conn: asyncpg.Connection, row: asyncpg.Record) -> bool:
        """Send one message's newest content; False means stop this channel for now."""
        key = row["message_key"]
        latest = await conn.fetchrow(_LATEST, key)
        payload = latest["payload"]
        # Counted before sending: a retry then knows an earlier attempt may have reached Slack.
        # Committed in the same query string that opens the next transaction, so the channel
        # stays guarded without a gap; what follows the send commits with the lock's release.
        await conn.execute("update outbox set attempts = attempts + 1 where id = $1", row["id"])
        await conn.execute(f"commit; {begin_guarded(self.bound)}")
        try:
            if row["ts"] is None:
                ts = await self._post(conn, row, payload)
                await conn.execute(
                    "update messages set ts = $2, posted_at = now() where key = $1", key, ts
                )
                await _close(conn, key, latest["id"], "sent")
                return True
            await while_away(
                self.bound,
                conn,
                self.client.chat_update(
                    channel=row["channel"],
                    ts=row["ts"],
                    text=payload["text"],
                    blocks=payload["blocks"] or [],
                ),
            )
        except SlackApiError as error:
            code = slack_error_code(error)
            if code in SETUP_ERRORS:
                log.error(
                    "outbox: Slack says %s: check SLACK_BOT_TOKEN and the app's scopes; "
                    "messages stay owed until it is fixed",
                    code,
                )
            if code not in PERMANENT_ERRORS:
                return await _postpone(conn, row, code)
            log.error("outbox: Slack refused %s %s: %s; giving it up", row["op"], key, code)
            await _close(conn, key, latest["id"], f"failed: {code}")
            await while_away(self.bound, conn, tell_requester(payload, code))
            await _note_failure(conn, payload, code)
            return True
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return await _postpone(conn, row, type(error).__name__)
        await _close(conn, key, latest["id"], "sent")
        return True

    async def _post(self, conn: asyncpg.Connection, row: asyncpg.Record, payload: dict) -> str:
        thread_ts = None
        if row["thread_key"]:
            thread_ts = await conn.fetchval(
                "select ts from messages where key = $1", row["thread_key"]
            )
            if thread_ts is None:
                raise SlackApiError("thread root was never posted", {"error": "thread_missing"})
        if row["attempts"] > 0 and (
            found := await while_away(self.bound, conn, self._find_posted(row, thread_ts))
        ):
            log.info(
                "outbox: %s was already posted (ts %s); not posting again",
                row["message_key"],
                found,
            )
            return found
        response = await while_away(
            self.bound,
            conn,
            self.client.chat_postMessage(
                channel=row["channel"],
                text=payload["text"],
                blocks=payload["blocks"],
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                metadata={
                    "event_type": METADATA_TYPE,
                    "event_payload": {"key": row["message_key"]},
                },
            ),
        )
        return response["ts"]

    async def _find_posted(self, row: asyncpg.Record, thread_ts: str | None) -> str | None:
        """After an attempt whose outcome is unknown, look for our message by its metadata."""
        oldest = f"{row['created_at'].timestamp() - 60:.6f}"
        try:
            if thread_ts:
                response = await self.client.conversations_replies(
                    channel=row["channel"],
                    ts=thread_ts,
                    oldest=oldest,
                    include_all_metadata=True,
                    limit=200,
                )
            else:
                response = await self.client.conversations_history(
                    channel=row["channel"], oldest=oldest, include_all_metadata=True, limit=200
                )
        except SlackApiError as error:
            # Without history scopes we can't tell; posting again risks a duplicate, which is
            # better than losing the message.
            log.warning(
                "outbox: can't check whether %s was posted (%s)",
                row["message_key"],
                slack_error_code(error),
            )
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == METADATA_TYPE
                and (metadata.get("event_payload") or {}).get("key") == row["message_key"]
            ):
                return message["ts"]
        return None


# Channels whose oldest owed row is due: one index probe per channel that owes anything,
# however many rows each owes (a loose index scan, skipping from channel to channel).
_DUE_CHANNELS = (
    "with recursive owing (channel) as ("
    " (select channel from outbox where done_at is null order by channel limit 1)"
    " union all"
    " select (select o.channel from outbox o where o.done_at is null and o.channel > owing.channel"
    "   order by o.channel limit 1)"
    " from owing where owing.channel is not null)"
    " select channel from owing where channel is not null"
    " and (select not_before <= now() from outbox where done_at is null and channel = owing.channel"
    "   order by id limit 1)"
)


_HEAD = (
    "select o.id, o.message_key, o.op, o.attempts, o.created_at, o.not_before <= now() as due,"
    " m.channel, m.thread_key, m.ts"
    " from outbox o join messages m on m.key = o.message_key"
    " where o.channel = $1 and o.done_at is null"
    " order by o.id limit 1"
)
# The newest owed content of one message: edits still waiting are coalesced into it.
# `op is not null` (always true) names outbox_pending_by_message's predicate (migration 012).
_LATEST = (
    "select id, payload from outbox where message_key = $1 and done_at is null"
    " and op is not null order by id desc limit 1"
)


async def _head(conn: asyncpg.Connection, channel: str) -> asyncpg.Record | None:
    """The channel's oldest owed row, if it is due.

    Order is kept: a postponed row (Slack said wait) holds back every later one in its channel.
    """
    row = await conn.fetchrow(_HEAD, channel)
    return row if row is not None and row["due"] else None


async def _close(conn: asyncpg.Connection, key: str, up_to: int, outcome: str) -> None:
    await conn.execute(
        "update outbox set done_at = now(), outcome = $3"
        " where message_key = $1 and id <= $2 and done_at is null and op is not null",
        key,
        up_to,
        outcome,
    )


async def _postpone(conn: asyncpg.Connection, row: asyncpg.Record, reason: str) -> bool:
    delay = min(60, 2 ** min(row["attempts"], 6))
    log.warning(
        "outbox: %s %s not delivered (%s); retry in %ss",
        row["op"],
        row["message_key"],
        reason,
        delay,
    )
    await conn.execute(
        "update outbox set last_error = $2,"
        " not_before = now() + make_interval(secs => $3) where id = $1",
        row["id"],
        reason,
        float(delay),
    )
    return False


async def _note_failure(conn: asyncpg.Connection, payload: dict, code: str) -> None:
    """Say in the given thread that a message could not be posted, and why."""
    if not payload.get("failure_note"):
        return
    thread_key, sentence = payload["failure_note"]
    channel = await conn.fetchval("select channel from messages where key = $1", thread_key)
    if channel is not None:
        await post(
            conn,
            channel=channel,
            text=f":warning: {sentence} (Slack: {code})",
            thread_key=thread_key,
        )
