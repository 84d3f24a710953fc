"""Read-only answers (status, history, help): text shown only to the person who asked."""

from __future__ import annotations

from bot.comms.history import history_text
from bot.incidents import access, store
from bot.lifecycle import format_id
from bot.services import Refusal, Services
from bot.slack import blocks
from bot.slack.parsing import USAGE

_EVENT_TEXT = {
    "declare": "declared",
    "escalate": "escalated",
    "request_approval": "asked for rollback approval",
    "approve": "approved the rollback",
    "reject": "rejected the rollback",
    "expire": "approval request expired",
    "start_run": "rollback started",
    "step_failed": "a step failed",
    "interrupted": "the run was interrupted",
    "resume": "resumed the run",
    "run_succeeded": "rollback finished",
    "run_failed": "rollback ended without completing",
    "resolve": "resolved",
    "cancel": "cancelled",
}


def help_text(scenario_keys: list[str]) -> str:
    """Every command with its form, and the runbook's scenarios."""
    lines = ["*Rollback bot* — run the integration rollback plan from Slack."]
    lines += [f"• `{usage}`" for usage in USAGE.values()]
    lines.append("Scenarios: " + (", ".join(f"`{k}`" for k in scenario_keys) or "none"))
    lines.append("An incident id may be left out when this channel has exactly one open incident.")
    return "\n".join(lines)


async def status(services: Services, *, incident_id: int | None, channel: str) -> str:
    """One incident's state and its latest audit rows; or the channel's open incidents."""
    async with services.pool.acquire() as conn:
        found = await store.with_latest_events(conn, incident_id=incident_id, channel=channel)
    if incident_id is not None and not found:
        raise Refusal(
            f"There is no incident {format_id(incident_id)}. `/rollback history` lists them."
        )
    if incident_id is None and len(found) != 1:
        if not found:
            return "No open incidents in this channel. `/rollback history` lists recent ones."
        return "Open incidents here:\n" + "\n".join(blocks.incident_line(i) for i, _ in found[:20])
    incident, events = found[0]
    access.readable_here(incident, channel)
    lines = [blocks.incident_line(incident)]
    if incident["scenario"]:
        lines.append(
            f"Scenario `{incident['scenario']}` — {services.scenario_title(incident['scenario'])}"
        )
    for event in events:
        actor = event["event_actor"]
        actor = "the bot" if actor == "bot" else blocks.mention(actor)
        what = _EVENT_TEXT.get(event["event_kind"], event["event_kind"].replace("_", " "))
        lines.append(f"• {blocks.slack_time(event['event_at'])} {actor}: {what}")
    return "\n".join(lines)


async def history(services: Services, *, channel: str) -> str:
    """This channel's latest incidents, newest first, with time to detect, decide and restore.

    Only this channel's: another channel's incidents are nothing its users could see.
    """
    return await history_text(services, channel=channel)


__all__ = ["format_id", "help_text", "history", "status"]
