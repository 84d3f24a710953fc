"""The runbook's data-truth fields: `[backup] manifest_dsn`, a scenario's `compare_data`, and
the `manifest = true` verify check. Read by `actions.runbook`'s loader; every problem has a line.
"""

from __future__ import annotations

from typing import Any

from actions.model import CompareData
from actions.runbook_reader import Table, kind_of

COMPARE_KEYS = ("failed", "restored")
COMPARE_EXAMPLE = 'compare_data = { failed = "{{ failed_db }}", restored = "{{ vars.db_url }}" }'


def read_manifest_dsn(loader: Any, backup: Table) -> str | None:
    """`[backup] manifest_dsn`: the database each backup records a manifest of (a template)."""
    dsn = backup.text("manifest_dsn")
    if dsn is not None:
        if not dsn.strip():
            backup.report("manifest_dsn", "manifest_dsn must not be empty (or leave it out)")
            return None
        loader.templates(backup, {"manifest_dsn": dsn}, artifacts=None, artifact=False)
    return dsn


def read_compare_data(loader: Any, scenario: Table) -> CompareData | None:
    """A scenario's `compare_data = { failed = …, restored = … }`, or None when absent."""
    if "compare_data" not in scenario.data:
        return None
    value = scenario.data["compare_data"]
    if not isinstance(value, dict):
        scenario.report(
            "compare_data", f"compare_data must be a table, not {kind_of(value)}: {COMPARE_EXAMPLE}"
        )
        return None
    table = Table(loader.reader, value, (*scenario.at, "compare_data"), scenario.where)
    table.known(COMPARE_KEYS)
    fields = {}
    for key in COMPARE_KEYS:
        text = table.text(key)
        if text is None and key not in value:
            table.report(None, f"compare_data needs `{key}`: {COMPARE_EXAMPLE}")
        elif text is not None and not text.strip():
            table.report(key, f"compare_data.{key} must not be empty")
            text = None
        fields[key] = text
    present = {k: v for k, v in fields.items() if v is not None}
    # Rendered with the scenario's steps' context: {{ failed_db }}, {{ ts }}, {{ vars.X }}…
    loader.templates(table, present, artifacts=loader.artifacts, artifact=False)
    if len(present) != 2:
        return None
    if not any(_looks_like_dsn(v) for v in present.values()):
        table.report(
            None,
            "compare_data: at least one of failed / restored must be a DSN (postgresql://… or "
            "{{ vars.db_url }}); a bare database name is taken on the other's server",
        )
    return CompareData(present["failed"], present["restored"], loader.reader.line(table.at))


def manifest_check_problems(table: Table, data: dict[str, Any], manifest_dsn: str | None) -> bool:
    """Report what is wrong with a check's `manifest` key; True when it is a manifest check."""
    if "manifest" not in data:
        return False
    if data["manifest"] is not True:
        table.report(
            "manifest", "manifest must be true (remove the check to skip the manifest comparison)"
        )
    if manifest_dsn is None:
        table.report(
            "manifest",
            "a manifest check needs `[backup] manifest_dsn` (the database each backup "
            'describes), e.g. manifest_dsn = "{{ vars.db_url }}"',
        )
    if "expect" in data:
        table.report("expect", "expect is not used by a manifest check; remove it")
    return True


def _looks_like_dsn(template: str) -> bool:
    text = template.strip()
    return text.startswith(("postgresql://", "postgres://")) or (
        text.startswith("{{") and "url" in text.split("}}", 1)[0].lower()
    )
