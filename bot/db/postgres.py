"""PostgreSQL: the embedded server when no DSN is given, the pool, and migrations."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATION_LOCK = 7_100_001  # advisory lock key: one process migrates at a time
EMBEDDED_DATABASE = "rollback_bot"


def embedded_dsn(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under data_dir and return its DSN."""
    import pgserver  # imported here: only needed without DATABASE_URL

    pgdata = data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    embedded_dsn.server = server  # keep the handle for the life of the process
    exists = server.psql(f"select 1 from pg_database where datname = '{EMBEDDED_DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"create database {EMBEDDED_DATABASE};")
    return server.get_uri(EMBEDDED_DATABASE)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _back_to_pool(conn: asyncpg.Connection) -> None:
    """Nothing more to undo when a connection goes back to the pool.

    Before this runs asyncpg has rolled back a transaction left open and dropped the
    connection's listeners. The bot keeps no other session state on a pooled connection: no
    session `SET`, no cursor outside a transaction, and its one session-level lock (the
    outbox's channel lock) is released in the query that ends the delivery, or the session is
    terminated when that fails (`bot.slack.outbox`); the outbox sender's LISTEN is undone,
    or its session terminated, when it stops (`give_back`). asyncpg's default reset would send
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release: one more
    database round trip on every acknowledgement (a quarter of a `status` ack's).
    """


async def undo_or_terminate(
    conn: asyncpg.Connection, undo: Callable[[asyncpg.Connection], Awaitable[object]]
) -> None:
    """Clear the session state `conn` took with `undo(conn)`, or, when the session can't be
    told to (it failed, or we were cancelled), terminate it, so the server drops that state."""
    try:
        await undo(conn)
    except BaseException as error:
        conn.terminate()
        if not isinstance(error, Exception):
            raise


async def give_back(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    undo: Callable[[asyncpg.Connection], Awaitable[object]],
) -> None:
    """Release `conn` to `pool` once its session state is undone or the session terminated."""
    try:
        await undo_or_terminate(conn, undo)
    finally:
        await pool.release(conn)


async def create_pool(dsn: str, *, max_size: int = 10) -> asyncpg.Pool:
    """A connection pool whose json/jsonb columns read and write Python objects.

    Connections are opened as needed, up to `max_size`, and kept: a burst of acknowledgements
    each waits only for its own statements, not for another's connection.
    """
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        init=_init_connection,
        reset=_back_to_pool,
        command_timeout=30,
    )


def _migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("bot.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text()))
    return sorted(found)


async def migrate(dsn: str) -> list[str]:
    """Apply pending numbered migrations under an advisory lock; return the names applied."""
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(
                "create table if not exists schema_migrations ("
                " number int primary key, name text not null,"
                " applied_at timestamptz not null default now())"
            )
            done = {r["number"] for r in await conn.fetch("select number from schema_migrations")}
            for number, name, sql in _migration_files():
                if number in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "insert into schema_migrations (number, name) values ($1, $2)",
                        number,
                        name,
                    )
                log.info("applied migration %s", name)
                applied.append(name)
        finally:
            await conn.execute("select pg_advisory_unlock($1)", MIGRATION_LOCK)
    finally:
        await conn.close()
    return applied
