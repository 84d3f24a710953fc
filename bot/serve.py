"""`rollback-bot serve`: HTTP mode (aiohttp) or Socket Mode, both stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from actions.model import Runbook
from bot.settings import Settings

log = logging.getLogger(__name__)


def serve(
    settings: Settings, runbook: Runbook, dsn: str, *, http: bool, host: str, port: int
) -> int:
    """Migrate, then serve until SIGTERM/SIGINT; return the exit code."""
    from bot.cli import run_migrations

    run_migrations(dsn)
    if http:
        from bot.web import build_web_app

        log.info("serving HTTP on %s:%s (POST /slack/events, GET /healthz)", host, port)
        try:
            web.run_app(
                build_web_app(settings, runbook, dsn),
                host=host,
                port=port,
                print=None,
                shutdown_timeout=15,
            )
        except OSError as error:  # the port is taken, or the address isn't ours
            from bot.cli import Stop

            raise Stop(
                f"can't listen on {host}:{port} ({error.strerror or error}); "
                "choose another with --port or PORT."
            ) from None
        return 0
    from slack_sdk.errors import SlackApiError

    from bot.cli import Stop
    from bot.outbox import slack_error_code

    try:
        asyncio.run(_socket_mode(settings, runbook, dsn))
    except SlackApiError as error:
        raise Stop(
            f"Slack refused the Socket Mode connection ({slack_error_code(error)}); check "
            "SLACK_APP_TOKEN (an xapp- token with connections:write) and SLACK_BOT_TOKEN."
        ) from None
    return 0


async def _socket_mode(settings: Settings, runbook: Runbook, dsn: str) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.runtime import running

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with running(settings, runbook, dsn) as runtime:
        handler = AsyncSocketModeHandler(runtime.bolt, settings.slack_app_token)
        await handler.connect_async()
        log.info("connected to Slack in Socket Mode")
        await stop.wait()
        await handler.close_async()
