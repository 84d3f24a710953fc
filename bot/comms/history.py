"""`/rollback history`: recent incidents with time to detect, decide and restore."""

from __future__ import annotations

from actions.durations import format_duration
from bot.comms import store as comms_store
from bot.comms.metrics import Figures, IncidentTimes, figures, mean
from bot.services import Services
from bot.slack import blocks


def times_of(row) -> IncidentTimes:
    """The stored moments of one history row."""
    return IncidentTimes(
        declared_at=row["declared_at"],
        detected_at=row["detected_at"],
        decided_at=row["decided_at"],
        run_ended_at=row["run_ended_at"],
        run_state=row["run_state"],
        verified=row["verification_passed"],
        state=row["state"],
    )


def _fmt(seconds: float | None) -> str:
    return format_duration(seconds) if seconds is not None else "–"


def history_line(row, numbers: Figures) -> str:
    """One incident: headline, outcome and its three durations."""
    return (
        f"{blocks.incident_line(row)}\n"
        f"      {numbers.outcome} · detect {_fmt(numbers.to_detect)} · decide "
        f"{_fmt(numbers.to_decide)} · restore {_fmt(numbers.to_restore)} · declared "
        f"{blocks.slack_time(row['declared_at'])}"
    )


async def history_text(services: Services, *, limit: int = 15, channel: str | None = None) -> str:
    """The latest incidents (of `channel`, when given), newest first, with their means."""
    async with services.pool.acquire() as conn:
        rows = await comms_store.history_rows(conn, limit=limit, channel=channel)
    if not rows:
        return "No incidents in this channel yet." if channel else "No incidents yet."
    numbers = [figures(times_of(row)) for row in rows]
    lines = ["Recent incidents (detect = declared − detected; decide = approval − declared; "
             "restore = rollback end − declared):"]  # fmt: skip
    lines += [history_line(row, n) for row, n in zip(rows, numbers, strict=True)]
    lines.append(
        f"Means over these: detect {_fmt(mean(n.to_detect for n in numbers))} · decide "
        f"{_fmt(mean(n.to_decide for n in numbers))} · restore (MTTR) "
        f"{_fmt(mean(n.to_restore for n in numbers))}"
    )
    return "\n".join(lines)
