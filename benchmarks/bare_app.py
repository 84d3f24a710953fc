"""The ack baseline: a bare Bolt `AsyncApp` on aiohttp whose handlers only acknowledge.

    python -m benchmarks.bare_app --port 3001

Reads SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_API_URL like the bot, and serves the
same paths (POST /slack/events, GET /healthz), so both are started and measured alike. Bolt's
defaults, the baseline the ack targets were set against: `process_before_response=False`, so
each answer waits for Bolt's 10 ms check that the handler has acknowledged (the bot doesn't).
"""

from __future__ import annotations

import argparse
import logging
import os
import re

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def build_app() -> web.Application:
    """Bolt with a `/rollback` command and any button, each answered by `ack()` alone."""
    client = AsyncWebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
    )
    bolt = AsyncApp(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

    @bolt.command("/rollback")
    async def rollback(ack) -> None:
        await ack()

    @bolt.action(re.compile(".*"))
    async def clicked(ack) -> None:
        await ack()

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = bolt.web_app(path="/slack/events")
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    """Serve until SIGTERM, logging like the bot does."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    options = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    web.run_app(build_app(), host=options.host, port=options.port, print=None)


if __name__ == "__main__":
    main()
