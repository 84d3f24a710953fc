"""The fake Slack in a process of its own, so its work is not timed as the load generator's.

    python -m benchmarks.fake_server --port 8085 --hooks 20000

Response URLs `<root>/response/h0 … h<N-1>` exist from the start (a request's response URL
must be known before the request is sent, and this process can't be asked for new ones).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from tests.fake_slack.server import FakeSlack


async def _serve(port: int, hooks: int) -> None:
    async with FakeSlack(port=port) as fake:
        for number in range(hooks):
            fake.response_url(f"h{number}")
        await asyncio.Event().wait()


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_server")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--hooks", type=int, default=20_000)
    options = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(options.port, options.hooks))


if __name__ == "__main__":
    main()
