"""The `/rollback` slash command: parse, acknowledge, hand off, answer privately."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.app import answers, flow
from bot.comms import handlers as comms_commands
from bot.incidents import flow as workflow
from bot.incidents import modal as views
from bot.incidents import restore_points
from bot.lifecycle import Event
from bot.runs import handlers as run_control
from bot.services import Refusal, Services
from bot.slack.guard import ack_then, ack_with_outcome
from bot.slack.parsing import Command, ParseError, parse_command

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    """Attach the `/rollback` handler."""
    scenario_keys = [s.key for s in services.runbook.scenarios]

    @app.command("/rollback")
    async def rollback(ack, command, respond, client) -> None:
        user, channel = command.get("user_id"), command.get("channel_id")
        try:
            if not user or not channel:
                raise ParseError("This request has no user or channel; Slack always sends both.")
            parsed = parse_command(command.get("text") or "", scenario_keys)
        except ParseError as error:
            await ack(response_type="ephemeral", text=f":warning: {error}")
            return
        if parsed.verb == "help":
            await ack(response_type="ephemeral", text=answers.help_text(scenario_keys))
            return
        if _needs_modal(parsed, services):
            view = views.declare_modal(services.runbook, channel=channel, preset=parsed)
            opening = client.views_open(trigger_id=command["trigger_id"], view=view)
            await ack_then(ack, respond, opening, after=services.after_ack)
            return
        work = _dispatch(services, parsed, user, channel, command, respond)
        if _long(parsed):
            await ack_then(ack, respond, work, after=services.after_ack)
        else:  # the change is committed before the ack, and the ack says what happened
            await ack_with_outcome(ack, respond, work, after=services.after_ack)


def _long(parsed: Command) -> bool:
    """Verbs whose work may outlast Slack's 3 seconds: acknowledged first, answered later.

    They change nothing an acknowledgement promises (post-mortem creation is owed work that
    is claimed in the database; the checklist is read-only).
    """
    return parsed.verb == "checklist" or (parsed.verb == "postmortem" and parsed.text != "done")


def _needs_modal(parsed: Command, services: Services) -> bool:
    """`declare` alone, or a CRITICAL/HIGH declare that must still pick among scenarios."""
    if parsed.verb != "declare":
        return False
    if parsed.severity is None:
        return True
    return (
        parsed.severity in ("critical", "high")
        and parsed.scenario is None
        and len(services.runbook.scenarios) > 1
    )


async def _dispatch(
    services: Services, parsed: Command, user: str, channel: str, command, respond
) -> str | None:
    verb = parsed.verb
    if verb == "declare":
        return await workflow.declare(
            services,
            channel=channel,
            user=user,
            severity=parsed.severity,
            scenario=parsed.scenario,
            summary=parsed.text,
            detected_at=parsed.detected_at,
            response_url=command.get("response_url"),
        )
    if verb in ("resolve", "cancel"):
        event = Event.RESOLVE if verb == "resolve" else Event.CANCEL
        return await flow.close(
            services,
            incident_id=parsed.incident_id,
            channel=channel,
            user=user,
            note=parsed.text,
            event=event,
        )
    if verb == "escalate":
        return await workflow.escalate(
            services,
            incident_id=parsed.incident_id,
            user=user,
            severity=parsed.severity,
            scenario=parsed.scenario,
            channel=channel,
        )
    if verb == "status":
        return await answers.status(services, incident_id=parsed.incident_id, channel=channel)
    if verb == "history":
        return await answers.history(services, channel=channel)
    if verb == "backup":
        return await run_control.start_backup(services, user=user, channel=channel)
    if verb == "backups":
        async with services.pool.acquire() as conn:
            return await restore_points.listing(conn)
    if verb == "rehearse":
        return await run_control.rehearse_command(services, parsed, user=user, channel=channel)
    if verb in comms_commands.VERBS:
        return await comms_commands.dispatch(
            services, parsed, user=user, channel=channel, respond=respond
        )
    raise Refusal(f"`/rollback {verb}` is not available in this version yet.")
