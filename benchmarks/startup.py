"""Start-up: spawn to /healthz 200 on the embedded PostgreSQL, cold (fresh data dir) and warm."""

from __future__ import annotations

from pathlib import Path

from benchmarks.procs import bot_server
from benchmarks.report import Row, times


async def measure(env: dict[str, str], data_dir: Path, log_dir: Path, bare_start: float):
    """Start the bot twice on the same new ROLLBACK_DATA_DIR, without DATABASE_URL."""
    env = {k: v for k, v in env.items() if k != "DATABASE_URL"} | {
        "ROLLBACK_DATA_DIR": str(data_dir)
    }
    rows = []
    for label in ("cold: new data dir, initdb", "warm: same data dir again"):
        bot = bot_server(env, log_dir / f"startup-{label[:4]}.log")
        try:
            await bot.start()
        finally:
            await bot.stop()  # SIGTERM: the bot stops its embedded PostgreSQL on the way out
        rows.append(
            Row(
                f"Start-up to /healthz 200, {label}",
                f"{bot.ready_after:.2f} s",
                f"{bare_start:.2f} s (bare app)",
                times(bot.ready_after / bare_start),
            )
        )
    return rows
