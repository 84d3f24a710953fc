"""Build the HTTP requests Slack sends to the bot, signed with the app's signing secret.

Bodies are shaped like Slack's own (slash commands and interactivity as form posts, events
as JSON), with just the fields Bolt reads plus the usual companions.
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


def sign(
    body: bytes, secret: str, timestamp: int | None = None, *, content_type: str | None = None
) -> dict[str, str]:
    """Headers for a request Slack signed: v0 HMAC-SHA256 of `v0:{timestamp}:{body}`.

    Content-Type is form-encoded unless the body is a JSON object (Events API).
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    if content_type is None:
        content_type = "application/json" if body.lstrip().startswith(b"{") else FORM
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": content_type,
    }


def _trigger_id() -> str:
    return f"{int(time.time())}.1234567890.{time.monotonic_ns():x}"


def slash_command_body(
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/rollback",
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
) -> bytes:
    """A slash command invocation, form-encoded as Slack posts it."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "team_domain": "fake-workspace",
        "channel_id": channel_id,
        "channel_name": channel_id.lower(),
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }
    return urlencode(fields).encode()


def _payload_body(payload: dict[str, Any]) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def _user(user_id: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": team_id}


def block_actions_body(
    *,
    user_id: str,
    action_id: str,
    value: str,
    channel_id: str,
    message_ts: str,
    response_url: str,
    block_id: str = "actions",
    message_blocks: list[dict[str, Any]] | None = None,
    container: dict[str, Any] | None = None,
    team_id: str = TEAM_ID,
    trigger_id: str | None = None,
) -> bytes:
    """A button click on a message (`block_actions`), as `payload=<json>` form data."""
    message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": ""}
    if message_blocks is not None:
        message["blocks"] = message_blocks
    payload = {
        "type": "block_actions",
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": container
        or {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": "fake-workspace"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return _payload_body(payload)


def _state_values(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Plain strings become plain_text_input states; anything else is passed as given."""
    return {
        block_id: {
            action_id: {"type": "plain_text_input", "value": state}
            if isinstance(state, str)
            else state
            for action_id, state in actions.items()
        }
        for block_id, actions in values.items()
    }


def view_submission_body(
    *,
    user_id: str,
    callback_id: str,
    values: dict[str, dict[str, Any]],
    private_metadata: str,
    view_id: str = "V00000001",
    team_id: str = TEAM_ID,
) -> bytes:
    """A modal submitted (`view_submission`), as `payload=<json>` form data.

    `values` is `{block_id: {action_id: state}}`; a string state stands for a
    plain_text_input's value, a dict is used as the element's state as is.
    """
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "fake-workspace"},
        "user": _user(user_id, team_id),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": _trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "title": {"type": "plain_text", "text": "Rollback"},
            "blocks": [],
            "state": {"values": _state_values(values)},
            "hash": f"{int(time.time())}.abcdef",
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "bot_id": "BBOT0001",
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _payload_body(payload)


def app_home_opened_event_body(user_id: str, *, team_id: str = TEAM_ID) -> bytes:
    """An `app_home_opened` event in its Events API envelope (JSON)."""
    now = time.time()
    envelope = {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "api_app_id": APP_ID,
        "event": {
            "type": "app_home_opened",
            "user": user_id,
            "channel": "D0000HOME",
            "tab": "home",
            "event_ts": f"{now:.6f}",
        },
        "type": "event_callback",
        "event_id": f"Ev{time.monotonic_ns():X}",
        "event_time": int(now),
        "authorizations": [
            {"team_id": team_id, "user_id": "UBOT0001", "is_bot": True, "enterprise_id": None}
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope).encode()
