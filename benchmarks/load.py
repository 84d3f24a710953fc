"""What Slack sends a server, signed, one request or many at once; latencies and percentiles."""

from __future__ import annotations

import asyncio
import gc
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import aiohttp

from bot.slack.ids import Action
from tests.e2e.harness import SECRET
from tests.slack_requests import block_actions_body, sign, slash_command_body

Request = tuple[bytes, dict[str, str]]
MESSAGE_TS = "1700000000.000100"


class HookPool:
    """Response URLs made in advance by `benchmarks.fake_server` (each used a few times)."""

    USES = 4  # Slack (and the fake) allow five posts per response URL

    def __init__(self, root_url: str, count: int) -> None:
        self.root_url, self.count = root_url, count
        self._next = itertools.count()

    def __call__(self) -> str:
        number = next(self._next) // self.USES
        if number >= self.count:
            raise RuntimeError(f"all {self.count} response URLs are used; start more hooks")
        return f"{self.root_url}/response/h{number}"


@dataclass
class Batch:
    """The latencies (seconds) of one batch's answered requests, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class Slack:
    """Plays Slack towards one server: builds signed requests and posts them."""

    url: str  # the server's base URL
    response_urls: Callable[[], str]
    session: aiohttp.ClientSession

    def command(self, text: str, *, user: str, channel: str) -> Request:
        """`/rollback <text>`, signed."""
        body = slash_command_body(
            text, user_id=user, channel_id=channel, response_url=self.response_urls()
        )
        return body, sign(body, SECRET)

    def click(
        self, *, user: str, value: str, channel: str, action: str = Action.APPROVE
    ) -> Request:
        """A button click on a message in `channel`, signed."""
        body = block_actions_body(
            user_id=user,
            action_id=action,
            value=value,
            channel_id=channel,
            message_ts=MESSAGE_TS,
            response_url=self.response_urls(),
        )
        return body, sign(body, SECRET)

    async def send(self, request: Request) -> float:
        """Post one request; its round-trip time. RuntimeError unless answered 200."""
        body, headers = request
        started = time.perf_counter()
        async with self.session.post(self.url + "/slack/events", data=body, headers=headers) as r:
            await r.read()
            elapsed = time.perf_counter() - started
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {(await r.text())[:200]}")
        return elapsed

    async def flood(self, requests: Sequence[Request], concurrency: int) -> Batch:
        """Send `requests` with `concurrency` in flight at all times; every latency.

        The load generator's own garbage collector is held off meanwhile: a full collection
        here takes ~15 ms, and would be timed as the server's.
        """
        batch, queue = Batch(), iter(requests)

        async def worker() -> None:
            for request in queue:
                try:
                    batch.latencies.append(await self.send(request))
                except (aiohttp.ClientError, RuntimeError, TimeoutError) as error:
                    batch.failures.append(str(error) or type(error).__name__)

        gc.collect()
        gc.disable()
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            gc.enable()
        return batch


def session(concurrency: int) -> aiohttp.ClientSession:
    """A client session with room for `concurrency` kept-alive connections."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=30),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (q in 0-100) of non-empty `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]
