"""One place that turns a handler's outcome into a private answer, whatever went wrong."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable

import asyncpg
from slack_sdk.errors import SlackApiError

from bot.services import Background, Refusal
from bot.slack.outbox import slack_error_code

log = logging.getLogger(__name__)

DATABASE_DOWN = (
    ":warning: The bot's database is unavailable right now, so nothing was changed. "
    "Try again in a minute; if it persists, check the bot's PostgreSQL."
)
UNEXPECTED = (
    ":warning: Something went wrong on my side and nothing was changed. "
    "Try again; if it happens again, the bot's logs have the details."
)


def clicked_channel(body: dict) -> str | None:
    """The channel a button was pressed in (the payload's channel, else its container's)."""
    channel = body.get("channel") if isinstance(body.get("channel"), dict) else {}
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    found = channel.get("id") or container.get("channel_id")
    return found if isinstance(found, str) else None


ACK_BUDGET = 2.5  # seconds: Slack waits 3 s for the acknowledgement
STILL_WORKING = ":hourglass_flowing_sand: Still working on that; I'll answer here when it's done."


async def ack_with_outcome(ack, respond, work: Awaitable[object], *, after: Background) -> None:
    """Acknowledge done work: await `work` (it commits), then ack with its answer.

    The HTTP response Slack gets is the outcome, so an acknowledged change is never lost:
    nothing the user was told happened is left to do after the ack. Should the work take
    longer than Slack waits (a database that hangs), the ack says it is still in progress
    (not that anything happened) and the outcome follows through the response_url, from
    `after`.
    """
    task = asyncio.ensure_future(outcome(work))
    done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET)
    if not done:
        await ack(response_type="ephemeral", text=STILL_WORKING)
        after.start(answer_safely(respond, task))
        return
    answer = task.result()
    if answer is None:
        await ack()
    elif isinstance(answer, dict):
        await ack(response_type="ephemeral", **answer)
    else:
        await ack(response_type="ephemeral", text=answer)


async def done_then_answer(ack, respond, work: Awaitable[object], *, after: Background) -> None:
    """For buttons and forms: do (and commit) `work`, then acknowledge; `after` answers
    privately.

    Bolt answers Slack only when this returns, so work slower than Slack waits (a row another
    transaction holds) is acknowledged at ACK_BUDGET anyway, or Slack shows an error (and keeps
    a form open, to be submitted again) while the change still commits. The person is told it
    is still in progress, then its outcome, privately.
    """
    task = asyncio.ensure_future(outcome(work))
    done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET)
    await ack()
    after.start(answer_safely(respond, task) if done else _still_working(respond, task))


async def _still_working(respond, task: asyncio.Future) -> None:
    await answer_safely(respond, _ready(STILL_WORKING))
    await answer_safely(respond, task)


async def ack_then(ack, respond, work: Awaitable[object], *, after: Background) -> None:
    """For work that may outlast Slack's 3 s and changes nothing the ack promises: acknowledge
    at once; `after` does `work` and answers privately with its outcome."""
    await ack()
    after.start(answer_safely(respond, work))


async def _ready(value):
    return value


async def answer_safely(respond, work: Awaitable[object]) -> None:
    """Await `work`; answer its text (or the reason it failed) to the user, ephemerally."""
    text = await outcome(work)
    fields = text if isinstance(text, dict) else {"text": text}
    if fields.get("text"):
        try:
            await respond(**fields, response_type="ephemeral", replace_original=False)
        except Exception as error:  # the answer is a courtesy; never let it crash the handler
            log.warning("could not answer the user: %s", error)


async def outcome(work: Awaitable[object]) -> str | dict | None:
    """Await `work`; its answer (text, or a dict of message fields), or why it failed."""
    try:
        result = await work
        text = result if isinstance(result, str | dict) else None
    except Refusal as refusal:
        text = f":warning: {refusal}"
    except (
        ConnectionError,  # refused or reset: the database host is not answering
        socket.gaierror,
        TimeoutError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
    ) as error:
        log.warning("database unavailable: %s", error)
        text = DATABASE_DOWN
    except SlackApiError as error:
        code = slack_error_code(error)
        log.warning("Slack refused a call: %s", code)
        text = f":warning: Slack refused that ({code}). Try again in a moment."
    except Exception:
        log.exception("handler failed")
        text = UNEXPECTED
    return text
