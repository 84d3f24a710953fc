"""A database session the server ends once its process goes silent: the outbox's channel lock.

While a session holds a session-level advisory lock it stays inside a transaction whose
`idle_in_transaction_session_timeout` is the bound (`begin_guarded`), and while the process
awaits something else (Slack, HTTP) a keep-alive `select 1` runs every bound/3
(`while_away`). A process that goes silent — hung, or its link to the database frozen — has
its session ended by PostgreSQL after the bound, which frees the lock; a live one waiting on a
slow Slack keeps it. asyncpg only; no Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg

from bot.db.postgres import undo_or_terminate

T = TypeVar("T")


def begin_guarded(bound: float) -> str:
    """The SQL that opens a transaction the server ends after `bound` seconds of silence."""
    milliseconds = max(1, int(bound * 1000))
    return f"begin; set local idle_in_transaction_session_timeout = {milliseconds}"


async def abandon(conn: asyncpg.Connection) -> None:
    """End a guarded session's work that did not finish: roll back and free its session-level
    locks, or, when the session can't be told to, terminate it, so the server frees them.
    (The pool does not reset locks on release: `bot.db.postgres`.)"""
    await undo_or_terminate(conn, _roll_back_and_unlock)


async def _roll_back_and_unlock(conn: asyncpg.Connection) -> None:
    await conn.execute("rollback; select pg_advisory_unlock_all()")


async def while_away(bound: float, conn: asyncpg.Connection, call: Awaitable[T]) -> T:
    """Await `call` (Slack, HTTP) while a keep-alive tells the server we are alive.

    The keep-alive is the only user of `conn` meanwhile; it is stopped, and its query
    finished, before the caller uses `conn` again (asyncpg allows one query at a time, and
    cancelling one mid-flight could abort the transaction).
    """
    stop = asyncio.Event()

    async def keep_alive() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), bound / 3)
            if stop.is_set():
                return
            await conn.execute("select 1")

    task = asyncio.create_task(keep_alive())
    try:
        return await call
    except asyncio.CancelledError:
        task.cancel()  # shutting down: the connection is rolled back or dropped anyway
        raise
    finally:
        stop.set()
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            pass  # whether we still hold the lock is up to the server: the next query says
