"""A backup's manifest (what the database held) and its comparison with a database. Pure.

The querying is in `actions.db_catalog`; this module only builds, serialises and compares.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TableFacts:
    """One table: its name (schema-qualified unless public), exact row count, columns."""

    name: str
    rows: int
    columns: tuple[tuple[str, str], ...]  # (name, type) in column order
    fingerprint: str  # sha256 of the table's catalog description (columns, constraints, indexes)


@dataclass(frozen=True)
class Manifest:
    """What a database held: every table, and a fingerprint of its whole schema."""

    database: str
    fingerprint: str
    tables: tuple[TableFacts, ...]

    def table(self, name: str) -> TableFacts | None:
        """The table of that name, or None."""
        return next((t for t in self.tables if t.name == name), None)


@dataclass(frozen=True)
class Difference:
    """One way a table differs from the manifest: `what` is missing, extra, rows, columns or
    fingerprint; `detail` says how, in words."""

    table: str
    what: str
    detail: str


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def table_facts(described: Mapping[str, Any]) -> TableFacts:
    """TableFacts from one table's catalog description (see `actions.db_catalog.describe`)."""
    columns = tuple((c["name"], c["type"]) for c in described["columns"])
    catalog = {
        "columns": [
            [c["name"], c["type"], c["not_null"], c["default"]] for c in described["columns"]
        ],
        "constraints": sorted(described.get("constraints", ())),
        "indexes": sorted(described.get("indexes", ())),
    }
    return TableFacts(described["name"], int(described["rows"]), columns, _digest(catalog))


def build_manifest(database: str, described: Iterable[Mapping[str, Any]]) -> Manifest:
    """The manifest of a database from its tables' catalog descriptions."""
    tables = tuple(sorted((table_facts(d) for d in described), key=lambda t: t.name))
    fingerprint = _digest([[t.name, t.fingerprint] for t in tables])
    return Manifest(database, fingerprint, tables)


def manifest_tables_json(manifest: Manifest) -> list[dict[str, Any]]:
    """The tables as stored in `backup_manifests.tables`."""
    return [
        {"name": t.name, "rows": t.rows, "columns": [list(c) for c in t.columns],
         "fingerprint": t.fingerprint}
        for t in manifest.tables
    ]  # fmt: skip


def manifest_from_json(database: str, fingerprint: str, tables: Sequence[Mapping]) -> Manifest:
    """The manifest stored by `manifest_tables_json`."""
    return Manifest(
        database,
        fingerprint,
        tuple(
            TableFacts(t["name"], int(t["rows"]), tuple(tuple(c) for c in t["columns"]),
                       t["fingerprint"])
            for t in tables
        ),
    )  # fmt: skip


def compare_manifests(expected: Manifest, actual: Manifest) -> list[Difference]:
    """Every table of `actual` that differs from `expected`, by name; [] when they match."""
    found: list[Difference] = []
    names = sorted({t.name for t in expected.tables} | {t.name for t in actual.tables})
    for name in names:
        want, have = expected.table(name), actual.table(name)
        if have is None:
            found.append(Difference(name, "missing", f"missing (the backup had {want.rows} rows)"))
        elif want is None:
            found.append(Difference(name, "extra", f"not in the backup ({have.rows} rows)"))
        else:
            found += _table_differences(want, have)
    return found


def _table_differences(want: TableFacts, have: TableFacts) -> list[Difference]:
    found = []
    if want.rows != have.rows:
        found.append(Difference(want.name, "rows", f"{have.rows} rows, the backup had {want.rows}"))
    if want.columns != have.columns:
        found.append(Difference(want.name, "columns", _column_change(want.columns, have.columns)))
    elif want.fingerprint != have.fingerprint:
        found.append(
            Difference(want.name, "fingerprint", "constraints, indexes or defaults differ")
        )
    return found


def _column_change(want: Sequence[tuple[str, str]], have: Sequence[tuple[str, str]]) -> str:
    wanted, has = dict(want), dict(have)
    parts = [f"column {n} added" for n in has if n not in wanted]
    parts += [f"column {n} missing" for n in wanted if n not in has]
    retyped = [n for n in wanted if n in has and has[n] != wanted[n]]
    parts += [f"column {n} is {has[n]}, was {wanted[n]}" for n in retyped]
    return ", ".join(parts) or "columns in a different order"


def describe(differences: Sequence[Difference], expected: Manifest) -> tuple[bool, str]:
    """(passed, detail) of a manifest check, naming every table that differs."""
    if not differences:
        total = sum(t.rows for t in expected.tables)
        return True, (
            f"{len(expected.tables)} tables and {total} rows match the backup's manifest "
            f"(schema fingerprint {expected.fingerprint[:12]})"
        )
    tables = sorted({d.table for d in differences})
    lines = [f"{d.table}: {d.detail}" for d in differences]
    return False, f"{len(tables)} tables differ from the backup: " + "; ".join(lines)
