"""Who may do what, and where: the incident's own channel, declarers, approvers, requesters."""

from __future__ import annotations

import asyncpg
from slack_sdk.errors import SlackApiError

from bot.incidents import approval_store
from bot.lifecycle import format_id
from bot.services import Refusal, Services
from bot.slack import blocks
from bot.slack.outbox import slack_error_code

_PART_TEXT = {
    "declared": "declared",
    "escalated": "escalated",
    "asked_again": "asked again for the rollback of",
}


def in_own_channel(incident, channel: str | None, verb: str) -> None:
    """Refuse a change made outside the incident's channel; the answer points to it."""
    if channel != incident["channel"]:
        rid = format_id(incident["id"])
        raise Refusal(
            f"{rid} belongs to <#{incident['channel']}>; {verb} it there. Nothing changed."
        )


def readable_here(incident, channel: str | None) -> None:
    """Refuse reading an incident from another channel, saying nothing about it."""
    if channel != incident["channel"]:
        raise Refusal(f"{format_id(incident['id'])} belongs to another channel.")


async def in_list(services: Services, user: str, ids: tuple[str, ...], what: str) -> bool:
    """Whether `user` is listed in `ids`, directly or as a member of a listed user group."""
    if user in ids:
        return True
    for group in (i for i in ids if i.startswith("S")):
        try:
            members = await services.members_of(group)
        except SlackApiError as error:
            code = slack_error_code(error)
            raise Refusal(
                f"I couldn't read the {what} group {blocks.mention(group)} ({code}), "
                f"so I can't tell whether you are one of the runbook's {what}s. A Slack admin "
                f"must grant the app `usergroups:read`; meanwhile a {what} listed by user ID "
                "can do it."
            ) from None
        if user in members:
            return True
    return False


async def may_declare(services: Services, user: str, verb: str = "declare") -> None:
    """`declarers` governs declare and escalate (empty: anyone)."""
    declarers = services.runbook.policy.declarers
    if declarers and not await in_list(services, user, declarers, "declarer"):
        raise Refusal(
            f"Only the runbook's declarers may {verb} incidents: "
            + ", ".join(blocks.mention(d) for d in declarers)
            + ". Ask one of them."
        )


async def allowed_approver(services: Services, user: str) -> bool:
    """Whether `approvers` allows `user` (empty: everybody)."""
    approvers = services.runbook.policy.approvers
    return not approvers or await in_list(services, user, approvers, "approver")


async def must_be_approver(services: Services, user: str, what: str) -> None:
    """Refuse unless `approvers` allows `user`; `what` says what needed one."""
    if not await allowed_approver(services, user):
        who = ", ".join(blocks.mention(a) for a in services.runbook.policy.approvers)
        raise Refusal(f"Only the runbook's approvers may {what}: {who}. Nothing changed.")


async def may_decide(conn: asyncpg.Connection, services: Services, *, user: str, incident) -> None:
    """Refuse unless `user` may approve or reject: not a requester, and allowed by `approvers`."""
    rid = format_id(incident["id"])
    parts = await approval_store.requester_parts(conn, incident_id=incident["id"], user=user)
    if parts:
        did = " and ".join(_PART_TEXT[p] for p in parts)
        raise Refusal(
            f"You {did} {rid}, so a second person must approve its rollback (someone who "
            "didn't ask for it). Ask a teammate to press Approve."
        )
    await must_be_approver(services, user, f"decide {rid}'s rollback")
