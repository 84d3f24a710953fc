"""Where a backup and a rollback keep their copies: names that never collide, in one place.

The runbook reaches these through placeholders (see actions/render.py):

- `{{ backup_dir }}`: `backup/<ts>-<backup run id>`, relative to the workdir; each backup
  writes its files there, so a later backup never overwrites an earlier one's artifacts.
- `{{ run_dir }}`: `backup/failed_state/<incident>-run<rollback run id>-<ts>`; a rollback
  keeps the state it is about to overwrite there (its Retries reuse the same folder).
- `{{ failed_db }}`: `<vars.db_name>_failed_<ts>`; the failed database is renamed to this
  before the backup is restored into a fresh one. `ts` is the rollback run's, so a second
  rollback keeps its own copy, and PostgreSQL refuses a rename onto an existing name.
"""

from __future__ import annotations

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1: longer names are cut silently


def backup_dir(ts: str, run_id: int | None) -> str:
    """The folder of one backup's files, relative to the workdir."""
    return f"backup/{ts}-{run_id}" if run_id is not None else f"backup/{ts}"


def run_dir(incident_id: str | None, run_id: int | None, ts: str) -> str:
    """The folder where one rollback run keeps the failed state, relative to the workdir."""
    run = f"-run{run_id}" if run_id is not None else ""
    return f"backup/failed_state/{incident_id or 'no-incident'}{run}-{ts}"


def failed_database(db_name: str, ts: str) -> str:
    """The name the failed database is kept under: `<db_name>_failed_<ts>`, at most 63 bytes.

    A long `db_name` is shortened (whole characters only) so the suffix always survives.
    """
    suffix = f"_failed_{ts}"
    budget = MAX_IDENTIFIER_BYTES - len(suffix.encode())
    head = db_name.encode()[: max(budget, 0)].decode("utf-8", "ignore")
    return head + suffix
