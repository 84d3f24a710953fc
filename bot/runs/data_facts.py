"""The stored data facts of runs: a backup's manifest, a restore's comparison of the kept
failed database with the restored one. Recorded by the executor; read by the verification,
the thread, the notice, the checklist and the post-mortem (so all say the same thing)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from actions import discarded
from actions.data_diff import compare_databases
from actions.db_catalog import read_manifest
from actions.manifest import Manifest, manifest_from_json, manifest_tables_json
from actions.masking import Masker
from actions.render import RenderContext, RenderError, render
from bot.runs.discarded import comparison_message
from bot.services import Services
from bot.slack import outbox

log = logging.getLogger(__name__)
COMPARE_TIMEOUT = 3600  # seconds: a stuck database must not hold the rollback's end forever
_FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError, RenderError)


async def record_manifest(services: Services, run, ctx: RenderContext) -> str | None:
    """Describe `[backup] manifest_dsn` and store it as the backup's manifest.

    Returns None when stored (or not configured), else why it could not be recorded.
    """
    template = services.runbook.manifest_dsn
    if template is None:
        return None
    try:
        manifest = await read_manifest(render(template, ctx, shell=False))
    except discarded.CompareError as error:
        return str(error)
    except _FAILURES as error:
        return f"{type(error).__name__}: {error}"
    async with services.pool.acquire() as conn:
        await conn.execute(
            "insert into backup_manifests (run_id, database, fingerprint, tables)"
            " values ($1, $2, $3, $4) on conflict (run_id) do update set database = $2,"
            " fingerprint = $3, tables = $4, recorded_at = now()",
            run["id"], manifest.database, manifest.fingerprint, manifest_tables_json(manifest),
        )  # fmt: skip
    return None


async def manifest_of(conn: asyncpg.Connection, *, backup_run_id: int | None) -> Manifest | None:
    """The stored manifest of a backup run, or None."""
    if backup_run_id is None:
        return None
    row = await conn.fetchrow("select * from backup_manifests where run_id = $1", backup_run_id)
    if row is None:
        return None
    return manifest_from_json(row["database"], row["fingerprint"], row["tables"])


async def compare_after_restore(
    services: Services, run, ctx: RenderContext, *, masker: Masker, thread_key: str | None
) -> None:
    """Compare the scenario's kept failed database with the restored one; store and say it."""
    scenario = services.runbook.scenario(run["scenario"] or "")
    if scenario is None or scenario.compare_data is None:
        return
    spec = scenario.compare_data
    failed_name = restored_name = "?"
    error, result = None, None
    try:
        failed, restored = discarded.resolve_dsns(
            render(spec.failed, ctx, shell=False), render(spec.restored, ctx, shell=False)
        )
        failed_name, restored_name = discarded.database_of(failed), discarded.database_of(restored)
        async with services.pool.acquire() as conn:
            since = await conn.fetchval(
                "select started_at from runs where id = $1", run["backup_run_id"]
            )
        async with asyncio.timeout(COMPARE_TIMEOUT):
            result = await compare_databases(failed, restored, since=since)
    except discarded.CompareError as exc:
        error = str(exc)
    except TimeoutError:
        error = f"the comparison took longer than {COMPARE_TIMEOUT // 60} minutes and was stopped"
    except _FAILURES as exc:
        log.warning("run %s: data comparison failed: %s", run["id"], exc)
        error = masker.mask(f"{type(exc).__name__}: {exc}")
    async with services.pool.acquire() as conn, conn.transaction():
        stored = await conn.fetchrow(
            "insert into data_comparisons (run_id, failed_database, restored_database, error,"
            " discarded_rows, result) values ($1, $2, $3, $4, $5, $6)"
            " on conflict (run_id) do update set failed_database = $2, restored_database = $3,"
            " error = $4, discarded_rows = $5, result = $6, compared_at = now() returning *",
            run["id"], failed_name, restored_name, error,
            discarded.discarded_rows(result or {}), result or {},
        )  # fmt: skip
        if thread_key and run["channel"]:
            text, blocks = comparison_message(dict(stored))
            await outbox.post(
                conn, channel=run["channel"], text=text, blocks=blocks, thread_key=thread_key
            )


async def comparison_of(conn: asyncpg.Connection, *, run_id: int) -> asyncpg.Record | None:
    """The stored comparison of a rollback run, or None (its scenario compares nothing)."""
    return await conn.fetchrow("select * from data_comparisons where run_id = $1", run_id)


def data_facts(comparison) -> dict[str, Any]:
    """What the notice, the post-mortem and the checklist say about the data (plain values).

    `no_loss` is True only when a comparison was made and no row that existed only in the
    failed state is missing from the restored database.
    """
    if comparison is None:
        return {"compared": False, "no_loss": False, "error": None, "lost": [], "lines": []}
    result = comparison["result"] or {}
    if comparison["error"]:
        return {"compared": False, "no_loss": False, "error": comparison["error"], "lost": [],
                "lines": [], "kept": comparison["failed_database"]}  # fmt: skip
    lost = discarded.discarded_tables(result)
    return {
        "compared": True,
        "no_loss": not lost,
        "error": None,
        "lost": lost,
        "lost_rows": sum(rows for _, rows in lost),
        "lines": discarded.table_lines(result),
        "kept": comparison["failed_database"],
        "restored": comparison["restored_database"],
        "headline": discarded.headline(result, kept=comparison["failed_database"]),
    }
