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
    settings: Settings,
    runbook: Runbook,
    dsn: str,
    *,
    http: bool,
    host: str,
    port: int,
    health_port: int | None = None,
) -> int:
    """Migrate, then serve until SIGTERM/SIGINT; return the exit code.

    A token Slack refuses for good stops start-up with one line naming the setting (exit 1).
    """
    from bot.slack.socket_mode import Refused
    from bot.startup import Stop, run_migrations

    run_migrations(dsn)
    try:
        if http:
            return _http_mode(settings, runbook, dsn, host=host, port=port)
        asyncio.run(_socket_mode(settings, runbook, dsn, host=host, health_port=health_port))
    except Refused as refused:
        raise Stop(str(refused)) from None
    return 0


def _http_mode(settings: Settings, runbook: Runbook, dsn: str, *, host: str, port: int) -> int:
    from bot.app.web import build_web_app
    from bot.slack.socket_mode import check_bot_token
    from bot.startup import Stop

    # Slack's requests can arrive without Slack answering us, so only a refusal stops here.
    asyncio.run(
        check_bot_token(
            settings.slack_api_url, settings.slack_bot_token, asyncio.Event(), retry=False
        )
    )
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
        raise Stop(
            f"can't listen on {host}:{port} ({error.strerror or error}); "
            "choose another with --port or PORT."
        ) from None
    return 0


async def _socket_mode(
    settings: Settings, runbook: Runbook, dsn: str, *, host: str, health_port: int | None
) -> None:
    from bot.app.runtime import Runtime, running
    from bot.slack.socket_mode import SocketModeConnection, check_bot_token

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    connection = SocketModeConnection(
        app_token=settings.slack_app_token, api_url=settings.slack_api_url
    )
    current: list[Runtime] = []  # the runtime, once started

    async def database_ok() -> bool | None:
        return await current[0].healthy() if current else None

    health = await _start_health(host, health_port, lambda: connection.connected, database_ok)
    try:
        await check_bot_token(settings.slack_api_url, settings.slack_bot_token, stop, retry=True)
        url = None if stop.is_set() else await connection.first_url(stop)  # before the runtime
        if url is None:
            log.info("stopped before connecting to Slack")
            return
        async with running(settings, runbook, dsn) as runtime:
            connection.bolt = runtime.bolt
            current.append(runtime)
            await connection.run(stop, url)
            log.info("Socket Mode connection closed; finishing what this process owes")
            current.clear()
    finally:
        if health is not None:
            await health.cleanup()


async def _start_health(host: str, port: int | None, connected, database_ok):
    """GET /healthz on host:port (when a port is given): 200 only while connected + DB answers."""
    if port is None:
        return None
    from bot.app.web import socket_health_app
    from bot.startup import Stop

    runner = web.AppRunner(socket_health_app(connected, database_ok), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise Stop(
            f"can't listen on {host}:{port} for /healthz ({error.strerror or error}); "
            "choose another with --health-port or PORT."
        ) from None
    log.info("serving GET /healthz on %s:%s", host, port)
    return runner
