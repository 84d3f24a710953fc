"""Run `rollback-bot serve` in Socket Mode as users do, and talk to it as Slack does: envelopes
over the fake Slack's WebSocket (the same slash-command and click payloads as HTTP mode)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl

import aiohttp

from bot.demo.standin.socket_mode import Envelope
from tests.e2e.harness import REPO, free_port
from tests.fake_slack.server import FakeSlack
from tests.slack_requests import block_actions_body, slash_command_body, view_submission_body

APP_TOKEN = "xapp-1-A0001-test-token"


@dataclass
class SocketBot:
    """One `rollback-bot serve` subprocess in Socket Mode (SLACK_APP_TOKEN set)."""

    env: dict[str, str]
    log_path: Path
    fake: FakeSlack
    health_port: int | None = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    async def launch(self, *args: str) -> SocketBot:
        """Start the process (extra command-line args after `serve`); don't wait for anything."""
        if self.health_port is not None:
            args = ("--health-port", str(self.health_port), *args)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", *args,
                env=self.env, cwd=str(REPO), stdout=log, stderr=log,
            )  # fmt: skip
        return self

    async def start(self, timeout: float = 60.0) -> SocketBot:
        """Start it and wait until it holds a new Socket Mode connection (and is healthy)."""
        before = self.fake.socket_mode.opened
        await self.launch()
        deadline = time.monotonic() + timeout
        while self.fake.socket_mode.opened <= before:
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"the bot did not connect; its log:\n{self.logs()}")
            await asyncio.sleep(0.05)
        if self.health_port is not None:
            await self.wait_health(200, deadline - time.monotonic())
        return self

    def logs(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def health(self) -> tuple[int, dict]:
        """(status, JSON body) of GET /healthz on the health port; (0, {}) if nothing answers."""
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return response.status, await response.json()
        except aiohttp.ClientError:
            return 0, {}

    async def wait_health(self, status: int, timeout: float = 20.0) -> dict:
        """Wait until /healthz answers `status`; its body."""
        deadline = time.monotonic() + timeout
        while True:
            got, body = await self.health()
            if got == status:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"/healthz answered {got} {body}, not {status}\n{self.logs()}")
            await asyncio.sleep(0.1)

    async def wait_exit(self, timeout: float) -> int | None:
        """The exit status once the process ends within `timeout` seconds, else None."""
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            return None

    async def stop(self, sig: int, timeout: float = 30.0) -> int | None:
        """Send `sig` and wait for the exit; kill it if it won't go."""
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        code = await self.wait_exit(timeout)
        if code is None:
            self.process.kill()
            await self.process.wait()
        return code


async def command(fake: FakeSlack, text: str, *, user: str, channel: str, response_url: str):
    """`/rollback <text>` as a `slash_commands` envelope (the fields Slack posts in HTTP mode)."""
    body = slash_command_body(text, user_id=user, channel_id=channel, response_url=response_url)
    return await fake.socket_mode.send("slash_commands", dict(parse_qsl(body.decode())))


async def click(
    fake: FakeSlack,
    *,
    user: str,
    action_id: str,
    value: str,
    channel: str,
    message_ts: str,
    response_url: str,
) -> Envelope:
    """A button press as an `interactive` envelope carrying the block_actions payload."""
    body = block_actions_body(
        user_id=user,
        action_id=action_id,
        value=value,
        channel_id=channel,
        message_ts=message_ts,
        response_url=response_url,
    )
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    return await fake.socket_mode.send("interactive", payload)


async def submit(
    fake: FakeSlack, *, user: str, values: dict, private_metadata: str, callback_id: str
) -> Envelope:
    """A modal submitted, as an `interactive` envelope carrying the view_submission payload."""
    body = view_submission_body(
        user_id=user, callback_id=callback_id, values=values, private_metadata=private_metadata
    )
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    return await fake.socket_mode.send("interactive", payload)
