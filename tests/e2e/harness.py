"""Run `rollback-bot serve --http` as users do, and talk to it as Slack does (signed requests)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from bot.demo.stage import DemoError
from bot.demo.stage import start_bot as start_serving
from bot.slack.guard import STILL_WORKING
from tests.fake_slack.server import FakeSlack
from tests.slack_requests import block_actions_body, sign, slash_command_body

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_runbook(
    path: Path,
    *,
    high_after: str = "1h",
    expires: str = "30m",
    approvers: tuple[str, ...] = (),
    workdir: Path | None = None,
    scenarios: str | None = None,
    declarers: tuple[str, ...] = (),
    approvals_required: int = 1,
) -> Path:
    """A small runbook with harmless steps, for tests of the Slack side."""
    approver_list = ", ".join(f'"{a}"' for a in approvers)
    declarer_list = ", ".join(f'"{d}"' for d in declarers)
    scenarios = scenarios or textwrap.dedent("""
        [[scenario]]
        key = "database"
        title = "Database migration failure"
        trigger = "Migration fails"
          [[scenario.step]]
          name = "Stop services"
          run = "echo stopping"
          [[scenario.step]]
          name = "Restore database"
          run = "echo restoring {{ vars.db_name }}"

        [[scenario]]
        key = "full"
        title = "Complete integration failure"
        trigger = "Everything is failing"
          [[scenario.step]]
          name = "Say hello"
          run = "echo hello"
    """)
    path.write_text(
        textwrap.dedent(f"""
        [project]
        name = "Test project"
        workdir = "{workdir or path.parent}"

        [policy]
        high_rollback_after = "{high_after}"
        approval_expires_after = "{expires}"
        approvers = [{approver_list}]
        declarers = [{declarer_list}]
        approvals_required = {approvals_required}

        [notify]
        notice_channels = ["CNOTICE01"]

        [contacts]
        database_admin = "UDBA00001"
        on_call = "UONCALL01"

        [vars]
        db_name = "ecom_os"
        """)
        + scenarios
    )
    return path


@dataclass
class Bot:
    """One `rollback-bot serve --http` subprocess."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Base URL of the bot's HTTP server."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Bot:
        """Start the process as users do and wait until /healthz answers 200."""
        try:
            self.process = await start_serving(self.env, REPO, self.log_path, self.port)
        except DemoError as error:
            raise AssertionError(f"{error}\n{self.logs()}") from None
        return self

    def logs(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send `sig` and wait for the process to exit; its exit code."""
        if self.process is None or self.process.returncode is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()

    async def post(
        self,
        body: bytes,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> tuple[int, str]:
        """POST raw bytes to /slack/events, signed unless headers are given."""
        headers = headers if headers is not None else sign(body, SECRET)
        headers.setdefault("Content-Type", content_type)
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + "/slack/events", data=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def command(
        self, text: str, *, user: str, channel: str, response_url: str
    ) -> tuple[int, str]:
        """Send `/rollback <text>` as `user` in `channel`."""
        body = slash_command_body(text, user_id=user, channel_id=channel, response_url=response_url)
        return await self.post(body)

    async def ask(
        self, text: str, *, user: str, channel: str, response_url: str = "https://hooks.invalid/x"
    ) -> dict:
        """Send `/rollback <text>` and return the acknowledgement's body: the answer itself.

        A state-changing command is done (committed) when Slack gets this body.
        """
        status, reply = await self.command(
            text, user=user, channel=channel, response_url=response_url
        )
        assert status == 200, reply
        return ack_body(reply)

    async def click(
        self,
        *,
        user: str,
        action_id: str,
        value: str,
        channel: str,
        message_ts: str,
        response_url: str,
    ) -> tuple[int, str]:
        """Press a button as `user`."""
        body = block_actions_body(
            user_id=user,
            action_id=action_id,
            value=value,
            channel_id=channel,
            message_ts=message_ts,
            response_url=response_url,
        )
        return await self.post(body)


def ack_body(reply: str) -> dict:
    """The JSON body of an acknowledgement ({} for an empty ack)."""
    return json.loads(reply) if reply.strip().startswith("{") else {}


async def outcome(fake: FakeSlack, ack: dict, response_url: str, timeout: float = 20) -> dict:
    """A command's answer: the acknowledgement's body, unless the bot was still working on it
    (a busy machine) or acked empty; then the first body posted to its response URL."""
    if ack and ack.get("text") != STILL_WORKING:
        return ack
    found = await fake.wait_for(lambda f: f.responses_to(response_url), timeout=timeout)
    return found[0].body


def bot_env(
    *, dsn: str, fake: FakeSlack, runbook: Path, data_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment a test bot runs with (nothing inherited that could change it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ROLLBACK_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DATABASE_URL=dsn,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.base_url,
        ROLLBACK_RUNBOOK=str(runbook),
        ROLLBACK_DATA_DIR=str(data_dir),
        ROLLBACK_SLACK_MIN_INTERVAL="0",
        ROLLBACK_SYNC_INTERVAL="0.5",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


async def fetch(dsn: str, query: str, *args) -> list[asyncpg.Record]:
    """Run one query against the bot's database."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def posts_in(fake: FakeSlack, channel: str) -> list[dict]:
    """The bot's chat.postMessage calls to a channel, as argument dicts."""
    return [
        c.args
        for c in fake.calls_to("chat.postMessage")
        if c.args.get("channel") == channel and c.ok
    ]


def text_of(message: dict) -> str:
    """All the text of a message: its fallback and every text in its blocks."""
    parts = [message.get("text") or ""]

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)
