"""FakeSlack: an aiohttp server answering the Slack Web API as Slack would (tests, the demo).

    async with FakeSlack() as fake:
        client = AsyncWebClient(token="xoxb-test-token", base_url=fake.base_url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert fake.messages("C1")[0]["text"] == "hi"

Each `POST|GET /api/<method>` is recorded as a `Call` in `fake.calls`, then answered: a
fault set with `fail()` first; then `not_authed` / `invalid_auth` / `token_revoked` /
`not_allowed_token_type` (an app token for a bot method or back); `unknown_method`; an
optional 429 (`enforce_rate_limits`); `invalid_arguments` (spec.json); `invalid_blocks`;
`channel_not_found` / `not_in_channel`; else the method's answer from the fake's memory.
The Socket Mode side (apps.connections.open's WebSocket, envelopes, acks) is `fake.socket_mode`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from . import api_messages, api_workspace, wire
from .channels import Channels
from .faults import Fault, Faults, RateLimiter
from .records import Call, Response, UploadedFile
from .response_urls import Hook, deliver
from .socket_mode import SocketModeSide
from .validation import block_errors, decode_args, missing_arguments, spec, view_errors

log = logging.getLogger("bot.demo.standin")

HANDLERS = (
    api_messages.HANDLERS
    | api_workspace.HANDLERS
    | {
        "apps.connections.open": lambda fake, args: fake.socket_mode.open_url(),
    }
)
VIEW_METHODS = ("views.open", "views.publish", "views.update")


def _answer(body: dict, status: int = 200, headers: dict | None = None) -> tuple:
    return status, headers or {}, body


class FakeSlack:
    """A Slack Web API double on 127.0.0.1 (free port), with a memory of what it was sent."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.tokens: set[str] = {"xoxb-test-token"}
        self.app_tokens: set[str] = {"xapp-1-A0001-test-token"}  # Socket Mode (xapp-)
        self.revoked_tokens: set[str] = set()  # answered token_revoked
        self.team_id, self.app_id = "T0001", "A0001"
        self.bot_user_id, self.bot_id = "UBOT0001", "BBOT0001"
        self.calls: list[Call] = []
        self.responses: list[Response] = []
        self.channels = Channels()
        self.missing_channels: set[str] = set()
        self.not_in_channels: set[str] = set()
        self.channel_info: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        self.canvases: dict[str, dict[str, Any]] = {}
        self.canvases_enabled = True
        # What canvases.create answers when canvases_enabled is False: a free workspace's
        # refusal of a standalone canvas (docs.slack.dev/reference/methods/canvases.create).
        self.canvas_disabled_error = "free_teams_cannot_create_standalone_canvases"
        self.files: dict[str, UploadedFile] = {}
        self.enforce_rate_limits = False
        self.hooks: dict[str, Hook] = {}
        self._faults = Faults()
        self._limiter = RateLimiter()
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.socket_mode = SocketModeSide(self)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on host:port (port 0 = a free one, read back into `self.port`)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{url_id}", self._respond)
        app.router.add_get("/link/", self.socket_mode.websocket)
        # A short shutdown timeout: calls held back by fail(delay=…) must not stall stop().
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self.socket_mode.drop()
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def root_url(self) -> str:
        """http://host:port, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The Web API base URL for slack_sdk (`SLACK_API_URL`), ending with /api/."""
        return f"{self.root_url}/api/"

    # -- what tests set up ---------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int | None = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` calls to `method` (None: until healed) fail or stall.

        retry_after → HTTP 429 with that Retry-After; status → that HTTP status; error →
        HTTP 200 `{"ok": false, "error": error}`; delay alone → answer normally, but only
        after `delay` seconds (the call still takes effect, as a slow Slack's would). With
        none of these, the answer is `internal_error`. `method` may also be "upload" or
        "response_url" for the upload and response-URL endpoints.
        """
        if error is None and status == 200 and retry_after is None and not delay:
            error = "internal_error"
        fault = Fault(error=error, status=status, retry_after=retry_after, delay=delay)
        fault.remaining = times
        self._faults.add(method, fault)

    def heal(self, method: str | None = None) -> None:
        """Undo `fail()` for one method, or for all."""
        self._faults.heal(method)

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking ID such as F00000007."""
        return f"{prefix}{next(self._ids):08d}"

    def bot_identity(self) -> dict[str, str]:
        """The author fields of a message the bot posts."""
        return {"user": self.bot_user_id, "bot_id": self.bot_id, "app_id": self.app_id}

    def add_message(
        self, channel: str, text: str, *, user: str = "UHUMAN01", thread_ts: str | None = None
    ) -> str:
        """Put a message (by default a person's) in a channel, as if posted in Slack; its ts."""
        message = {"text": text, "user": user, "thread_ts": thread_ts, "team": self.team_id}
        return self.channels.post(channel, message)["ts"]

    def response_url(
        self, name: str | None = None, *, channel: str | None = None, message_ts: str | None = None
    ) -> str:
        """A response URL recording what is POSTed to it.

        Bound to `channel` (and `message_ts`), its posts act there as Slack's would:
        replace_original edits the message, delete_original deletes it, response_type
        "in_channel" posts a new one.
        """
        url_id = name or self.new_id("R")
        self.hooks[url_id] = Hook(channel=channel, message_ts=message_ts)
        return f"{self.root_url}/response/{url_id}"

    # -- what tests read -----------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """Every recorded call to `method`, in arrival order."""
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages as Slack now shows them (edits applied, deletes gone)."""
        return self.channels.messages(channel)

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The replies under `thread_ts`, oldest first."""
        return self.channels.thread(channel, thread_ts)

    def responses_to(self, url: str) -> list[Response]:
        """Bodies POSTed to a URL made by `response_url()` (the URL or its id)."""
        url_id = url.rstrip("/").rsplit("/", 1)[-1]
        return [r for r in self.responses if r.url_id == url_id]

    async def wait_for(
        self, predicate: Callable[[FakeSlack], Any], timeout: float = 10.0, *, limit: float = 180.0
    ) -> Any:
        """Poll until `predicate(self)` is truthy and return it; AssertionError when it isn't.

        `timeout` is how long the bot may go without sending Slack anything new: the bot paces
        its messages (about one a second per channel), so a wait for many owed messages lasts
        as long as they keep coming, however slow the machine, and fails `timeout` seconds
        after the traffic stopped — or after `limit` seconds in all.
        """
        start = last_progress = time.monotonic()
        seen = self._traffic()
        while not (result := predicate(self)):
            now = time.monotonic()
            if (traffic := self._traffic()) != seen:
                seen, last_progress = traffic, now
            if now - last_progress > timeout or now - start > limit:
                waited = f"{now - start:.0f}s, the last {now - last_progress:.0f}s with no traffic"
                raise AssertionError(f"not seen after {waited}; the fake got:\n{self.summary()}")
            await asyncio.sleep(0.02)
        return result

    def _traffic(self) -> tuple[int, int]:
        """How many Web API calls and response-URL posts have arrived so far."""
        return len(self.calls), len(self.responses)

    def summary(self) -> str:
        """One line per call and response-URL post, for failure messages."""
        lines = [
            f"  {c.method} {'ok' if c.ok else c.response.get('error', c.status)} "
            f"{json.dumps(c.args, default=str)[:200]}"
            for c in self.calls
        ]
        lines += [f"  response {r.url_id} {json.dumps(r.body)[:200]}" for r in self.responses]
        return "\n".join(lines) or "  (nothing)"

    # -- HTTP handlers -------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            raw = await wire.read_args(request)
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"})
        token = wire.bearer_token(request) or raw.pop("token", None)
        call = Call(method=method, args=decode_args(raw), at=time.time(), token=token)
        self.calls.append(call)  # before any delay, so tests can count attempts at once
        fault = self._faults.take(method)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        try:
            status, headers, body = (fault and fault.answer()) or self._dispatch(call)
        except Exception as exc:  # a bug in the fake (or an argument shape it never expected)
            log.exception("fake Slack could not answer %s", method)
            status, headers, body = 500, {}, {"ok": False, "error": f"fake_slack_bug: {exc!r}"}
        call.status, call.response = status, body
        call.failed = not call.ok
        log.info("%s %s -> %s", method, json.dumps(call.args, default=str)[:300], body)
        return web.json_response(body, status=status, headers=headers)

    def _dispatch(self, call: Call) -> tuple[int, dict, dict]:
        method, args = call.method, call.args
        if not call.token:
            return _answer({"ok": False, "error": "not_authed"})
        if refusal := self._token_refusal(call):
            return _answer({"ok": False, "error": refusal})
        if method not in spec():
            return _answer({"ok": False, "error": "unknown_method", "req_method": method})
        channel = args.get("channel") or args.get("channel_id")
        if self.enforce_rate_limits and not self._limiter.allow(method, str(channel), time.time()):
            return _answer({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "1"})
        if messages := missing_arguments(method, args):
            return _answer(_invalid("invalid_arguments", messages))
        if method in VIEW_METHODS and (messages := view_errors(args["view"])):
            return _answer(_invalid("invalid_arguments", messages))
        if args.get("blocks") is not None and (messages := block_errors(args["blocks"])):
            return _answer(_invalid("invalid_blocks", messages))
        if channel in self.missing_channels:
            return _answer({"ok": False, "error": "channel_not_found"})
        if channel in self.not_in_channels:
            return _answer({"ok": False, "error": "not_in_channel"})
        handler = HANDLERS.get(method, lambda fake, args: {"ok": True})
        return _answer(handler(self, args))

    def _token_refusal(self, call: Call) -> str | None:
        """Why Slack would refuse this call's token: revoked, unknown, or the wrong kind
        (apps.connections.open takes only an app-level token, every other method a bot token).
        """
        wanted, other = (
            (self.app_tokens, self.tokens)
            if call.method == "apps.connections.open"
            else (self.tokens, self.app_tokens)
        )
        if call.token in self.revoked_tokens:
            return "token_revoked"
        if call.token in wanted:
            return None
        return "not_allowed_token_type" if call.token in other else "invalid_auth"

    async def _upload(self, request: web.Request) -> web.Response:
        if refusal := await self._misbehave("upload"):
            return refusal
        file = self.files.get(request.match_info["file_id"])
        if file is None:
            return web.Response(status=404, text="file_not_found")
        file.content = await wire.read_upload(request)
        return web.Response(text=f"OK - {len(file.content)}")

    async def _respond(self, request: web.Request) -> web.Response:
        if refusal := await self._misbehave("response_url"):
            return refusal
        status, text = deliver(self, request.match_info["url_id"], await request.read())
        return web.Response(status=status, text=text)

    async def _misbehave(self, endpoint: str) -> web.Response | None:
        """Apply a fault set for a non-API endpoint: stall, or answer in plain text."""
        fault = self._faults.take(endpoint)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault and (answer := fault.answer()):
            status, headers, body = answer
            return web.Response(status=status, headers=headers, text=body["error"])
        return None


def _invalid(error: str, messages: list[str]) -> dict[str, Any]:
    metadata = {"messages": messages}
    return {"ok": False, "error": error, "errors": messages, "response_metadata": metadata}
