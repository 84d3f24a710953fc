"""Socket Mode: keep one WebSocket to Slack open until told to stop, and fail in one line.

The protocol (docs.slack.dev/apis/events-api/using-socket-mode/): `apps.connections.open`
with the app-level token gives a one-time WebSocket URL; Slack says `hello`, then sends
envelopes (`slash_commands`, `interactive`, `events_api`) that we hand to Bolt and
acknowledge with `{"envelope_id": …, "payload": …}`; `disconnect` (`refresh_requested`,
`warning`) asks for a new connection, which we open before closing the old one.

This replaces slack_sdk's SocketModeClient, whose connect loop catches every error,
including a refused token, logs a traceback and retries every 10 s forever, and cannot be
interrupted: here a token Slack refuses for good raises `Refused` (one line naming the
setting), a transient failure is one log line per attempt with a growing delay, and `stop`
is obeyed in every state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# Answers that mean the token itself is wrong: retrying cannot help.
# https://docs.slack.dev/reference/methods/apps.connections.open (and every method's errors)
PERMANENT_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "not_allowed_token_type",
        "missing_scope",
        "no_permission",
        "access_denied",
        "team_access_not_granted",
        "invalid_token",
    }
)
WHAT_TO_DO = {
    "SLACK_APP_TOKEN": (
        "it must be the app-level token (xapp-…) with the connections:write scope, from the "
        "app's Basic Information → App-Level Tokens; generate a new one there if it was revoked"
    ),
    "SLACK_BOT_TOKEN": (
        "it must be the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page; "
        "reinstall the app to the workspace if it was revoked"
    ),
}
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before attempt 2, 3, …; then 30 s each
HELLO_TIMEOUT = 10.0
CLOSE_TIMEOUT = 1.0  # Slack may not answer a close frame; don't wait long for it


LINK_DISABLED = (
    "Slack turned Socket Mode off for this app (disconnect: link_disabled): turn it on again "
    "under the app's Settings → Socket Mode, or serve HTTP mode with `rollback-bot serve --http`."
)
SHORT_LIVED = 10.0  # a connection Slack closes sooner than this makes the next one wait


class Refused(Exception):
    """Slack refused us for good (a token, or Socket Mode itself); str() is the one line."""

    @classmethod
    def token(cls, setting: str, error: str) -> Refused:
        """Slack refused the token in `setting` with `error`."""
        return cls(f"Slack refused {setting} ({error}): {WHAT_TO_DO[setting]}.")


def slack_error(error: Exception) -> str | None:
    """The `error` code of a Slack API refusal, if that is what `error` is."""
    if isinstance(error, SlackApiError):
        with contextlib.suppress(Exception):
            return str(error.response.get("error") or "") or None
    return None


def describe(error: BaseException) -> str:
    """One short line for a failed attempt: Slack's error code, or the exception's gist."""
    if isinstance(error, aiohttp.ClientResponseError):  # its URL may carry a ticket: left out
        return f"{type(error).__name__}: HTTP {error.status} {error.message}"
    code = slack_error(error) if isinstance(error, Exception) else None
    if code:
        status = getattr(error.response, "status_code", 200)
        return code if status == 200 else f"{code}, HTTP {status}"
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:200] if text else type(error).__name__


def retry_after(error: Exception) -> float:
    """Seconds Slack asked us to wait (HTTP 429 `Retry-After`), else 0."""
    if slack_error(error) != "ratelimited":
        return 0.0
    try:
        return min(float(error.response.headers.get("Retry-After", 0)), 300.0)
    except (TypeError, ValueError, AttributeError):
        return 0.0


def backoff(attempt: int) -> float:
    """Seconds to wait after the `attempt`-th consecutive failure (1-based)."""
    return BACKOFF[min(attempt, len(BACKOFF)) - 1]


async def until_stopped(stop: asyncio.Event, work: Awaitable[Any]) -> tuple[bool, Any]:
    """Run `work` unless `stop` is set first: (True, None) if stopped (work cancelled),
    else (False, its result). Its exception, if any, propagates."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return True, None
    return False, task.result()


async def check_bot_token(api_url: str, token: str, stop: asyncio.Event, *, retry: bool) -> None:
    """auth.test the bot token: Refused if Slack refuses it for good; transient failures are
    retried (one log line each) while `retry`, else logged once. Returns early on `stop`."""
    client = AsyncWebClient(token=token, base_url=api_url, timeout=10)
    attempt = 0
    while not stop.is_set():
        try:
            await until_stopped(stop, client.auth_test())
            return
        except Exception as error:
            if slack_error(error) in PERMANENT_ERRORS:
                raise Refused.token("SLACK_BOT_TOKEN", slack_error(error)) from None
            attempt += 1
            if not retry:
                log.warning("could not check SLACK_BOT_TOKEN with Slack (%s)", describe(error))
                return
            delay = backoff(attempt)
            log.warning(
                "could not reach Slack to check SLACK_BOT_TOKEN (%s); attempt %d, next in %.0fs",
                describe(error),
                attempt,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


class SocketModeConnection:
    """Slack's envelopes over one WebSocket at a time, handed to Bolt and acknowledged."""

    def __init__(self, *, app_token: str, api_url: str, bolt: AsyncApp | None = None) -> None:
        self.bolt = bolt  # set before run(): envelopes go to it
        self.app_token = app_token
        self.api = AsyncWebClient(base_url=api_url, timeout=10)  # no retries: ours below
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.handling: set[asyncio.Task] = set()
        self.link_disabled = False  # Slack said Socket Mode is off for this app

    @property
    def connected(self) -> bool:
        """True while a connection Slack said hello on is open."""
        return self.ws is not None and not self.ws.closed

    async def first_url(self, stop: asyncio.Event) -> str | None:
        """A WebSocket URL from apps.connections.open, retrying transient failures; None if
        `stop` came first. Raises Refused when Slack refuses the app token for good."""
        return await self._retrying(stop, self._open_url)

    async def run(self, stop: asyncio.Event, url: str | None = None) -> None:
        """Connect (to `url` first, if given) and serve until `stop` is set; reconnect when
        Slack asks or drops us. Raises Refused when Slack refuses the app token for good."""
        self.session = aiohttp.ClientSession(trust_env=True)  # HTTPS_PROXY, as slack_sdk
        short_lived = 0
        given = [url] if url else []
        previous: tuple[aiohttp.ClientWebSocketResponse, asyncio.Task] | None = None
        try:
            while not stop.is_set():
                ws = await self._retrying(
                    stop, lambda: self._connect(given.pop() if given else None)
                )
                if ws is None:
                    break
                if previous is not None:  # the new connection is up: let the old one go
                    await self._close(*previous)
                    previous = None
                self.ws, since = ws, time.monotonic()
                log.info("connected to Slack in Socket Mode")
                refresh = asyncio.Event()
                reader = asyncio.create_task(self._read(ws, refresh), name="socket-mode-reader")
                await _first(stop.wait(), refresh.wait(), reader)
                if self.link_disabled:
                    raise Refused(LINK_DISABLED)
                if stop.is_set():
                    # No new envelopes; those being handled get their acks out on this
                    # connection, then it closes (closed first, their acks were lost).
                    await self._close(None, reader)
                    await self._finish_handling()
                    await self._close(ws, None)
                elif refresh.is_set():
                    previous = (ws, reader)  # keeps receiving until the new one is up
                else:
                    await self._close(ws, reader)
                    short_lived = short_lived + 1 if time.monotonic() - since < SHORT_LIVED else 0
                    delay = backoff(short_lived) if short_lived else 0.0
                    log.warning(
                        "Slack closed the Socket Mode connection; reconnecting in %.0fs", delay
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
        finally:
            if previous is not None:
                await self._close(*previous)
            if self.ws is not None:
                await self._close(self.ws, None)
            await self._finish_handling()
            await self.session.close()

    async def _retrying(self, stop: asyncio.Event, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """attempt()'s result; transient failures are one log line each, then a growing wait.
        None once `stop` is set. Refused propagates."""
        failures = 0
        while not stop.is_set():
            try:
                stopped, result = await until_stopped(stop, attempt())
            except Refused:
                raise
            except Exception as error:
                failures += 1
                delay = max(backoff(failures), retry_after(error))
                log.warning(
                    "Socket Mode: could not connect to Slack (%s); attempt %d, next in %.0fs",
                    describe(error),
                    failures,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            return None if stopped else result
        return None

    async def _open_url(self) -> str:
        try:
            response = await self.api.apps_connections_open(app_token=self.app_token)
        except SlackApiError as error:
            if slack_error(error) in PERMANENT_ERRORS:
                raise Refused.token("SLACK_APP_TOKEN", slack_error(error)) from None
            raise
        return response["url"]

    async def _connect(self, url: str | None) -> aiohttp.ClientWebSocketResponse:
        ws = await self.session.ws_connect(
            url or await self._open_url(),
            autoping=True,
            heartbeat=30.0,
            timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
        )
        try:
            message = await ws.receive(timeout=HELLO_TIMEOUT)
            if (
                message.type != aiohttp.WSMsgType.TEXT
                or json.loads(message.data).get("type") != "hello"
            ):
                raise ConnectionError(f"Slack did not say hello (got {message.type.name})")
        except BaseException:
            await ws.close()
            raise
        return ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, refresh: asyncio.Event) -> None:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except json.JSONDecodeError:
                log.warning("Socket Mode: ignored a message that is not JSON")
                continue
            if not isinstance(data, dict):
                continue
            if data.get("type") == "disconnect":
                log.info("Slack asked for a new Socket Mode connection (%s)", data.get("reason"))
                self.link_disabled = data.get("reason") == "link_disabled"
                refresh.set()
            elif request := SocketModeRequest.from_dict(data):
                task = asyncio.create_task(self._handle(ws, request))
                self.handling.add(task)
                task.add_done_callback(self.handling.discard)

    async def _handle(self, ws: aiohttp.ClientWebSocketResponse, request: SocketModeRequest):
        """Hand the envelope to Bolt; acknowledge it once Bolt acks (as Bolt's adapter does)."""
        try:
            response = await run_async_bolt_app(self.bolt, request)
        except Exception:
            log.exception("Socket Mode: %s envelope could not be handled", request.type)
            return
        if response.status != 200:
            log.info("Socket Mode: %s envelope not handled (%s)", request.type, response.status)
            return
        ack: dict[str, Any] = {"envelope_id": request.envelope_id}
        if response.body and request.accepts_response_payload:
            content_type = (response.headers.get("content-type") or [""])[0]
            is_json = content_type.startswith("application/json")
            ack["payload"] = json.loads(response.body) if is_json else {"text": response.body}
        try:
            await ws.send_str(json.dumps(ack))
        except (ConnectionError, RuntimeError) as error:
            log.warning("Socket Mode: could not acknowledge a %s (%s)", request.type, error)

    async def _close(
        self, ws: aiohttp.ClientWebSocketResponse | None, reader: asyncio.Task | None
    ) -> None:
        """Close `ws` and stop `reader` (either may be None: left as it is)."""
        if ws is not None:
            if self.ws is ws:
                self.ws = None
            with contextlib.suppress(Exception):
                await ws.close()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def _finish_handling(self, timeout: float = 5.0) -> None:
        """Let envelopes being handed to Bolt get their ack out (briefly), then cancel."""
        if self.handling:
            _, pending = await asyncio.wait(set(self.handling), timeout=timeout)
            for task in pending:
                task.cancel()


async def _first(*waits: Awaitable[Any]) -> None:
    """Wait until one of `waits` completes; cancel the others that this call created."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    created = [t for t, w in zip(tasks, waits, strict=True) if t is not w]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in created:
            if not task.done():
                task.cancel()
