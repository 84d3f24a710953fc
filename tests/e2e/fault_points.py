"""Process deaths at any database point: a pool whose fuse kills its process mid-operation.

The bot reaches PostgreSQL only through `services.pool.acquire()`, so a simulated process
gets a `FusedPool` in its Services. Every statement, every transaction start and every
commit is a *point*. A fuse armed with `n` lets n points pass; at the next one the process
dies: its connection is terminated by the server (`pg_terminate_backend`), so an open
transaction is rolled back by PostgreSQL itself, exactly as when a process is SIGKILLed,
and `ProcessDied` (a BaseException, so no `except Exception` in the bot swallows it)
unwinds the operation. From then on every use of the pool raises `ProcessDied`: a dead
process does nothing more. Deaths "before commit" are the commit point of a transaction;
"between transactions" and "after the last commit, before the answer" are the points
that follow. No production code knows about this.
"""

from __future__ import annotations

import contextlib

import asyncpg


class ProcessDied(BaseException):
    """The simulated process was killed at a database point."""


class Fuse:
    """How many database points the process passes before it dies (None: it never does)."""

    def __init__(self) -> None:
        self.left: int | None = None
        self.blown = False

    def arm(self, points: int) -> None:
        """Die at the point after the next `points` ones."""
        self.left = points

    async def tick(self, conn: asyncpg.Connection) -> None:
        """One database point: pass, or kill the connection and the process."""
        if self.blown:
            raise ProcessDied
        if self.left is None:
            return
        if self.left > 0:
            self.left -= 1
            return
        self.blown = True
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await conn.execute("select pg_terminate_backend(pg_backend_pid())")
        raise ProcessDied


class _FusedTransaction:
    def __init__(self, real, fuse: Fuse, conn) -> None:
        self.real, self.fuse, self.conn = real, fuse, conn

    async def __aenter__(self):
        await self.fuse.tick(self.conn)
        return await self.real.__aenter__()

    async def __aexit__(self, extype, ex, tb):
        if extype is None:
            try:
                await self.fuse.tick(self.conn)  # the commit point: die before COMMIT is sent
            except ProcessDied as died:
                extype, ex, tb = ProcessDied, died, died.__traceback__
        if extype is ProcessDied:  # the server already rolled back; just let go of it
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresError, OSError):
                await self.real.__aexit__(extype, ex, tb)
            raise ex
        return await self.real.__aexit__(extype, ex, tb)


class FusedConnection:
    """A pooled connection whose statements and transactions are fuse points."""

    def __init__(self, real, fuse: Fuse) -> None:
        self._real, self._fuse = real, fuse

    def __getattr__(self, name):
        return getattr(self._real, name)

    def transaction(self, **options) -> _FusedTransaction:
        return _FusedTransaction(self._real.transaction(**options), self._fuse, self._real)

    async def _statement(self, method: str, *args, **kwargs):
        await self._fuse.tick(self._real)
        return await getattr(self._real, method)(*args, **kwargs)

    async def execute(self, *args, **kwargs):
        return await self._statement("execute", *args, **kwargs)

    async def executemany(self, *args, **kwargs):
        return await self._statement("executemany", *args, **kwargs)

    async def fetch(self, *args, **kwargs):
        return await self._statement("fetch", *args, **kwargs)

    async def fetchrow(self, *args, **kwargs):
        return await self._statement("fetchrow", *args, **kwargs)

    async def fetchval(self, *args, **kwargs):
        return await self._statement("fetchval", *args, **kwargs)


class _Acquired:
    def __init__(self, pool: FusedPool) -> None:
        self.pool, self.held = pool, None

    async def __aenter__(self) -> FusedConnection:
        if self.pool.fuse.blown:
            raise ProcessDied
        self.held = self.pool.real.acquire()
        return FusedConnection(await self.held.__aenter__(), self.pool.fuse)

    async def __aexit__(self, *exc):
        return await self.held.__aexit__(*exc)


class FusedPool:
    """One simulated process's view of a shared pool, with that process's fuse."""

    def __init__(self, real: asyncpg.Pool) -> None:
        self.real, self.fuse = real, Fuse()

    def acquire(self) -> _Acquired:
        return _Acquired(self)

    def __getattr__(self, name):
        return getattr(self.real, name)
