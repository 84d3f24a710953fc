"""A TCP proxy in front of PostgreSQL that a test can cut and restore: a database outage."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit

from tests.e2e.harness import free_port


class DatabaseProxy:
    """Forwards 127.0.0.1:port to the server of `dsn`; `cut()` drops every connection."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self.unix_path = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.user = parts.username or "postgres"
        self.database = parts.path.lstrip("/")
        self.port = free_port()
        self.server: asyncio.base_events.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()
        self.flowing = asyncio.Event()  # cleared by freeze(): bytes are held, nothing fails
        self.flowing.set()

    @property
    def dsn(self) -> str:
        """The DSN to give the bot: through the proxy."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    async def start(self) -> None:
        """Accept connections again (also after `cut`)."""
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop listening and close every open connection, as a dead database host would."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.links):
            writer.close()
        self.links.clear()

    def freeze(self) -> None:
        """Hold every byte in both directions: queries hang, as on a stalled network."""
        self.flowing.clear()

    def thaw(self) -> None:
        """Let the held bytes through again."""
        self.flowing.set()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.unix_path:
                up_reader, up_writer = await asyncio.open_unix_connection(self.unix_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self.links.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()
        self.links.discard(writer)
