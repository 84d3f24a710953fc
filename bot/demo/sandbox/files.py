"""What `bot.demo.sandbox.build` writes: the project's files, its database SQL, tool shims, runbook.

Everything here is deterministic text: the same arguments give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

# --- The project (a Next.js + Prisma shop, as the seed plan's commands assume) -------------

NODE_DIR = Path(__file__).resolve().parent / "node"
# package.json and the package-lock.json `npm install` installs from: three small packages
# without install scripts, and Prisma's CLI as a local stand-in package (standin/prisma).
PACKAGE = json.loads((NODE_DIR / "project" / "package.json").read_text(encoding="utf-8"))
PACKAGE_LOCK = json.loads((NODE_DIR / "project" / "package-lock.json").read_text(encoding="utf-8"))


def package_json(extra: dict[str, str] | None = None) -> str:
    """package.json, with `extra` dependencies added (as a failed integration would)."""
    data = json.loads(json.dumps(PACKAGE))
    data["dependencies"].update(extra or {})
    data["dependencies"] = dict(sorted(data["dependencies"].items()))
    return json.dumps(data, indent=2) + "\n"


def package_lock(extra: dict[str, str] | None = None) -> str:
    """The committed lockfile, with entries for `extra` added as `npm install` would."""
    lock = json.loads(json.dumps(PACKAGE_LOCK))
    if extra:
        root = lock["packages"][""]
        root["dependencies"] = dict(sorted({**root["dependencies"], **extra}.items()))
        for name, spec in extra.items():
            version = spec.lstrip("^~")
            digest = hashlib.sha512(f"{name}@{version}".encode()).digest()
            lock["packages"][f"node_modules/{name}"] = {
                "version": version,
                "resolved": f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz",
                "integrity": "sha512-" + base64.b64encode(digest).decode(),
            }
        lock["packages"] = dict(sorted(lock["packages"].items()))
    return json.dumps(lock, indent=2) + "\n"


def env_secrets(db_name: str) -> dict[str, str]:
    """The secret values of the sandbox's `.env` (and the one the integration adds)."""
    digest = hashlib.sha256(db_name.encode()).hexdigest()
    return {
        "DATABASE_PASSWORD": f"sandbox-secret-{digest[:16]}",
        "API_TOKEN": f"sbx_tok_{digest[16:40]}",
        "WMS_API_KEY": f"wms-secret-{digest[40:56]}",
    }


def env_file(db_name: str) -> str:
    """The project's `.env` (git-ignored, as in a real project; the plan backs it up)."""
    secret = env_secrets(db_name)
    return (
        "# Ecom OS production settings. Never commit this file.\n"
        "NODE_ENV=production\n"
        f"DATABASE_PASSWORD={secret['DATABASE_PASSWORD']}\n"
        f"DATABASE_URL=postgresql://ecom:{secret['DATABASE_PASSWORD']}@localhost:5432/{db_name}\n"
        f"API_TOKEN={secret['API_TOKEN']}\n"
        'NEXT_PUBLIC_APP_NAME="Ecom OS"\n'
    )


SERVER_PY = '''\
"""Ecom OS, as far as the rollback sandbox needs it: a page that says so, on $PORT."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = b"<!doctype html><title>Ecom OS</title><h1>Ecom OS</h1><p>Orders, stock, shipping.</p>"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "3000"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''

SCHEMA_PRISMA = """\
generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL")
}

model Customer {
  id        Int      @id @default(autoincrement())
  email     String   @unique
  fullName  String   @map("full_name")
  createdAt DateTime @map("created_at")
  orders    Order[]

  @@map("customers")
}

model Order {
  id         Int         @id @default(autoincrement())
  customerId Int         @map("customer_id")
  status     String
  total      Decimal     @db.Decimal(12, 2)
  createdAt  DateTime    @map("created_at")
  customer   Customer    @relation(fields: [customerId], references: [id])
  items      OrderItem[]

  @@map("orders")
}

model OrderItem {
  id        Int     @id @default(autoincrement())
  orderId   Int     @map("order_id")
  sku       String
  quantity  Int
  unitPrice Decimal @map("unit_price") @db.Decimal(10, 2)
  order     Order   @relation(fields: [orderId], references: [id], onDelete: Cascade)

  @@map("order_items")
}

model AuditLog {
  id        BigInt   @id @default(autoincrement())
  entity    String
  entityId  Int      @map("entity_id")
  action    String
  actor     String
  createdAt DateTime @map("created_at")

  @@index([createdAt])
  @@map("audit_log")
}

model WmsInventoryTransaction {
  id            Int      @id @default(autoincrement())
  sku           String
  warehouse     String
  quantityDelta Int      @map("quantity_delta")
  reason        String
  createdAt     DateTime @map("created_at")

  @@map("wms_inventory_transaction")
}
"""

BUILD_JS = """\
// Ecom OS's build, as far as the rollback sandbox needs it: every dependency must load.
const { dependencies = {} } = require("../package.json");
for (const name of Object.keys(dependencies)) require(name);
console.log(process.argv.includes("--check") ? "  ✓ Types checked" : "  ✓ Compiled successfully");
"""

PROJECT_FILES = {
    ".gitignore": "node_modules/\n.next/\n.env\nbackup/\n",
    "README.md": "# Ecom OS\n\nOrders, stock and shipping. `npm run build`, then `npm start`.\n",
    "server.py": SERVER_PY,
    "scripts/build.js": BUILD_JS,
    "prisma/schema.prisma": SCHEMA_PRISMA,
    "app/layout.tsx": "export default function RootLayout({ children }: { children: "
    'React.ReactNode }) {\n  return <html lang="en"><body>{children}</body></html>;\n}\n',
    "app/page.tsx": 'import { Header } from "@/components/Header";\n\nexport default function '
    'Home() {\n  return <Header title="Ecom OS" />;\n}\n',
    "app/orders/page.tsx": 'import { OrderTable } from "@/components/OrderTable";\nimport { db } '
    'from "@/lib/db";\n\nexport default async function Orders() {\n  const orders = await '
    "db.order.findMany({ take: 50 });\n  return <OrderTable orders={orders} />;\n}\n",
    "app/api/v1/orders/route.ts": 'import { db } from "@/lib/db";\n\nexport async function GET() '
    "{\n  return Response.json(await db.order.findMany({ take: 100 }));\n}\n",
    "components/Header.tsx": "export function Header({ title }: { title: string }) {\n  return "
    "<h1>{title}</h1>;\n}\n",
    "components/OrderTable.tsx": 'import { formatMoney } from "@/lib/format";\n\nexport function '
    "OrderTable({ orders }: { orders: { id: number; total: number }[] }) {\n  return <ul>"
    "{orders.map((o) => <li key={o.id}>{formatMoney(o.total)}</li>)}</ul>;\n}\n",
    "lib/db.ts": 'import { PrismaClient } from "@prisma/client";\n\nexport const db = new '
    "PrismaClient();\n",
    "lib/format.ts": "export function formatMoney(value: number): string {\n  return "
    "`€${value.toFixed(2)}`;\n}\n",
}

# What a half-done WMS integration leaves behind: committed on its branch, then not committed.
WMS_COMMITTED = {
    "app/wms/page.tsx": 'import { StockTable } from "@/components/wms/StockTable";\n\nexport '
    "default function Wms() {\n  return <StockTable />;\n}\n",
    "components/wms/StockTable.tsx": 'import { wms } from "@/lib/wms/client";\n\nexport function '
    "StockTable() {\n  return <table>{wms.stock().map(String)}</table>;\n}\n",
    "lib/wms/client.ts": "export const wms = { stock: () => [] as number[], base: process.env."
    "WMS_BASE_URL };\n",
    "lib/db.ts": 'import { PrismaClient } from "@prisma/client";\nimport { wms } from '
    '"./wms/client";\n\nexport const db = new PrismaClient();\nexport const stock = wms;\n',
}
WMS_UNCOMMITTED = {
    "app/api/v1/wms/route.ts": 'import { wms } from "@/lib/wms/client";\n\nexport async function '
    "GET() {\n  return Response.json(wms.stock());\n}\n",
    "lib/wms/sync.ts": "export async function syncInventory(): Promise<void> {\n  throw new "
    'Error("not implemented");\n}\n',
    "lib/format.ts": "export function formatMoney(value: number): string {\n  return "
    "`€${value.toFixed(3)}`; // WMS sends three decimals\n}\n",
}
WMS_DEPENDENCIES = {"@acme/wms-sdk": "^2.3.0"}
WMS_DEPENDENCIES_UNCOMMITTED = {"@acme/wms-sdk": "^2.3.0", "@acme/wms-events": "^0.9.1"}
WMS_SCHEMA_ADDITION = """
model WmsStockMovement {
  id        Int      @id @default(autoincrement())
  sku       String
  delta     Int
  createdAt DateTime @default(now()) @map("created_at")

  @@map("wms_stock_movement")
}
"""


def wms_env_lines(db_name: str) -> str:
    """What the integration appends to `.env`."""
    return (
        f"WMS_API_KEY={env_secrets(db_name)['WMS_API_KEY']}\n"
        "WMS_BASE_URL=https://wms.example.test/api/v1\n"
    )


# --- The database ---------------------------------------------------------------------------


def database_sql(rows: int) -> str:
    """Tables and deterministic rows of the shop's database (all dated before 2024)."""
    customers = max(10, rows // 10)
    inventory = max(20, rows // 10)
    step = max(1, 60 * 86400 // max(rows, 1))  # orders spread over 60 days
    return f"""
CREATE TABLE customers (
  id serial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  full_name text NOT NULL,
  created_at timestamp(0) NOT NULL
);
INSERT INTO customers (email, full_name, created_at)
SELECT format('customer%s@example.test', g), format('Customer %s', g),
       timestamp '2023-08-01' + g * interval '1 hour'
FROM generate_series(1, {customers}) AS g ORDER BY g;

CREATE TABLE orders (
  id serial PRIMARY KEY,
  customer_id integer NOT NULL REFERENCES customers (id),
  status text NOT NULL,
  total numeric(12, 2) NOT NULL DEFAULT 0,
  created_at timestamp(0) NOT NULL
);
INSERT INTO orders (customer_id, status, created_at)
SELECT 1 + (g * 7) % {customers},
       (ARRAY['pending', 'paid', 'shipped', 'delivered', 'cancelled'])[1 + g % 5],
       timestamp '2023-10-01' + g * interval '{step} seconds'
FROM generate_series(1, {rows}) AS g ORDER BY g;

CREATE TABLE order_items (
  id serial PRIMARY KEY,
  order_id integer NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  sku text NOT NULL,
  quantity integer NOT NULL,
  unit_price numeric(10, 2) NOT NULL
);
INSERT INTO order_items (order_id, sku, quantity, unit_price)
SELECT o, format('SKU-%s', lpad(((o * 31 + i * 17) % 500)::text, 4, '0')), 1 + (o + i) % 4,
       ((o * 13 + i * 7) % 9000 + 500) / 100.0
FROM generate_series(1, {rows}) AS o, generate_series(1, 2) AS i ORDER BY o, i;
UPDATE orders SET total = s.total
FROM (SELECT order_id, sum(quantity * unit_price) AS total FROM order_items GROUP BY order_id) s
WHERE s.order_id = orders.id;

CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  entity text NOT NULL,
  entity_id integer NOT NULL,
  action text NOT NULL,
  actor text NOT NULL,
  created_at timestamp(0) NOT NULL
);
CREATE INDEX audit_log_created_at_idx ON audit_log (created_at);
INSERT INTO audit_log (entity, entity_id, action, actor, created_at)
SELECT 'order', id, 'order.created', 'web', created_at FROM orders ORDER BY id;

CREATE TABLE wms_inventory_transaction (
  id serial PRIMARY KEY,
  sku text NOT NULL,
  warehouse text NOT NULL,
  quantity_delta integer NOT NULL,
  reason text NOT NULL,
  created_at timestamp(0) NOT NULL
);
INSERT INTO wms_inventory_transaction (sku, warehouse, quantity_delta, reason, created_at)
SELECT format('SKU-%s', lpad((g * 37 % 500)::text, 4, '0')),
       (ARRAY['AMS-1', 'BER-2', 'LIS-3'])[1 + g % 3],
       CASE WHEN g % 4 = 0 THEN -(g % 9 + 1) ELSE g % 25 + 1 END,
       CASE WHEN g % 4 = 0 THEN 'shipment' ELSE 'receipt' END,
       timestamp '2023-10-01' + g * interval '6 hours'
FROM generate_series(1, {inventory}) AS g ORDER BY g;
"""


# A migration that went wrong: new column, changed and deleted rows, a table replaced.
BREAK_SQL = """
BEGIN;
ALTER TABLE orders ADD COLUMN wms_sync_status text NOT NULL DEFAULT 'pending';
UPDATE orders SET status = 'wms_hold', wms_sync_status = 'failed' WHERE id % 9 = 0;
INSERT INTO audit_log (entity, entity_id, action, actor, created_at)
SELECT 'order', id, 'wms.sync_failed', 'wms-integration',
       timestamp '2024-01-01 09:00:00' + id * interval '1 second'
FROM orders WHERE id % 9 = 0 ORDER BY id;
DELETE FROM orders WHERE id % 10 = 0;
CREATE TABLE wms_stock_movement (
  id serial PRIMARY KEY,
  sku text NOT NULL,
  delta integer NOT NULL,
  created_at timestamp(0) NOT NULL DEFAULT now()
);
INSERT INTO wms_stock_movement (sku, delta)
SELECT sku, quantity_delta FROM wms_inventory_transaction ORDER BY id;
DROP TABLE wms_inventory_transaction;
COMMIT;
"""

# --- Tool shims (root/bin) ------------------------------------------------------------------
# Each is a Python script; `_shim.py` (config, tool log, the app process) is shared.
