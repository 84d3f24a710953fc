"""Read-only answers (status, history, help): text shown only to the person who asked."""

from __future__ import annotations

from bot.comms.history import history_text
from bot.incidents import access, store
from bot.incidents.flow import pick_incident
from bot.lifecycle import format_id
from bot.services import Services
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
        if incident_id is None:
            open_here = await store.open_incidents(conn, channel=channel)
            if len(open_here) != 1:
                if not open_here:
                    return (
                        "No open incidents in this channel. `/rollback history` lists recent ones."
                    )
                return "Open incidents here:\n" + "\n".join(
                    blocks.incident_line(i) for i in open_here[:20]
                )
            incident = open_here[0]  # the channel's only open incident: no second query
        else:
            incident = await pick_incident(
                conn, incident_id=incident_id, channel=channel, verb="status"
            )
            access.readable_here(incident, channel)
        events = await conn.fetch(
            "select * from (select * from events where incident_id = $1 order by id desc limit 8)"
            " latest order by id",
            incident["id"],
        )
    lines = [blocks.incident_line(incident)]
    if incident["scenario"]:
        lines.append(
            f"Scenario `{incident['scenario']}` — {services.scenario_title(incident['scenario'])}"
        )
    for event in events:
        actor = "the bot" if event["actor"] == "bot" else blocks.mention(event["actor"])
        what = _EVENT_TEXT.get(event["kind"], event["kind"].replace("_", " "))
        lines.append(f"• {blocks.slack_time(event['at'])} {actor}: {what}")
    return "\n".join(lines)


async def history(services: Services, *, channel: str) -> str:
    """This channel's latest incidents, newest first, with time to detect, decide and restore.

    Only this channel's: another channel's incidents are nothing its users could see.
    """
    return await history_text(services, channel=channel)


__all__ = ["format_id", "help_text", "history", "status"]
