"""The signed HTTP requests Slack sends to the bot: slash commands and button clicks.

Shaped like Slack's own (form posts with the fields Bolt reads), signed with the app's
signing secret; the demo drives the real bot with them.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

FORM = "application/x-www-form-urlencoded"
TEAM_ID = "T0001"
APP_ID = "A0001"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a form post Slack signed: v0 HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature, "Content-Type": FORM}


def _trigger_id() -> str:
    return f"{int(time.time())}.1234567890.{time.monotonic_ns():x}"


def slash_command_body(
    text: str, *, user_id: str, user_name: str, channel_id: str, response_url: str
) -> bytes:
    """`/rollback <text>` typed by `user_id` in `channel_id`, form-encoded as Slack posts it."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": TEAM_ID,
        "team_domain": "demo-workspace",
        "channel_id": channel_id,
        "channel_name": channel_id.lower(),
        "user_id": user_id,
        "user_name": user_name,
        "command": "/rollback",
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": _trigger_id(),
    }
    return urlencode(fields).encode()


def block_actions_body(
    *,
    user_id: str,
    user_name: str,
    button: dict[str, Any],
    block_id: str,
    channel_id: str,
    message: dict[str, Any],
    response_url: str,
) -> bytes:
    """A click on `button` (a Block Kit button element) of `message`, as `payload=<json>`."""
    user = {"id": user_id, "username": user_name, "name": user_name, "team_id": TEAM_ID}
    container = {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": channel_id,
        "is_ephemeral": False,
    }
    if message.get("thread_ts"):
        container["thread_ts"] = message["thread_ts"]
    payload = {
        "type": "block_actions",
        "user": user,
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": _trigger_id(),
        "team": {"id": TEAM_ID, "domain": "demo-workspace"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": {k: message[k] for k in ("type", "ts", "text", "blocks") if k in message},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": block_id,
                "value": button.get("value", ""),
                "text": button["text"],
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()
