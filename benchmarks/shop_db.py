"""A shop database generated with SQL (nothing shipped): about 1 GB at scale 1.0.

Customers, products, orders, order items, inventory per warehouse and an audit log, with
primary keys, foreign keys and secondary indexes, filled by `generate_series` so it is the
same on every run (no random()). `generate_sql(scale)` is pure; `shop_template` builds it
once per benchmark run as a template database, and `copy_of` clones it for each trial
(`CREATE DATABASE … TEMPLATE …`), which is much faster than generating it again.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from actions.db_catalog import quote_ident
from bot.demo.sandbox.build import database_url


@dataclass(frozen=True)
class ShopSize:
    """Row counts of each table."""

    customers: int
    products: int
    orders: int
    items_per_order: int
    warehouses: int
    audit_rows: int

    @property
    def total_rows(self) -> int:
        """Rows in every table together."""
        return (
            self.customers
            + self.products
            + self.orders * (1 + self.items_per_order)
            + self.products * self.warehouses
            + self.audit_rows
        )


def shop_size(scale: float) -> ShopSize:
    """Row counts at `scale` (1.0: about 1 GB on disk, 9 million rows); at least 10 each."""

    def n(rows: int) -> int:
        return max(10, int(rows * scale))

    return ShopSize(
        customers=n(400_000),
        products=n(40_000),
        orders=n(1_600_000),
        items_per_order=4,
        warehouses=4,
        audit_rows=n(600_000),
    )


def generate_sql(scale: float) -> str:
    """The SQL that creates and fills the shop at `scale`, in one script (pure)."""
    s = shop_size(scale)
    return f"""
create table customers (
    id bigint primary key,
    email text not null unique,
    name text not null,
    city text not null,
    created_at timestamptz not null
);
insert into customers
select i, 'customer' || i || '@example.com', 'Customer number ' || i,
       (array['Lisbon','Porto','Berlin','Paris','Madrid','Rome','Vienna','Oslo'])[1 + i % 8],
       timestamptz '2023-01-01 00:00:00+00' + (i % 500) * interval '1 day'
from generate_series(1::bigint, {s.customers}) i;

create table products (
    id bigint primary key,
    sku text not null unique,
    name text not null,
    description text not null,
    price numeric(10, 2) not null
);
insert into products
select i, 'SKU-' || lpad(i::text, 8, '0'), 'Product ' || i,
       repeat('A sturdy thing for the home, model ' || i || '. ', 3),
       ((i * 37) % 20000) / 100.0 + 1
from generate_series(1::bigint, {s.products}) i;

create table orders (
    id bigint primary key,
    customer_id bigint not null references customers (id),
    status text not null,
    placed_at timestamptz not null,
    shipping_address text not null
);
insert into orders
select i, 1 + (i * 7919) % {s.customers},
       (array['placed','paid','shipped','delivered','returned'])[1 + i % 5],
       timestamptz '2023-01-01 00:00:00+00' + (i % 600000) * interval '1 minute',
       i || ' Long Street, Apartment ' || (i % 300) || ', Somewhere'
from generate_series(1::bigint, {s.orders}) i;
create index orders_customer on orders (customer_id);
create index orders_placed_at on orders (placed_at);

create table order_items (
    order_id bigint not null references orders (id),
    line int not null,
    product_id bigint not null references products (id),
    quantity int not null,
    unit_price numeric(10, 2) not null,
    primary key (order_id, line)
);
insert into order_items
select o, l, 1 + (o * 31 + l * 101) % {s.products}, 1 + (o + l) % 5,
       ((o * 13 + l) % 20000) / 100.0 + 1
from generate_series(1::bigint, {s.orders}) o, generate_series(1::bigint, {s.items_per_order}) l;
create index order_items_product on order_items (product_id);

create table inventory (
    product_id bigint not null references products (id),
    warehouse int not null,
    quantity int not null,
    updated_at timestamptz not null,
    primary key (product_id, warehouse)
);
insert into inventory
select p, w, (p * w) % 1000, timestamptz '2024-01-01 00:00:00+00' + (p % 90) * interval '1 hour'
from generate_series(1::bigint, {s.products}) p, generate_series(1::bigint, {s.warehouses}) w;

create table audit_log (
    id bigint primary key,
    created_at timestamptz not null,
    actor text not null,
    action text not null,
    details text not null
);
insert into audit_log
select i, timestamptz '2023-06-01 00:00:00+00' + i * interval '10 seconds',
       'user' || (i % 97), (array['update','insert','delete'])[1 + i % 3],
       'changed order ' || (1 + i % {s.orders}) || ' field status'
from generate_series(1::bigint, {s.audit_rows}) i;
create index audit_log_created_at on audit_log (created_at);
""" + "".join(
        # The benchmark times dumps and restores one after another: an autovacuum of the
        # freshly loaded gigabyte must not land in the next measurement. Dumps keep this.
        f"alter table {table} set (autovacuum_enabled = false);\n"
        for table in ("customers", "products", "orders", "order_items", "inventory", "audit_log")
    )


async def generate(dsn: str, scale: float) -> None:
    """Create and fill the shop in the (empty) database at `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(generate_sql(scale))
        # hint bits, visibility map and statistics now, once: every copy starts from them
        await conn.execute("vacuum (freeze, analyze)")
    finally:
        await conn.close()


async def database_bytes(server: str, name: str) -> int:
    """pg_database_size of `name`."""
    conn = await asyncpg.connect(server)
    try:
        return await conn.fetchval("select pg_database_size($1)", name)
    finally:
        await conn.close()


async def admin(server: str, *statements: str) -> None:
    """Run statements on the server's maintenance connection, one by one."""
    conn = await asyncpg.connect(server)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def copy_of(server: str, template: str, name: str) -> None:
    """(Re)create database `name` as a copy of `template` (a file copy, no WAL of the data)."""
    await admin(
        server,
        f"drop database if exists {quote_ident(name)} with (force)",
        f"create database {quote_ident(name)} template {quote_ident(template)} strategy file_copy",
    )


@contextlib.asynccontextmanager
async def shop_template(server: str, name: str, scale: float) -> AsyncIterator[str]:
    """A template database `name` holding the shop, generated once; dropped afterwards."""
    await admin(server, f"drop database if exists {quote_ident(name)} with (force)")
    await admin(server, f"create database {quote_ident(name)}")
    try:
        await generate(database_url(server, name), scale)
        yield name
    finally:
        await admin(server, f"drop database if exists {quote_ident(name)} with (force)")
