"""Shared fixtures: a real PostgreSQL server (embedded unless TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest


def _server_dsn() -> str:
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit:
        return explicit
    import pgserver  # imported lazily: only needed when no server is given

    # One server per pytest-xdist worker (gw0, gw1, …): workers share no database cluster.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    suffix = f"-{worker}" if worker else ""
    root = Path(tempfile.gettempdir()) / f"rollback-bot-tests-pg-{os.getuid()}{suffix}"
    server = pgserver.get_server(root, cleanup_mode="stop")
    _server_dsn.server = server  # keep the handle alive for the whole session
    return server.get_uri()


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """DSN of the PostgreSQL server the tests may create databases on."""
    return _server_dsn()


def dsn_for_database(server_dsn: str, name: str) -> str:
    """The same server DSN, pointed at another database."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(server_dsn)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture
async def fresh_database(pg_server_dsn: str) -> Iterator[str]:
    """DSN of a brand-new, empty database, dropped after the test."""
    name = "t_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    yield dsn_for_database(pg_server_dsn, name)
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()
