"""`python -m benchmarks.explain [N]`: the plans of the queries behind `status`, `history`,
`declare` and the Home tab, on a database holding N (10,000) past incidents.

Builds the same year of history as `benchmarks/year.py` on a fresh database, then prints
`EXPLAIN (ANALYZE, BUFFERS)` of each query with the arguments those paths pass.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from benchmarks import database, year
from benchmarks.acks import STATUS_CHANNEL
from bot.db.postgres import migrate
from bot.runs.store import ACTIVE
from bot.slack import outbox

CLOSED = ["resolved", "cancelled"]

HISTORY = (
    "select i.*, (select min(a.decided_at) from approvals a where a.incident_id = i.id"
    "   and a.state in ('approved', 'rejected')) as decided_at,"
    " r.ended_at as run_ended_at, r.state as run_state, r.verification_passed"
    " from incidents i left join lateral (select ended_at, state, verification_passed"
    "   from runs where incident_id = i.id and kind = 'rollback' order by id desc limit 1)"
    " r on true where ($2::text is null or i.channel = $2) order by i.id desc limit $1"
)
QUERIES = (  # (what runs it, SQL, arguments): the text bot/*.py sends
    ("history: comms_store.history_rows", HISTORY, (15, STATUS_CHANNEL)),
    ("history in a channel without incidents", HISTORY, (15, "CBQUIET01")),
    (
        "status, home: store.open_incidents",
        "select * from incidents where state <> all($1::text[])"
        " and ($2::text is null or channel = $2) order by id desc",
        (CLOSED, None),
    ),
    (
        "status: the incident's latest audit rows",
        "select * from (select * from events where incident_id = $1 order by id desc limit 8)"
        " latest order by id",
        (9999,),
    ),
    (
        "home: run_store.latest_backup",
        "select * from runs where kind = 'backup' and state = 'succeeded'"
        " order by ended_at desc, id desc limit 1",
        (),
    ),
    (
        "home: run_store.backup_artifacts",
        "select * from artifacts where run_id = $1 order by id",
        (10_365,),
    ),
    (
        "home: comms_store.active_runs",
        "select * from runs where state in ('held', 'queued', 'running', 'waiting',"
        " 'interrupted') order by id",
        (),
    ),
    (
        "declare (and every rollback): run_store.active_run",
        "select * from runs where state = any($1::text[]) order by id limit 1",
        (list(ACTIVE),),
    ),
    ("after declare, the sender: outbox.dispatch", outbox._DUE_CHANNELS, ()),
    ("the sender, each delivery: outbox._head", outbox._HEAD, (STATUS_CHANNEL,)),
)


async def explain(dsn: str) -> str:
    """Every query's plan on `dsn`, as text."""
    conn = await asyncpg.connect(dsn)
    try:
        out = []
        for what, sql, args in QUERIES:
            rows = await conn.fetch("explain (analyze, buffers, costs off) " + sql, *args)
            out.append(f"-- {what}\n" + "\n".join(r[0] for r in rows))
        return "\n\n".join(out)
    finally:
        await conn.close()


async def main(count: int) -> None:
    """Fill a fresh database with `count` incidents and print the plans."""
    async with database.fresh_database(database.server_dsn()) as dsn:
        await migrate(dsn)
        await year.fill(dsn, count)
        print(await explain(dsn))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
