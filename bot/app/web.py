"""The aiohttp apps: HTTP mode (POST /slack/events, GET /healthz); Socket Mode's GET /healthz."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_sdk.signature import SignatureVerifier

from actions.model import Runbook
from bot.app.runtime import Runtime, running
from bot.settings import Settings

log = logging.getLogger(__name__)
RUNTIME = web.AppKey("runtime", Runtime)
MAX_BODY = 1024 * 1024  # Slack's payloads are far smaller; refuse anything bigger


def build_web_app(settings: Settings, runbook: Runbook, dsn: str) -> web.Application:
    """Routes plus a cleanup context that owns the runtime for the app's lifetime."""
    app = web.Application(client_max_size=MAX_BODY)

    async def runtime_ctx(app: web.Application):
        async with running(settings, runbook, dsn) as runtime:
            app[RUNTIME] = runtime
            # What start-up built lives as long as the process: keep it out of every
            # collection, so garbage-collector pauses stay short while serving.
            gc.collect()
            gc.freeze()
            yield

    app.cleanup_ctx.append(runtime_ctx)
    app.router.add_post("/slack/events", slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def slack_events(request: web.Request) -> web.Response:
    """Hand Slack's request to Bolt (which verifies the signature and timestamp)."""
    runtime = request.app[RUNTIME]
    try:
        bolt_request = await to_bolt_request(request)
        bolt_response = await runtime.bolt.async_dispatch(bolt_request)
        if bolt_response.status >= 500:  # Bolt could not match a malformed (signed) payload
            raise ValueError(f"Bolt answered {bolt_response.status}")
        return await to_aiohttp_response(bolt_response)
    except Exception as error:  # a payload Bolt can't make sense of (`payload=[]`, not JSON, …)
        body = await request.text()
        verifier = SignatureVerifier(runtime.settings.slack_signing_secret or "")
        if not verifier.is_valid_request(body, dict(request.headers)):
            return web.json_response({"error": "invalid request"}, status=401)
        log.info("malformed Slack payload refused: %s", type(error).__name__)
        return web.json_response({"error": "malformed payload"}, status=400)


async def healthz(request: web.Request) -> web.Response:
    """200 once the database answers and the runbook is loaded; 503 otherwise. The body names
    the process that answered (`pid`): behind a load balancer, which one it was."""
    runtime = request.app.get(RUNTIME)
    if runtime is not None and await runtime.healthy():
        body = {"status": "ok", "runbook": str(runtime.runbook.path), "pid": os.getpid()}
        return web.json_response(body)
    return web.json_response({"status": "unavailable", "database": "unreachable"}, status=503)


def socket_health_app(
    connected: Callable[[], bool], database_ok: Callable[[], Awaitable[bool | None]]
) -> web.Application:
    """Socket Mode's GET /healthz: 200 only while the socket is connected and the database
    answers; 503 otherwise, the body saying which is down (`database_ok()` is None while the
    database is not in use yet: still connecting to Slack)."""
    app = web.Application()

    async def socket_healthz(request: web.Request) -> web.Response:
        socket_up, database = connected(), await database_ok()
        healthy = socket_up and database is True
        body = {
            "status": "ok" if healthy else "unavailable",
            "socket": "connected" if socket_up else "disconnected",
            "database": {True: "ok", False: "unreachable", None: "not checked yet"}[database],
        }
        return web.json_response(body, status=200 if healthy else 503)

    app.router.add_get("/healthz", socket_healthz)
    return app
