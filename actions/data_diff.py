"""What a database restore discarded: the kept failed database against the restored one.

Per table, in SQL: rows are keyed by primary key (by the whole row when a table has none)
and hashed (md5 of the columns both sides share); each side is summed per bucket of keys in
one scan (`count`, sum of hash prefixes), and only buckets that differ are fetched, as (key,
hash) pairs: an integer key's buckets are key ranges (read through its index, one by one),
other keys' are hashes (read in batches of buckets, one scan per batch). No table is ever
loaded whole into Python. The result is plain JSON-able data (`actions.discarded` says it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from actions.db_catalog import qualified, quote_ident, table_name, user_tables

BUCKET_ROWS = 5000  # rows per bucket, about: what one fetch of a differing bucket returns
HASH_BATCH = 20  # differing hash buckets fetched per scan (about 100 000 rows)
SAMPLE = 10  # keys of each kind of difference kept for the report
_INTEGER = ("smallint", "integer", "bigint")
_TIME_NAMES = ("created_at", "inserted_at", "placed_at", "updated_at", "created", "timestamp")

TABLE_COLUMNS = """
select a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
       coalesce(a.attnum = any(i.indkey), false) as in_pk,
       array_position(i.indkey::int2[], a.attnum) as pk_position
from pg_attribute a
left join pg_index i on i.indrelid = a.attrelid and i.indisprimary
where a.attrelid = $1 and a.attnum > 0 and not a.attisdropped
order by a.attnum
"""


class _Side:
    """One database and its tables, read in one repeatable-read, read-only transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.tables: dict[str, tuple[int, str, str]] = {}

    async def load(self) -> None:
        for row in await user_tables(self.conn):
            name = table_name(row["schema"], row["table"])
            self.tables[name] = (row["oid"], row["schema"], row["table"])

    async def columns(self, name: str) -> list[asyncpg.Record]:
        return await self.conn.fetch(TABLE_COLUMNS, self.tables[name][0])

    def sql_name(self, name: str) -> str:
        _, schema, table = self.tables[name]
        return qualified(schema, table)

    async def count(self, name: str) -> int:
        return await self.conn.fetchval(f"select count(*) from {self.sql_name(name)}")


async def compare_databases(
    failed_dsn: str, restored_dsn: str, *, since: datetime | None
) -> dict[str, Any]:
    """Compare every table of the two databases; `since`: when the backup was taken."""
    failed_conn = await asyncpg.connect(failed_dsn)
    try:
        restored_conn = await asyncpg.connect(restored_dsn)
        try:
            async with (
                failed_conn.transaction(isolation="repeatable_read", readonly=True),
                restored_conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                failed, restored = _Side(failed_conn), _Side(restored_conn)
                await failed.load()
                await restored.load()
                names = sorted(failed.tables.keys() | restored.tables.keys())
                tables = [await _compare_table(failed, restored, name, since) for name in names]
                databases = {
                    "failed": await failed_conn.fetchval("select current_database()"),
                    "restored": await restored_conn.fetchval("select current_database()"),
                }
        finally:
            await restored_conn.close()
    finally:
        await failed_conn.close()
    return {"databases": databases, "since": since.isoformat() if since else None,
            "tables": tables}  # fmt: skip


def _empty(name: str) -> dict[str, Any]:
    return {
        "name": name, "state": "both", "compared_by": "primary key", "primary_key": [],
        "rows_failed": 0, "rows_restored": 0, "only_failed": 0, "changed": 0,
        "only_restored": 0, "samples": {"only_failed": [], "changed": [], "only_restored": []},
        "columns_only_failed": [], "columns_only_restored": [], "columns_retyped": [],
        "timestamp_column": None, "newer_than_backup": None,
    }  # fmt: skip


async def _compare_table(
    failed: _Side, restored: _Side, name: str, since: datetime | None
) -> dict[str, Any]:
    result = _empty(name)
    in_failed, in_restored = name in failed.tables, name in restored.tables
    failed_columns = await failed.columns(name) if in_failed else []

    async def failed_side() -> None:
        if in_failed:
            result["rows_failed"] = await failed.count(name)
            await _newer(failed, name, failed_columns, since, result)

    async def restored_side() -> None:
        if in_restored:
            result["rows_restored"] = await restored.count(name)

    await asyncio.gather(failed_side(), restored_side())
    if not (in_failed and in_restored):
        result["state"] = "only_failed" if in_failed else "only_restored"
        result["compared_by"] = "whole table"
        result["only_failed" if in_failed else "only_restored"] = (
            result["rows_failed"] if in_failed else result["rows_restored"]
        )
        return result
    restored_columns = await restored.columns(name)
    types_f = {c["name"]: c["type"] for c in failed_columns}
    types_r = {c["name"]: c["type"] for c in restored_columns}
    result["columns_only_failed"] = [c for c in types_f if c not in types_r]
    result["columns_only_restored"] = [c for c in types_r if c not in types_f]
    result["columns_retyped"] = [c for c in types_r if c in types_f and types_f[c] != types_r[c]]
    common = [c for c in types_r if types_f.get(c) == types_r[c]]
    pk_f, pk_r = _primary_key(failed_columns), _primary_key(restored_columns)
    keyed = bool(pk_r) and pk_f == pk_r and all(c in common for c in pk_r)
    result["primary_key"] = pk_r if keyed else []
    result["compared_by"] = "primary key" if keyed else "whole rows (no common primary key)"
    if not common:
        return result
    await _diff_rows(failed, restored, name, common, pk_r if keyed else [], types_r, result)
    return result


def _primary_key(columns: Sequence[asyncpg.Record]) -> list[str]:
    keyed = sorted((c for c in columns if c["in_pk"]), key=lambda c: c["pk_position"] or 0)
    return [c["name"] for c in keyed]


async def _newer(side: _Side, name: str, columns, since: datetime | None, result) -> None:
    times = [c["name"] for c in columns if c["type"].startswith("timestamp") or c["type"] == "date"]
    if not times or since is None:
        return
    column = next((c for c in _TIME_NAMES if c in times), times[0])
    result["timestamp_column"] = column
    result["newer_than_backup"] = await side.conn.fetchval(
        f"select count(*) from {side.sql_name(name)} where {quote_ident(column)}::timestamptz > $1",
        since,
    )


async def _diff_rows(
    failed: _Side, restored: _Side, name: str, common, pk: list[str], types, result
) -> None:
    row = "md5(row(" + ", ".join(f"t.{quote_ident(c)}" for c in common) + ")::text)"
    if len(pk) == 1:
        key = f"t.{quote_ident(pk[0])}::text"
    elif pk:
        key = "row(" + ", ".join(f"t.{quote_ident(c)}" for c in pk) + ")::text"
    else:
        key = row  # no primary key: a row is known by its content
    ranged = len(pk) == 1 and types[pk[0]] in _INTEGER
    if ranged:  # buckets are key ranges: a differing one is fetched through the key's index
        column = f"t.{quote_ident(pk[0])}"
        bucket = f"(floor({column}::numeric / {BUCKET_ROWS}))::bigint"
        low, high = f"$1::bigint * {BUCKET_ROWS}", f"($1::bigint + 1) * {BUCKET_ROWS}"
        where = f"{column} >= {low} and {column} < {high}"
    else:  # buckets are hashes of the key: differing ones are fetched a batch per scan
        buckets = max(1, max(result["rows_failed"], result["rows_restored"]) // BUCKET_ROWS + 1)
        bucket = f"(('x' || substr(md5({key}), 1, 8))::bit(32)::bigint % {buckets})"
        where = f"{bucket} = any($1::bigint[])"
    summary = (
        f"select {bucket} as b, count(*) as n, sum(('x' || substr({row}, 1, 15))::bit(60)::bigint)"
        f" as s from {{table}} t group by 1"
    )
    # Both sides at once (two connections, two server processes): a 1 GB pair of databases
    # is compared in the time of one scan, not two.
    summed_f, summed_r = await asyncio.gather(
        failed.conn.fetch(summary.format(table=failed.sql_name(name))),
        restored.conn.fetch(summary.format(table=restored.sql_name(name))),
    )
    sums_f = {r["b"]: (r["n"], r["s"]) for r in summed_f}
    sums_r = {r["b"]: (r["n"], r["s"]) for r in summed_r}
    differing = sorted(b for b in sums_f.keys() | sums_r.keys() if sums_f.get(b) != sums_r.get(b))
    fetch = (
        f"select {key} as k, {row} as h, count(*) as n from {{table}} t where {where} group by 1, 2"
    )
    step = 1 if ranged else HASH_BATCH
    for start in range(0, len(differing), step):
        chosen = differing[start] if ranged else differing[start : start + step]
        rows_f, rows_r = await asyncio.gather(
            failed.conn.fetch(fetch.format(table=failed.sql_name(name)), chosen),
            restored.conn.fetch(fetch.format(table=restored.sql_name(name)), chosen),
        )
        _tally(rows_f, rows_r, keyed=bool(pk), result=result)


def _tally(rows_f, rows_r, *, keyed: bool, result: dict[str, Any]) -> None:
    side_f: dict[str, dict[str, int]] = {}
    side_r: dict[str, dict[str, int]] = {}
    for rows, side in ((rows_f, side_f), (rows_r, side_r)):
        for r in rows:
            side.setdefault(r["k"], {})[r["h"]] = r["n"]
    samples = result["samples"]
    for key in sorted(side_f.keys() | side_r.keys(), key=_in_key_order):
        f, r = side_f.get(key, {}), side_r.get(key, {})
        if keyed:
            kind = "only_failed" if not r else "only_restored" if not f else None
            kind = kind or ("changed" if f != r else None)
            if kind:
                result[kind] += 1
                if len(samples[kind]) < SAMPLE:
                    samples[kind].append(key)
            continue
        extra = sum(f.values()) - sum(r.values())
        result["only_failed"] += max(0, extra)
        result["only_restored"] += max(0, -extra)


def _in_key_order(key: str) -> tuple[int, int, str]:
    """Integer keys in numeric order (so samples read 9, 10, 11), any other key as text."""
    digits = key[1:] if key.startswith("-") else key
    return (0, int(key), "") if digits.isdigit() else (1, 0, key)
