"""The pure parts of `python -m benchmarks --size real`: the shop's SQL and the bash scripts."""

from benchmarks import real_size, restore_formats, shop_db


def test_the_shop_sql_creates_every_table_at_the_asked_size():
    sql = shop_db.generate_sql(0.001)
    for table in ("customers", "products", "orders", "order_items", "inventory", "audit_log"):
        assert f"create table {table} (" in sql
    size = shop_db.shop_size(0.001)
    assert f"generate_series(1::bigint, {size.orders})" in sql
    assert shop_db.shop_size(1.0).total_rows > 9_000_000


def test_the_bash_baseline_runs_the_shipped_commands_rendered_like_the_bot(tmp_path):
    runbook = real_size.write_runbook(tmp_path / "r.toml", workdir=tmp_path,
                                      db_url="postgresql://u@h/shop_bench")  # fmt: skip
    backup, dump = real_size.bash_script(runbook, kind="backup", ts="20240101_120000")
    assert dump == "backup/20240101_120000/db_backup_20240101_120000.sql"
    assert "pg_dump -d shop_bench > backup/20240101_120000/db_backup_20240101_120000.sql" in backup
    rollback, _ = real_size.bash_script(runbook, kind="rollback", ts="20240101_120001", dump=dump)
    assert "ALTER DATABASE" in rollback and "shop_bench_failed_20240101_120001" in rollback
    assert f"--single-transaction -d shop_bench < {dump}" in rollback
    assert rollback.startswith("set -euo pipefail\n")


def test_both_restore_formats_restore_into_a_fresh_database():
    run = restore_formats.commands("shop", plain="d.sql", directory="d.dir")
    assert run["dump_directory"].endswith("pg_dump -Fd -j 2 -d shop -f d.dir")
    assert run["restore_directory"].startswith("dropdb --if-exists shop\ncreatedb shop\n")
    assert "pg_restore -j 2 --exit-on-error -d shop d.dir" in run["restore_directory"]


def test_the_custom_format_is_one_file_restored_in_parallel():
    run = restore_formats.commands("shop", plain="d.sql", directory="d.dir")
    assert run["dump_custom"] == "pg_dump -Fc -d shop -f d.sql.custom"
    assert run["restore_custom"].endswith("pg_restore -j 2 --exit-on-error -d shop d.sql.custom")
