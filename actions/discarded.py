"""What a database restore discarded, in words: from `actions.data_diff`'s result. Pure.

Loss is only ever a row that existed in the failed state and is not in the restored database
(by primary key): new rows, and every row of a table the restore dropped. Changed rows and
schema changes the restore undid are listed, never called loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class CompareError(Exception):
    """The two databases to compare can't be named or reached; the message says why."""


def resolve_dsns(failed: str, restored: str) -> tuple[str, str]:
    """Rendered `compare_data` values -> two DSNs; a bare name is taken on the other's server."""
    failed, restored = failed.strip(), restored.strip()
    failed_dsn, restored_dsn = _is_dsn(failed), _is_dsn(restored)
    if not failed_dsn and not restored_dsn:
        raise CompareError("compare_data names no DSN (postgresql://…); give at least one")
    if not failed_dsn:
        failed = _on_server(restored, failed)
    if not restored_dsn:
        restored = _on_server(failed, restored)
    names = [urlsplit(d).path.lstrip("/") for d in (failed, restored)]
    if not all(names):
        raise CompareError("compare_data: each DSN must name its database (…/DBNAME)")
    if names[0] == names[1] and _server(failed) == _server(restored):
        raise CompareError(f"compare_data names the same database twice ({names[0]})")
    return failed, restored


def database_of(dsn: str) -> str:
    """The database name in a DSN (what is stored and shown; never the DSN itself)."""
    return urlsplit(dsn).path.lstrip("/")


def _is_dsn(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def _server(dsn: str) -> str:
    return urlsplit(dsn).netloc


def _on_server(dsn: str, name: str) -> str:
    if not name or "/" in name or any(c.isspace() for c in name):
        raise CompareError(f"compare_data: {name!r} is neither a DSN nor a database name")
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


def discarded_rows(result: Mapping[str, Any]) -> int:
    """Rows that existed only in the failed state, over every table."""
    return sum(int(t["only_failed"]) for t in result.get("tables", ()))


def discarded_tables(result: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(table, rows) of every table with rows only in the failed state."""
    return [
        (t["name"], int(t["only_failed"])) for t in result.get("tables", ()) if t["only_failed"]
    ]


def table_lines(result: Mapping[str, Any]) -> list[str]:
    """One line per table that differs, in plain words; [] when nothing differs."""
    return [line for table in result.get("tables", ()) if (line := _table_line(table))]


def _keys(table: Mapping[str, Any], kind: str) -> str:
    keys: Sequence[str] = table["samples"][kind]
    count = int(table[kind])
    if not keys or not table["primary_key"]:
        return ""
    shown = ", ".join(keys)
    more = f", … {count - len(keys)} more" if count > len(keys) else ""
    return f" ({'/'.join(table['primary_key'])} {shown}{more})"


def _table_line(table: Mapping[str, Any]) -> str | None:
    name = table["name"]
    if table["state"] == "only_failed":
        return (
            f"{name}: the table existed only in the failed state; the restore dropped it "
            f"with its {table['rows_failed']} rows"
        )
    if table["state"] == "only_restored":
        return f"{name}: the restore brought the table back ({table['rows_restored']} rows)"
    parts = []
    if table["only_failed"]:
        parts.append(
            f"{table['only_failed']} rows only in the failed state{_keys(table, 'only_failed')}"
        )
    if table["changed"]:
        parts.append(f"{table['changed']} rows changed{_keys(table, 'changed')}")
    if table["only_restored"]:
        parts.append(
            f"{table['only_restored']} rows brought back by the restore"
            f"{_keys(table, 'only_restored')}"
        )
    for key, said in (("columns_only_failed", "columns dropped by the restore"),
                      ("columns_only_restored", "columns brought back"),
                      ("columns_retyped", "columns whose type the restore changed")):  # fmt: skip
        if table[key]:
            parts.append(f"{said}: {', '.join(table[key])}")
    if not parts:
        return None
    newer = table["newer_than_backup"]
    if newer:
        parts.append(f"{newer} rows in the failed state are newer than the backup "
                     f"(by {table['timestamp_column']})")  # fmt: skip
    if not table["primary_key"]:
        parts.append(f"compared by {table['compared_by']}")
    return f"{name}: " + "; ".join(parts)


def headline(result: Mapping[str, Any], *, kept: str) -> str:
    """One sentence: how many rows of which tables the restore discarded, or that none were."""
    lost = discarded_tables(result)
    if not lost:
        return "No row that existed only in the failed state was discarded."
    total = sum(rows for _, rows in lost)
    which = ", ".join(f"{rows} in {name}" for name, rows in lost)
    return (
        f"{total} rows that existed only in the failed state are not in the restored "
        f"database ({which}); they are kept in the database {kept}."
    )
