"""The `data` scenario through the front door, on the demo's sandbox after its failure."""

from __future__ import annotations

from tests.e2e.harness import fetch, text_of
from tests.e2e.test_sandbox_rollback import (
    CHANNEL,
    DECLARER,
    approve,
    approve_button,
    incident_thread,
    start_on,
    take_backup,
    wait_rollback,
)


async def test_data_recovery_brings_back_the_table_the_failure_dropped(start_bot, fake, sandbox):
    bot = await start_on(start_bot, sandbox)
    await take_backup(bot, fake, start_bot.dsn)
    table = "wms_inventory_transaction"
    before = sandbox.psql(f"COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT")
    sandbox.break_like_failed_integration()  # drops the table, among other damage

    await bot.command(
        "declare critical data inventory lost", user=DECLARER, channel=CHANNEL,
        response_url=fake.response_url(),
    )  # fmt: skip
    await fake.wait_for(
        lambda f: [p for p in f.calls_to("chat.postMessage")
                   if "Rollback requested" in p.args.get("text", "")],
        timeout=20,
    )  # fmt: skip
    value, ts = approve_button(fake)
    await approve(bot, fake, value, ts)
    assert await wait_rollback(start_bot.dsn, "succeeded", "waiting") == "succeeded"
    steps = await fetch(start_bot.dsn, "select name, status from step_results order by id")
    assert [s["status"] for s in steps if s["status"] != "succeeded"] == [], [
        tuple(s) for s in steps
    ]

    assert sandbox.psql(f"COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT") == before
    await fake.wait_for(
        lambda f: any("Rollback finished" in text_of(m) for m in incident_thread(f)), timeout=30
    )
    thread = "\n".join(text_of(m) for m in incident_thread(fake))
    assert "recreating it from the backup" in thread
    assert f"Table {table} does not exist: nothing to keep" in thread  # the failure dropped it
