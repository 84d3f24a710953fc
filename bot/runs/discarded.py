"""The thread message saying what a database restore discarded (Slack blocks). Pure."""

from __future__ import annotations

from typing import Any

from actions import discarded
from bot.slack.blocks import context, escape, section

MAX_LINES = 20


def comparison_message(stored: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for a stored `data_comparisons` row."""
    kept = escape(stored["failed_database"])
    restored = escape(stored["restored_database"])
    if stored["error"]:
        text = (
            f":warning: *What the rollback discarded: not known.* I couldn't compare the kept "
            f"failed database `{kept}` with the restored `{restored}`: {escape(stored['error'])}. "
            "The maintenance notice will not claim that no data was lost."
        )
        return "What the rollback discarded: not known", [section(text)]
    result = stored["result"]
    lines = [escape(line) for line in discarded.table_lines(result)]
    shown = lines[:MAX_LINES] + (
        [f"… {len(lines) - MAX_LINES} more tables"] if len(lines) > MAX_LINES else []
    )
    body = "\n".join(f"• {line}" for line in shown) or "• Every table matches."
    head = escape(discarded.headline(result, kept=stored["failed_database"]))
    icon = ":white_check_mark:" if not discarded.discarded_tables(result) else ":warning:"
    blocks = [
        section(
            f":mag: *What the rollback discarded* (the failed state, kept as `{kept}`, "
            f"compared with the restored `{restored}`):\n{body}"
        ),
        section(f"{icon} {head}"),
        context(
            "Changed rows and schema changes are what the restore undid; they are listed, "
            "not counted as lost. Rows only in the failed state are to be reconciled."
        ),
    ]
    return (
        f"What the rollback discarded: {discarded.headline(result, kept=kept)}",
        blocks,
    )
