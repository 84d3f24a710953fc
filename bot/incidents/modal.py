"""The declare modal: built from the runbook, validated on submission, handed to `declare`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from actions.model import Runbook
from bot.incidents import flow as workflow
from bot.lifecycle import Severity
from bot.services import Services
from bot.slack import blocks
from bot.slack.guard import done_then_answer
from bot.slack.ids import Field, View
from bot.slack.parsing import MAX_TEXT, Command, clean_text

_SLACK_CHANNEL = ("C", "G", "D")


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": value}


def declare_modal(runbook: Runbook, *, channel: str, preset: Command | None = None) -> dict:
    """The modal: severity, scenario, summary, detection time; the channel rides along."""
    severities = [_option(blocks.severity_choice(s), s.value) for s in Severity]
    severity: dict[str, Any] = {
        "type": "static_select",
        "action_id": Field.SEVERITY,
        "options": severities,
    }
    if preset is not None and preset.severity is not None:
        severity["initial_option"] = severities[list(Severity).index(preset.severity)]
    scenario = {
        "type": "static_select",
        "action_id": Field.SCENARIO,
        "options": [_option(f"{s.key} — {s.title}", s.key) for s in runbook.scenarios][:100],
    }
    summary: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": Field.SUMMARY,
        "multiline": True,
        "max_length": MAX_TEXT,
    }
    if preset is not None and preset.text:
        summary["initial_value"] = preset.text[:MAX_TEXT]
    inputs = [
        _input(Field.SEVERITY, "Severity", severity),
        _input(Field.SCENARIO, "Rollback scenario (needed for critical and high)", scenario, True),
        _input(Field.SUMMARY, "What is happening?", summary, True),
        _input(
            Field.DETECTED,
            "When was it detected?",
            {
                "type": "datetimepicker",
                "action_id": Field.DETECTED,
            },
            True,
        ),
    ]
    return {
        "type": "modal",
        "callback_id": View.DECLARE,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"channel": channel}),
        "blocks": inputs,
    }


def _input(field: Field, label: str, element: dict, optional: bool = False) -> dict:
    return {
        "type": "input",
        "block_id": field,
        "label": {"type": "plain_text", "text": label},
        "element": element,
        "optional": optional,
    }


def _option_value(option) -> str | None:
    value = option.get("value") if isinstance(option, dict) else None
    return value if isinstance(value, str) else None


def read_submission(view: dict, *, now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted values, and errors by block id (empty when valid). Pure."""

    def pick(field: Field, key: str):
        node = view  # every level may be missing or of the wrong type in a hostile payload
        for step in ("state", "values", field.value, field.value, key):
            node = node.get(step) if isinstance(node, dict) else None
        return node

    errors: dict[str, str] = {}
    severity_value = _option_value(pick(Field.SEVERITY, "selected_option"))
    scenario = _option_value(pick(Field.SCENARIO, "selected_option"))
    summary = pick(Field.SUMMARY, "value")
    summary = clean_text(summary if isinstance(summary, str) else "")
    detected_raw = pick(Field.DETECTED, "selected_date_time")
    try:
        severity = Severity(severity_value)
    except ValueError:
        severity = None
        errors[Field.SEVERITY] = "Choose a severity."
    if severity in (Severity.CRITICAL, Severity.HIGH) and not scenario:
        errors[Field.SCENARIO] = "Critical and high incidents need a rollback scenario."
    if len(summary) > MAX_TEXT:
        errors[Field.SUMMARY] = f"Keep it under {MAX_TEXT} characters."
    detected_at = None
    if detected_raw is not None:
        try:
            detected_at = datetime.fromtimestamp(int(detected_raw), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            errors[Field.DETECTED] = "That is not a time."
        else:
            if detected_at > now + timedelta(minutes=1):
                errors[Field.DETECTED] = "The detection time is in the future."
    submitted = {
        "severity": severity,
        "scenario": scenario,
        "summary": summary,
        "detected_at": detected_at,
    }
    return submitted, errors


def register(app: AsyncApp, services: Services) -> None:
    """Attach the modal's submission handler."""
    keys = {s.key for s in services.runbook.scenarios}

    @app.view(View.DECLARE)
    async def submitted(ack, body, view, client) -> None:
        user = (body.get("user") or {}).get("id") if isinstance(body.get("user"), dict) else None
        if not isinstance(view, dict) or not isinstance(user, str) or not user:
            await ack(response_action="errors", errors={Field.SEVERITY: "Malformed form."})
            return
        submission, errors = read_submission(view, now=datetime.now(UTC))
        if submission["scenario"] is not None and submission["scenario"] not in keys:
            errors[Field.SCENARIO] = "That scenario is not in the runbook."
        try:
            channel = json.loads(view.get("private_metadata") or "{}").get("channel", "")
        except (ValueError, AttributeError):
            channel = ""
        if not isinstance(channel, str) or not channel.startswith(_SLACK_CHANNEL):
            errors[Field.SEVERITY] = "This form lost its channel. Close it and run /rollback again."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        # Declared (committed) before the ack closes the modal; the answer follows privately.
        await done_then_answer(
            ack,
            _ephemeral_to(client, channel, user),
            workflow.declare(services, channel=channel, user=user, **submission),
            after=services.after_ack,
        )


def _ephemeral_to(client, channel: str, user: str):
    """Modal submissions have no response_url: answer with an ephemeral in the channel."""

    async def respond(text: str, **_: Any) -> None:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)

    return respond
