"""Restore speed at 1 GB: the plan's plain SQL (`psql < dump`) against the directory format
with parallel jobs (`pg_dump -Fd -j 2`, `pg_restore -j 2`), each restore checked against the
shop's manifest (row counts, columns, schema fingerprint) with the bot's own comparison."""

from __future__ import annotations

import asyncio
import shlex
import time

from actions.db_catalog import read_manifest
from actions.manifest import compare_manifests
from benchmarks.report import Row, times
from bot.demo.sandbox.build import database_url

JOBS = 2


def commands(db: str, *, plain: str, directory: str, custom: str = "") -> dict[str, str]:
    """The commands compared (pure): dump and restore in each format."""
    d, p, f = shlex.quote(db), shlex.quote(plain), shlex.quote(directory)
    c = shlex.quote(custom or plain + ".custom")
    fresh = f"dropdb --if-exists {d}\ncreatedb {d}\n"
    return {
        "dump_plain": f"pg_dump -d {d} > {p}",
        "dump_directory": f"rm -rf {f}\npg_dump -Fd -j {JOBS} -d {d} -f {f}",
        "restore_plain": fresh + f"psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d {d} < {p}",
        "restore_directory": fresh + f"pg_restore -j {JOBS} --exit-on-error -d {d} {f}",
        # one file (what the bot's artifacts are), restored in parallel; the dump is serial
        "dump_custom": f"pg_dump -Fc -d {d} -f {c}",
        "restore_custom": fresh + f"pg_restore -j {JOBS} --exit-on-error -d {d} {c}",
    }


async def _timed(shop, script: str) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script, cwd=shop.workdir, env=shop.env
    )
    if await process.wait() != 0:
        raise RuntimeError(f"failed: {script}")
    return time.perf_counter() - started


async def _matches(shop, db: str, expected) -> str | None:
    """None when the restored database matches the manifest, else the differences."""
    actual = await read_manifest(database_url(shop.server, db))
    differences = compare_manifests(expected, actual)
    return "; ".join(f"{d.table}: {d.detail}" for d in differences) or None


def _bytes(path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


async def measure(shop, db: str, template: str) -> list[Row]:
    """Dump in both formats, restore each (plain first), compare each with the manifest."""
    expected = await read_manifest(database_url(shop.server, template))
    plain, directory = shop.workdir / "formats.sql", shop.workdir / "formats.dir"
    run = commands(db, plain=str(plain), directory=str(directory))
    await shop.fresh()
    dump_plain = await _timed(shop, run["dump_plain"])
    dump_dir = await _timed(shop, run["dump_directory"])
    restore_plain = await _timed(shop, run["restore_plain"])
    plain_problem = await _matches(shop, db, expected)
    restore_dir = await _timed(shop, run["restore_directory"])
    dir_problem = await _matches(shop, db, expected)
    sizes = f"plain {_bytes(plain) / 2**20:.0f} MiB, directory {_bytes(directory) / 2**20:.0f} MiB"
    plain.unlink()
    await _timed(shop, f"rm -rf {shlex.quote(str(directory))}")
    await shop.fresh()
    custom = shop.workdir / "formats.sql.custom"
    dump_custom = await _timed(shop, run["dump_custom"])
    restore_custom = await _timed(shop, run["restore_custom"])
    custom_problem = await _matches(shop, db, expected)
    custom_size = _bytes(custom) / 2**20
    custom.unlink()
    total = sum(t.rows for t in expected.tables)
    return [
        Row(
            f"Dump 1 GB, directory format `pg_dump -Fd -j {JOBS}`",
            f"{dump_dir:.1f} s",
            f"{dump_plain:.1f} s (plain SQL)",
            times(dump_dir / dump_plain),
            f"info ({sizes})",
        ),
        Row(
            f"Restore 1 GB, `pg_restore -j {JOBS}` (directory)",
            f"{restore_dir:.1f} s",
            f"{restore_plain:.1f} s (`psql < dump`)",
            times(restore_dir / restore_plain),
            "the faster one ships",
        ),
        Row(
            "Dump 1 GB, custom format `pg_dump -Fc` (one file)",
            f"{dump_custom:.1f} s",
            f"{dump_plain:.1f} s (plain SQL)",
            times(dump_custom / dump_plain),
            f"info ({custom_size:.0f} MiB)",
        ),
        Row(
            f"Restore 1 GB, `pg_restore -j {JOBS}` (custom)",
            f"{restore_custom:.1f} s",
            f"{restore_plain:.1f} s (`psql < dump`)",
            times(restore_custom / restore_plain),
            "the faster one ships",
        ),
        Row(
            "… plain-SQL restore matches the manifest",
            plain_problem or f"{len(expected.tables)} tables, {total:,} rows",
            target="no difference",
            passed=plain_problem is None,
        ),
        Row(
            "… directory restore matches the manifest",
            dir_problem or f"{len(expected.tables)} tables, {total:,} rows",
            target="no difference",
            passed=dir_problem is None,
        ),
        Row(
            "… custom-format restore matches the manifest",
            custom_problem or f"{len(expected.tables)} tables, {total:,} rows",
            target="no difference",
            passed=custom_problem is None,
        ),
    ]
