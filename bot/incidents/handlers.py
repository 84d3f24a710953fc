"""Buttons: take the actor from the payload, decide atomically and commit, ack, answer."""

from __future__ import annotations

import logging
import re

from slack_bolt.async_app import AsyncApp

from bot.incidents import approvals
from bot.services import Refusal, Services
from bot.slack.guard import clicked_channel, done_then_answer
from bot.slack.ids import Action

log = logging.getLogger(__name__)
_VALUE = re.compile(r"([0-9]{1,12})(?::([0-9]{1,12}))?")


def clicked(body: dict) -> tuple[str, int, int | None]:
    """The clicker (always the payload's user.id), the approval id the button names and, for
    Approve, the restore point the request showed (0: none; None: a button from before the
    restore point was named on it)."""
    user = (body.get("user") or {}).get("id")
    actions = body.get("actions") or [{}]
    match = _VALUE.fullmatch(str(actions[0].get("value") or ""))
    if not user or not match:
        raise Refusal("That button's payload is malformed; nothing changed.")
    shown = int(match.group(2)) if match.group(2) is not None else None
    return user, int(match.group(1)), shown


def register(app: AsyncApp, services: Services) -> None:
    """Attach the approval buttons (run buttons are registered by the run module)."""

    @app.action(Action.APPROVE)
    async def approve(ack, body, respond) -> None:
        await done_then_answer(ack, respond, _decide(services, body, approve=True))

    @app.action(Action.REJECT)
    async def reject(ack, body, respond) -> None:
        await done_then_answer(ack, respond, _decide(services, body, approve=False))


async def _decide(services: Services, body: dict, *, approve: bool) -> str:
    user, approval_id, shown_backup = clicked(body)
    return await approvals.decide(
        services,
        approval_id=approval_id,
        user=user,
        approve=approve,
        channel=clicked_channel(body),
        shown_backup=shown_backup,
    )
