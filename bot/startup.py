"""What every command does before its work: the runbook, the database, and the one-line Stop.

`cli`, `serve` and the command-line runs (`offline`) all use these, so they live below all
three: none of them imports another to stop in one line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from actions.model import Runbook
from actions.runbook import RunbookError, load_runbook
from bot.settings import Settings

EXIT_PROBLEMS, EXIT_SETTINGS = 1, 2


class Stop(Exception):
    """Stop with this one-line message and exit code."""

    def __init__(self, message: str, code: int = EXIT_PROBLEMS) -> None:
        super().__init__(message)
        self.code = code


def run_migrations(dsn: str) -> list[str]:
    """Apply migrations, or Stop with one line when the database can't be reached or used."""
    import asyncpg

    from bot.db.postgres import migrate

    try:
        return asyncio.run(migrate(dsn))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        reason = "unreachable" if isinstance(error, OSError) else "unusable"
        raise Stop(
            f"the database is {reason} ({type(error).__name__}: {error}); check DATABASE_URL."
        ) from None


def find_runbook(settings: Settings) -> Path:
    """ROLLBACK_RUNBOOK if set, else ./runbook.toml; Stop in one line when it isn't there."""
    path = settings.runbook_path
    if path.is_file():
        return path
    if settings.runbook_from_env:
        raise Stop(
            f"no runbook at {path} (ROLLBACK_RUNBOOK); fix the path, or write a starter one "
            "with `rollback-bot init DIR`."
        )
    raise Stop(
        f"no runbook.toml in {Path.cwd()} and ROLLBACK_RUNBOOK is not set; run "
        "`rollback-bot init` to write a starter one here, or set ROLLBACK_RUNBOOK to yours."
    )


def load_or_stop(path: Path) -> Runbook:
    """The validated runbook, or Stop listing every problem."""
    try:
        return load_runbook(path)
    except RunbookError as error:
        raise Stop(f"the runbook has problems; nothing was started.\n{error}") from None


def database_dsn(settings: Settings) -> str:
    """DATABASE_URL, or the embedded PostgreSQL under ROLLBACK_DATA_DIR (started if needed)."""
    if settings.database_url:
        return settings.database_url
    from bot.db.postgres import embedded_dsn

    try:
        return embedded_dsn(settings.data_dir)
    except Exception as error:  # pgserver's errors are many and varied
        raise Stop(
            f"could not start the embedded PostgreSQL under {settings.data_dir}: {error}. "
            "Set DATABASE_URL to use another server."
        ) from None
