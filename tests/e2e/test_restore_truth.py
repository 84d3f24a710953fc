"""What a database rollback restored and discarded, told truthfully, on the sandbox."""

from __future__ import annotations

import json

from tests.e2e.comms_support import wait_row
from tests.e2e.harness import fetch, text_of
from tests.e2e.test_sandbox_rollback import until
from tests.e2e.truth_support import (
    add_orders,
    approve,
    backup,
    declare,
    discarded_message,
    drop_kept,
    ended_rollback,
    notice_text,
    order_count,
    start_keeping,
    wait_request,
)


async def test_orders_written_after_the_backup_are_named_in_thread_postmortem_and_notice(
    start_bot, fake, sandbox, tmp_path
):
    try:
        bot = await start_keeping(start_bot, sandbox)
        await backup(bot, fake, start_bot.dsn)
        before = order_count(sandbox)
        add_orders(sandbox, 3)
        sandbox.psql("UPDATE orders SET status = 'wms_hold' WHERE id IN (9, 18);")
        await declare(bot, fake)
        await approve(bot, fake, await wait_request(fake))
        run = await ended_rollback(start_bot.dsn)
        assert run["state"] == "succeeded"
        assert order_count(sandbox) == before  # the restore really discarded them

        [stored] = await fetch(start_bot.dsn, "select * from data_comparisons")
        kept = f"{sandbox.db_name}_failed_{run['ts']}"
        assert (stored["failed_database"], stored["restored_database"]) == (kept, sandbox.db_name)
        assert stored["error"] is None and stored["discarded_rows"] == 3
        tables = json.loads(stored["result"])["tables"]
        [orders] = [t for t in tables if t["name"] == "orders"]
        assert (orders["only_failed"], orders["changed"], orders["newer_than_backup"]) == (3, 2, 3)
        kept_count = sandbox.psql("SELECT count(*) FROM orders", database=kept).strip()
        assert int(kept_count) == before + 3  # the failed state is still there, to reconcile

        summary = await fake.wait_for(lambda f: discarded_message(f), timeout=30)
        new_ids = ", ".join(str(before + n) for n in (1, 2, 3))
        assert f"orders: 3 rows only in the failed state (id {new_ids}); 2 rows changed" in summary
        assert "3 rows in the failed state are newer than the backup (by created_at)" in summary
        assert (
            "3 rows that existed only in the failed state are not in the restored database "
            f"(3 in orders); they are kept in the database {kept}."
        ) in summary

        notice = await fake.wait_for(lambda f: notice_text(f), timeout=30)
        assert "No data has been lost" not in notice
        assert (
            "3 records written after the backup are not in the restored system (3 in orders)"
            in notice
        )
        assert f"They are kept (in the database {kept}) and will be reconciled." in notice

        await wait_row(start_bot.dsn, "select 1 from postmortems where state = 'created'")
        document = (tmp_path / "data" / "postmortems" / "RB-1.md").read_text()
        assert "## Data: what the rollback discarded" in document
        assert "orders: 3 rows only in the failed state" in document
        assert (
            "3 rows that existed only in the failed state are not in the restored database"
            in document
        )
    finally:
        await drop_kept(sandbox)


async def test_a_rollback_that_discards_nothing_says_no_data_was_lost(start_bot, fake, sandbox):
    try:
        bot = await start_keeping(start_bot, sandbox)
        await backup(bot, fake, start_bot.dsn)
        sandbox.psql(
            "ALTER TABLE orders ADD COLUMN wms_sync_status text;"
            "UPDATE orders SET status = 'wms_hold' WHERE id % 50 = 0;"
        )
        await declare(bot, fake)
        await approve(bot, fake, await wait_request(fake))
        run = await ended_rollback(start_bot.dsn)
        checks = await fetch(start_bot.dsn, "select name, passed, detail from check_results")
        assert run["verification_passed"] is True, [tuple(c) for c in checks]
        manifest = next(c for c in checks if c["name"] == "Database matches the backup")
        assert manifest["detail"].startswith("5 tables and ")
        summary = await fake.wait_for(lambda f: discarded_message(f), timeout=30)
        assert "orders: 40 rows changed" in summary
        assert "columns dropped by the restore: wms_sync_status" in summary
        assert "No row that existed only in the failed state was discarded." in summary
        notice = await fake.wait_for(lambda f: notice_text(f), timeout=30)
        assert "No data has been lost" in notice and "records written after" not in notice
    finally:
        await drop_kept(sandbox)


async def test_the_manifest_check_names_the_table_an_incomplete_restore_left_out(
    start_bot, fake, sandbox
):
    try:
        bot = await start_keeping(start_bot, sandbox, incomplete=True)
        await backup(bot, fake, start_bot.dsn)
        [manifest] = await fetch(start_bot.dsn, "select * from backup_manifests")
        assert {t["name"] for t in json.loads(manifest["tables"])} >= {"orders", "audit_log"}
        await declare(bot, fake)
        await approve(bot, fake, await wait_request(fake))
        run = await ended_rollback(start_bot.dsn)
        assert run["verification_passed"] is False
        [check] = await fetch(
            start_bot.dsn, "select * from check_results where name = 'Database matches the backup'"
        )
        assert not check["passed"]
        assert check["detail"].startswith("1 tables differ from the backup: audit_log: missing")
        notice = await fake.wait_for(lambda f: notice_text(f), timeout=30)
        assert "No data has been lost" not in notice and "Database matches the backup" in notice
        summary = await fake.wait_for(lambda f: discarded_message(f), timeout=30)
        assert "audit_log: the table existed only in the failed state" in summary
    finally:
        await drop_kept(sandbox)


__all__ = ["text_of", "until"]
