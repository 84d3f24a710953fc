"""Run the fake Slack by hand: `python -m bot.demo.standin --port 8085`, then point the bot's
SLACK_API_URL at the printed base URL. Every call is logged; Ctrl-C stops it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .server import FakeSlack


async def _serve(host: str, port: int, tokens: list[str]) -> None:
    async with FakeSlack(host=host, port=port) as fake:
        fake.tokens.update(tokens)
        print(
            f"fake Slack Web API at {fake.base_url} (tokens: {', '.join(sorted(fake.tokens))})",
            flush=True,
        )
        await asyncio.Event().wait()


def main() -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m bot.demo.standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085, help="0 picks a free port")
    parser.add_argument("--token", action="append", default=[], help="another accepted token")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(options.host, options.port, options.token))


if __name__ == "__main__":
    main()
