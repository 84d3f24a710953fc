"""What a PostgreSQL database holds, read from its catalog: the I/O side of the manifest."""

from __future__ import annotations

from typing import Any

import asyncpg

from actions.manifest import Manifest, build_manifest

USER_TABLES = """
select c.oid, n.nspname as schema, c.relname as table
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p') and not c.relispartition
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
order by n.nspname, c.relname
"""
COLUMNS = """
select a.attrelid as oid, a.attname as name, format_type(a.atttypid, a.atttypmod) as type,
       a.attnotnull as not_null, pg_get_expr(d.adbin, d.adrelid) as default
from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
where a.attrelid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped
order by a.attrelid, a.attnum
"""
CONSTRAINTS = """
select conrelid as oid, conname || ' ' || pg_get_constraintdef(oid) as text
from pg_constraint where conrelid = any($1::oid[])
"""
INDEXES = "select indrelid as oid, pg_get_indexdef(indexrelid) as text from pg_index"
INDEXES += " where indrelid = any($1::oid[])"


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def table_name(schema: str, table: str) -> str:
    """How reports name a table: bare in `public`, schema-qualified elsewhere."""
    return table if schema == "public" else f"{schema}.{table}"


def qualified(schema: str, table: str) -> str:
    """The table's quoted, schema-qualified SQL name."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


async def user_tables(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """(oid, schema, table) of every ordinary table outside the system schemas."""
    return await conn.fetch(USER_TABLES)


async def describe(conn: asyncpg.Connection, *, count_rows: bool = True) -> list[dict[str, Any]]:
    """Each table's name, columns (with type, not-null, default), constraints, indexes and
    exact row count (`count(*)`, one query per table)."""
    tables = await user_tables(conn)
    oids = [t["oid"] for t in tables]
    described: dict[int, dict[str, Any]] = {
        t["oid"]: {"name": table_name(t["schema"], t["table"]), "schema": t["schema"],
                   "table": t["table"], "columns": [], "constraints": [], "indexes": [], "rows": 0}
        for t in tables
    }  # fmt: skip
    for row in await conn.fetch(COLUMNS, oids):
        described[row["oid"]]["columns"].append(
            {"name": row["name"], "type": row["type"], "not_null": row["not_null"],
             "default": row["default"]}
        )  # fmt: skip
    for query, key in ((CONSTRAINTS, "constraints"), (INDEXES, "indexes")):
        for row in await conn.fetch(query, oids):
            described[row["oid"]][key].append(row["text"])
    if count_rows:
        for table in described.values():
            sql = f"select count(*) from {qualified(table['schema'], table['table'])}"
            table["rows"] = await conn.fetchval(sql)
    return list(described.values())


async def read_manifest(dsn: str) -> Manifest:
    """Connect to `dsn` and describe its database as a manifest (one read-only transaction)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            database = await conn.fetchval("select current_database()")
            return build_manifest(database, await describe(conn))
    finally:
        await conn.close()
