"""The failed-vs-restored comparison on a real PostgreSQL: keyed by primary key, chunked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from actions import data_diff, discarded
from actions.data_diff import compare_databases
from tests.conftest import dsn_for_database

SCHEMA = """
create table orders (id serial primary key, status text not null, created_at timestamp(0));
insert into orders (status, created_at)
  select 'paid', timestamp '2023-10-01' + g * interval '1 minute' from generate_series(1, 12000) g;
create table lines (order_id int, n int, sku text, primary key (order_id, n));
insert into lines select g, 1, 'SKU-' || g from generate_series(1, 50) g;
create table tags (label text primary key, uses int);
insert into tags select 'tag-' || g, g from generate_series(1, 30) g;
create table notes (body text);
insert into notes select 'note ' || g from generate_series(1, 5) g;
create table gone (id int primary key);
insert into gone values (1), (2);
"""
FAILED = """
insert into orders (status, created_at) values ('paid', now()), ('paid', now()), ('new', now());
update orders set status = 'wms_hold' where id in (7, 9000);
delete from orders where id = 11;
alter table orders add column wms text;
insert into lines values (1, 2, 'SKU-X');
update tags set uses = 0 where label = 'tag-3';
insert into tags values ('tag-new', 1);
insert into notes values ('note 1'), ('extra');
create table wms_stock (id int primary key);
insert into wms_stock select generate_series(1, 4);
drop table gone;
"""


@pytest.fixture
async def two_databases(pg_server_dsn):
    names = [f"t_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        for name in names:
            await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    dsns = [dsn_for_database(pg_server_dsn, n) for n in names]
    for dsn in dsns:
        conn = await asyncpg.connect(dsn)
        await conn.execute(SCHEMA)
        await conn.close()
    yield dsns
    conn = await asyncpg.connect(pg_server_dsn)
    try:
        for name in names:
            await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


@pytest.mark.parametrize(("bucket_rows", "batch"), [(1000, 20), (10, 2)])
async def test_every_kind_of_difference_is_counted_by_key(
    two_databases, monkeypatch, bucket_rows, batch
):
    monkeypatch.setattr(data_diff, "BUCKET_ROWS", bucket_rows)  # several buckets, most equal
    monkeypatch.setattr(data_diff, "HASH_BATCH", batch)
    failed, restored = two_databases
    conn = await asyncpg.connect(failed)
    await conn.execute(FAILED)
    await conn.close()
    since = datetime.now(UTC) - timedelta(minutes=5)
    result = await compare_databases(failed, restored, since=since)
    tables = {t["name"]: t for t in result["tables"]}

    orders = tables["orders"]
    assert (orders["only_failed"], orders["changed"], orders["only_restored"]) == (3, 2, 1)
    assert orders["samples"]["only_failed"] == ["12001", "12002", "12003"]
    assert sorted(orders["samples"]["changed"]) == ["7", "9000"]
    assert orders["samples"]["only_restored"] == ["11"]
    assert orders["columns_only_failed"] == ["wms"]
    assert (orders["timestamp_column"], orders["newer_than_backup"]) == ("created_at", 3)
    assert tables["lines"]["only_failed"] == 1 and tables["lines"]["primary_key"] == [
        "order_id",
        "n",
    ]
    tags = tables["tags"]  # a text key: hashed buckets
    assert (tags["only_failed"], tags["changed"], tags["only_restored"]) == (1, 1, 0)
    notes = tables["notes"]  # no primary key: compared as a multiset of rows
    assert (notes["only_failed"], notes["only_restored"]) == (2, 0)
    assert notes["compared_by"].startswith("whole rows")
    assert tables["wms_stock"]["state"] == "only_failed" and tables["wms_stock"]["only_failed"] == 4
    assert tables["gone"]["state"] == "only_restored" and tables["gone"]["only_restored"] == 2

    assert discarded.discarded_rows(result) == 3 + 1 + 1 + 2 + 4
    lines = discarded.table_lines(result)
    [orders_line] = [line for line in lines if line.startswith("orders: ")]
    assert orders_line.startswith(
        "orders: 3 rows only in the failed state (id 12001, 12002, 12003)"
    )
    assert (
        "2 rows changed (id 7, 9000)" in orders_line
        and "columns dropped by the restore: wms" in orders_line
    )
    assert any("wms_stock: the table existed only in the failed state" in line for line in lines)
    assert "they are kept in the database K" in discarded.headline(result, kept="K")


async def test_identical_databases_discard_nothing(two_databases):
    result = await compare_databases(*two_databases, since=None)
    assert discarded.discarded_rows(result) == 0 and discarded.table_lines(result) == []
    assert discarded.headline(result, kept="K").startswith("No row that existed only")


def test_dsns_resolve_a_bare_name_on_the_other_server_and_refuse_nonsense():
    restored = "postgresql://app:pw@db:5432/shop"
    assert discarded.resolve_dsns("shop_failed_1", restored) == (
        "postgresql://app:pw@db:5432/shop_failed_1",
        restored,
    )
    for failed, again in (("shop", restored), ("a b", restored), ("x", "y")):
        with pytest.raises(discarded.CompareError):
            discarded.resolve_dsns(failed, again)
