"""One place that turns a handler's outcome into a private answer, whatever went wrong."""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable

import asyncpg
from slack_sdk.errors import SlackApiError

from bot.outbox import slack_error_code
from bot.services import Refusal

log = logging.getLogger(__name__)

DATABASE_DOWN = (
    ":warning: The bot's database is unavailable right now, so nothing was changed. "
    "Try again in a minute; if it persists, check the bot's PostgreSQL."
)
UNEXPECTED = (
    ":warning: Something went wrong on my side and nothing was changed. "
    "Try again; if it happens again, the bot's logs have the details."
)


async def answer_safely(respond, work: Awaitable[object]) -> None:
    """Await `work`; answer its text (or the reason it failed) to the user, ephemerally."""
    try:
        result = await work
        text = result if isinstance(result, str) else None
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
    if text:
        try:
            await respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception as error:  # the answer is a courtesy; never let it crash the handler
            log.warning("could not answer the user: %s", error)
