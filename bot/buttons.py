"""Buttons: take the actor from the payload, decide atomically and commit, ack, answer."""

from __future__ import annotations

import logging
import re

from slack_bolt.async_app import AsyncApp

from bot import approvals
from bot.guard import clicked_channel, done_then_answer
from bot.ids import Action
from bot.services import Refusal, Services

log = logging.getLogger(__name__)
_RECORD_ID = re.compile(r"[0-9]{1,12}")


def clicked(body: dict) -> tuple[str, int]:
    """The clicker (always the payload's user.id) and the record id the button names."""
    user = (body.get("user") or {}).get("id")
    actions = body.get("actions") or [{}]
    value = str(actions[0].get("value") or "")
    if not user or not _RECORD_ID.fullmatch(value):
        raise Refusal("That button's payload is malformed; nothing changed.")
    return user, int(value)


def register(app: AsyncApp, services: Services) -> None:
    """Attach the approval buttons (run buttons are registered by the run module)."""

    @app.action(Action.APPROVE)
    async def approve(ack, body, respond) -> None:
        await done_then_answer(ack, respond, _decide(services, body, approve=True))

    @app.action(Action.REJECT)
    async def reject(ack, body, respond) -> None:
        await done_then_answer(ack, respond, _decide(services, body, approve=False))


async def _decide(services: Services, body: dict, *, approve: bool) -> str:
    user, approval_id = clicked(body)
    return await approvals.decide(
        services,
        approval_id=approval_id,
        user=user,
        approve=approve,
        channel=clicked_channel(body),
    )
