"""Response URLs: where Bolt's `respond()` POSTs JSON, with Slack's effect on the message."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .records import Response
from .validation import block_errors

if TYPE_CHECKING:
    from .server import FakeSlack

# Slack lets an app use one response_url five times (within 30 minutes).
# (Slack's interactivity docs: https://docs.slack.dev/interactivity/handling-user-interaction)
MAX_USES = 5


@dataclass
class Hook:
    """A response URL; bound to a channel (and message) so its posts change the channel."""

    channel: str | None = None
    message_ts: str | None = None
    uses: int = 0


def deliver(fake: FakeSlack, url_id: str, raw: bytes) -> tuple[int, str]:
    """Record one POST to a response URL, apply it, and give (HTTP status, text) to answer."""
    hook = fake.hooks.get(url_id)
    if hook is None or hook.uses >= MAX_USES:
        return 404, "expired_url"  # never issued by response_url(), or used up
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        return 400, "invalid_payload"
    if not isinstance(body, dict):
        return 400, "invalid_payload"
    if body.get("blocks") is not None and block_errors(body["blocks"]):
        fake.responses.append(Response(url_id, body, time.time(), status=400))
        return 400, "invalid_blocks"
    hook.uses += 1
    fake.responses.append(Response(url_id, body, time.time()))
    _apply(fake, hook, body)
    return 200, "ok"


def _apply(fake: FakeSlack, hook: Hook, body: dict) -> None:
    """What Slack does with the post: replace or delete the original, or post in channel."""
    if hook.channel is None:
        return  # ephemeral, or not tied to a channel the test cares about
    original = hook.message_ts and fake.channels.find(hook.channel, hook.message_ts)
    if body.get("delete_original") and original:
        fake.channels.delete(hook.channel, hook.message_ts)
    elif body.get("replace_original") and original:
        changes = {"text": body.get("text", ""), "blocks": body.get("blocks", [])}
        fake.channels.edit(hook.channel, hook.message_ts, changes, by=fake.bot_user_id)
    elif body.get("response_type") == "in_channel":
        message = {"text": body.get("text", ""), "blocks": body.get("blocks")}
        fake.channels.post(hook.channel, message | fake.bot_identity())
