"""The communication verbs of `/rollback`: notice, postmortem, checklist, contacts."""

from __future__ import annotations

from bot.comms import checklists, contacts, notice, postmortem
from bot.services import Services
from bot.slack.parsing import Command

VERBS = frozenset({"notice", "postmortem", "checklist", "contacts"})


async def dispatch(
    services: Services, parsed: Command, *, user: str, channel: str, respond
) -> str | dict | None:
    """Carry out one verb; answers with blocks go through the command's response_url."""
    if parsed.verb == "notice":
        return await notice.preview(services, parsed, user=user, channel=channel)
    if parsed.verb == "checklist":
        await checklists.command(services, parsed, channel=channel, respond=respond)
        return None
    if parsed.verb == "postmortem":
        return await postmortem.command(services, parsed, user=user, channel=channel)
    return contacts.contacts_text(services)
