"""The PostgreSQL server the benchmarks use, and a fresh database on it for each bot."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def server_dsn() -> str:
    """TEST_DATABASE_URL, or an embedded pgserver under the temp directory (started once)."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    import pgserver  # only needed when no server is given

    root = Path(tempfile.gettempdir()) / f"rollback-bot-bench-pg-{os.getuid()}"
    server = pgserver.get_server(root, cleanup_mode="stop")
    server_dsn.server = server  # keep the handle (and so the server) for the whole run
    return server.get_uri()


@contextlib.asynccontextmanager
async def fresh_database(server: str) -> AsyncIterator[str]:
    """DSN of a new, empty database on `server`, dropped afterwards."""
    name = "bench_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    try:
        yield urlunsplit(urlsplit(server)._replace(path="/" + name))
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await conn.close()
