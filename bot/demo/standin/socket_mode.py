"""The Socket Mode side of the fake Slack: WebSocket URLs, envelopes out, acknowledgements in.

As Slack does it (docs.slack.dev/apis/events-api/using-socket-mode/):
- `apps.connections.open`, called with the app-level token (`xapp-…`) in the Authorization
  header, answers `{"ok": true, "url": "wss://…/link/?ticket=…"}`; here the URL is a ws://
  one on the fake's own port, and each ticket opens one connection only.
- On connecting, the app receives `{"type": "hello", "num_connections": N, ...}`.
- Slack sends envelopes `{"envelope_id", "type", "payload", "accepts_response_payload"}` of
  type `slash_commands`, `interactive` or `events_api` (these also carry `retry_attempt`,
  `retry_reason`); the app acknowledges each with `{"envelope_id": …}`, plus `"payload"`
  where the envelope accepts one.
- `{"type": "disconnect", "reason": "refresh_requested"}` (or `warning`, `link_disabled`)
  asks the app to open a new connection; Slack closes the old one a little later.
- With several connections open for one app, each envelope goes to exactly one of them.

What the app sends back that breaks these rules (an ack for an unknown envelope, a second
ack, a payload where none is accepted, invalid blocks) is kept in `problems`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .validation import block_errors

if TYPE_CHECKING:
    from .server import FakeSlack

log = logging.getLogger("bot.demo.standin")
ACCEPTS_PAYLOAD = {"slash_commands": True, "events_api": False}
CLOSE_AFTER_DISCONNECT = 5.0  # how long an old connection lives on after `disconnect`


@dataclass
class Ack:
    """One acknowledgement the app sent: `{"envelope_id": …, "payload": …}`."""

    envelope_id: str
    payload: dict[str, Any] | None
    connection: int
    at: float


@dataclass
class Envelope:
    """One envelope the fake sent, to which connection, and its ack once it came."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    connection: int
    acks: list[Ack] = field(default_factory=list)

    @property
    def ack(self) -> Ack | None:
        """The first acknowledgement, if any."""
        return self.acks[0] if self.acks else None


@dataclass
class Connection:
    """One open WebSocket: its number (1, 2, …) and whether it still gets envelopes."""

    number: int
    ws: web.WebSocketResponse
    live: bool = True


class SocketModeSide:
    """apps.connections.open tickets, the /link/ WebSocket and the envelopes sent on it."""

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.tickets: set[str] = set()  # issued, not yet used
        self.connections: list[Connection] = []
        self.opened = 0  # connections accepted so far
        self.envelopes: dict[str, Envelope] = {}
        self.acks: list[Ack] = []
        self.problems: list[str] = []
        self.refuse_connections = False  # the WebSocket endpoint answers 503 while True
        self._turn = itertools.count()

    # -- the Web API method and the WebSocket endpoint --------------------------------------

    def open_url(self) -> dict[str, Any]:
        """apps.connections.open: a one-time WebSocket URL."""
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        query = f"ticket={ticket}&app_id={self.fake.app_id}"
        return {"ok": True, "url": f"ws://{self.fake.host}:{self.fake.port}/link/?{query}"}

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """GET /link/?ticket=…: accept the connection, say hello, read acknowledgements."""
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid or used ticket")
        self.tickets.discard(ticket)
        if self.refuse_connections:
            return web.Response(status=503, text="service unavailable")
        ws = web.WebSocketResponse(autoping=True, timeout=1.0)  # close handshake wait
        await ws.prepare(request)
        self.opened += 1
        connection = Connection(self.opened, ws)
        self.connections.append(connection)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.live()),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.fake.app_id},
            }
        )
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._receive(connection, message.data)
        finally:
            connection.live = False
            self.connections.remove(connection)
        return ws

    def _receive(self, connection: Connection, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            self.problems.append(f"connection {connection.number} sent non-JSON: {text[:100]}")
            return
        envelope = None
        if isinstance(message, dict):
            envelope = self.envelopes.get(str(message.get("envelope_id", "")))
        if envelope is None:
            self.problems.append(f"ack for no envelope we sent: {text[:200]}")
            return
        ack = Ack(envelope.envelope_id, message.get("payload"), connection.number, time.time())
        if envelope.acks:
            self.problems.append(f"second ack for {envelope.envelope_id}")
        if ack.payload is not None:
            if not envelope.accepts_response_payload:
                self.problems.append(f"payload in the ack of a {envelope.type} envelope")
            elif not isinstance(ack.payload, dict):
                self.problems.append(f"ack payload is not an object: {text[:200]}")
            elif ack.payload.get("blocks") is not None:
                self.problems += block_errors(ack.payload["blocks"])
        envelope.acks.append(ack)
        self.acks.append(ack)
        log.info("socket %s ack %s %s", connection.number, ack.envelope_id, ack.payload)

    # -- what tests do -----------------------------------------------------------------------

    def live(self) -> list[Connection]:
        """Open connections that still receive envelopes."""
        return [c for c in self.connections if c.live and not c.ws.closed]

    async def wait_connected(self, count: int = 1, timeout: float = 20.0) -> list[Connection]:
        """Wait until at least `count` connections receive envelopes."""
        deadline = time.monotonic() + timeout
        while len(self.live()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.live())} Socket Mode connection(s), not {count}, "
                    f"within {timeout}s; the fake got:\n{self.fake.summary()}"
                )
            await asyncio.sleep(0.02)
        return self.live()

    async def send(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
    ) -> Envelope:
        """Send one envelope to one live connection (taking turns); waits for one to exist."""
        live = await self.wait_connected()
        connection = live[next(self._turn) % len(live)]
        if accepts_response_payload is None:
            accepts = ACCEPTS_PAYLOAD.get(type_, payload.get("type") == "view_submission")
        else:
            accepts = accepts_response_payload
        envelope = Envelope(uuid.uuid4().hex, type_, payload, accepts, connection.number)
        self.envelopes[envelope.envelope_id] = envelope
        message: dict[str, Any] = {
            "envelope_id": envelope.envelope_id,
            "type": type_,
            "payload": payload,
            "accepts_response_payload": accepts,
        }
        if type_ == "events_api":
            message |= {"retry_attempt": 0, "retry_reason": ""}
        await connection.ws.send_json(message)
        return envelope

    async def wait_ack(self, envelope: Envelope, timeout: float = 10.0) -> Ack:
        """The envelope's acknowledgement; AssertionError if none comes in time."""
        deadline = time.monotonic() + timeout
        while envelope.ack is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"no ack for {envelope.type} envelope within {timeout}s")
            await asyncio.sleep(0.02)
        return envelope.ack

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask every live connection to reconnect; each is closed a little later."""
        for connection in self.live():
            connection.live = False
            await connection.ws.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            )
            asyncio.get_running_loop().call_later(
                CLOSE_AFTER_DISCONNECT, lambda ws=connection.ws: asyncio.ensure_future(ws.close())
            )

    async def drop(self) -> None:
        """Close every connection at once, without a `disconnect` first (a network cut)."""
        for connection in list(self.connections):
            connection.live = False
            await connection.ws.close(code=1011)
