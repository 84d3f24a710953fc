"""What a button click says: who clicked and which approval (the buttons are in bot.app.flow)."""

from __future__ import annotations

import logging
import re

from bot.services import Refusal

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
