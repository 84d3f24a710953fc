"""Post-rollback verification: `run`, `http`, `sql` and `manifest` checks, each a CheckEnded."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import aiohttp
import asyncpg

from actions.db_catalog import read_manifest
from actions.events import CheckEnded, EventSink, utc_now
from actions.manifest import Manifest, compare_manifests, describe
from actions.masking import Masker
from actions.model import Check
from actions.remote import HostPool
from actions.runner import PreparedStep, execute_step

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # enough to find the expected text on any status page
DETAIL_LINES = 5  # output lines of a failed `run` check shown in its detail

Outcome = tuple[bool, str]


async def run_check(
    check: Check,
    *,
    rendered: str,
    workdir: Path,
    masker: Masker,
    default_dsn: str | None = None,
    env: Mapping[str, str] | None = None,
    pool: HostPool | None = None,
    manifest: Manifest | None = None,
) -> CheckEnded:
    """Run one check (`rendered` is its script, URL or query) and say whether it passed.

    A `manifest` check compares the database with `manifest`, the restored backup's. A `run`
    check with hosts runs there through `pool` (the run's connections), without `env`.
    """
    started = utc_now()
    kinds: dict[str, Callable[[], Awaitable[Outcome]]] = {
        "run": lambda: _run(
            check, rendered, _check_workdir(check, Path(workdir)), masker, env, pool
        ),
        "http": lambda: _http(check, rendered),
        "sql": lambda: _sql(check, rendered, check.dsn or default_dsn),
        "manifest": lambda: _manifest(check, check.dsn or default_dsn, manifest),
    }
    try:
        passed, detail = await kinds[check.kind]()
    except Exception as exc:  # a failing check is reported, never raised
        log.exception("check %r could not run", check.name)
        passed, detail = False, f"the check could not run: {type(exc).__name__}: {exc}"
    return CheckEnded(check.name, check.kind, passed, masker.mask(detail), started, utc_now())


async def run_checks(
    checks: Sequence[tuple[Check, str]],
    *,
    workdir: Path,
    masker: Masker,
    on_event: EventSink,
    default_dsn: str | None = None,
    env: Mapping[str, str] | None = None,
    pool: HostPool | None = None,
    manifest: Manifest | None = None,
) -> list[CheckEnded]:
    """Run (check, rendered text) pairs in order, awaiting `on_event` with each CheckEnded."""
    results = []
    for check, rendered in checks:
        ended = await run_check(
            check,
            rendered=rendered,
            workdir=workdir,
            masker=masker,
            default_dsn=default_dsn,
            env=env,
            pool=pool,
            manifest=manifest,
        )
        await on_event(ended)
        results.append(ended)
    return results


def _check_workdir(check: Check, workdir: Path) -> Path:
    return workdir / check.workdir if check.workdir else workdir


async def _run(
    check: Check,
    script: str,
    workdir: Path,
    masker: Masker,
    env: Mapping[str, str] | None,
    pool: HostPool | None,
) -> Outcome:
    step = PreparedStep(0, check.name, script, workdir, check.timeout, hosts=check.hosts)
    if check.hosts:
        if pool is None:
            return False, "the check runs on hosts but the run has no SSH connections"
        from actions.remote_step import execute_on_hosts  # it builds on the runner

        result = await execute_on_hosts(step, pool, masker=masker, tail_lines=DETAIL_LINES)
    else:
        result = await execute_step(step, masker=masker, env=env, tail_lines=DETAIL_LINES)
    if result.status == "succeeded":
        return True, "exit status 0"
    return False, "\n".join(filter(None, (result.message, result.output_tail)))


async def _http(check: Check, url: str) -> Outcome:
    timeout = aiohttp.ClientTimeout(total=check.timeout)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            raw = await response.content.read(MAX_BODY_BYTES)
    except TimeoutError:
        return False, f"no answer from {url} within {check.timeout:g}s"
    except aiohttp.InvalidURL:
        return False, f"{url!r} is not a valid URL"
    except aiohttp.ClientConnectorError as exc:
        return False, f"could not connect to {url}: {_os_reason(exc.os_error)}"
    except aiohttp.ClientError as exc:
        return False, f"request to {url} failed: {exc or type(exc).__name__}"
    status = f"HTTP {response.status} {response.reason or ''}".rstrip()
    if not 200 <= response.status < 300:
        return False, status
    if check.expect is None:
        return True, status
    if check.expect not in _decode(raw, response.charset):
        return False, f"{status}, but the page does not contain {check.expect!r}"
    return True, f"{status}, the page contains {check.expect!r}"


async def _sql(check: Check, query: str, dsn: str | None) -> Outcome:
    if not dsn:
        return False, "no database to query: give the check a `dsn` or set DATABASE_URL"
    try:
        async with asyncio.timeout(check.timeout):
            return await _query(dsn, query, check.expect)
    except TimeoutError:
        return False, f"no answer from the database within {check.timeout:g}s"


async def _manifest(check: Check, dsn: str | None, manifest: Manifest | None) -> Outcome:
    if manifest is None:
        return False, (
            "the restored backup has no manifest (taken before `[backup] manifest_dsn` was set, "
            "or not recorded): nothing to compare with; take a new backup"
        )
    if not dsn:
        return False, "no database to compare: give the check a `dsn` or set vars.db_url"
    try:
        async with asyncio.timeout(check.timeout):
            actual = await read_manifest(dsn)
    except TimeoutError:
        return False, f"the database was not described within {check.timeout:g}s"
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        reason = _os_reason(exc) if isinstance(exc, OSError) else str(exc)
        return False, f"could not read the database: {reason}"
    return describe(compare_manifests(manifest, actual), manifest)


async def _query(dsn: str, query: str, expect: str | None) -> Outcome:
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        reason = _os_reason(exc) if isinstance(exc, OSError) else str(exc)
        return False, f"could not connect to the database: {reason}"
    try:
        value = await conn.fetchval(query)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return False, f"the query failed: {exc}"
    except BaseException:
        conn.terminate()  # timed out or cancelled mid-query: drop the connection at once
        raise
    finally:
        if not conn.is_closed():
            await _close(conn)
    text = "NULL" if value is None else str(value)
    if expect is not None and text != expect:
        return False, f"value {text}, expected {expect}"
    return True, f"value {text}"


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 5.0)
    except Exception:
        conn.terminate()


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", "replace")
    except LookupError:
        return raw.decode("utf-8", "replace")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    # asyncio's own message ("Connect call failed …") says less than the errno does
    return os.strerror(exc.errno) if exc.errno and exc.errno > 0 else str(exc)
