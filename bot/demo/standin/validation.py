"""Argument checks the fake applies like Slack does: required fields (from spec.json) and
Block Kit payloads (with slack_sdk.models, which encodes Slack's published limits)."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

SPEC_PATH = Path(__file__).with_name("spec.json")

# Arguments Slack accepts as JSON (a string in form bodies, a value in JSON bodies).
JSON_FIELDS = frozenset(
    {
        "attachments",
        "blocks",
        "changes",
        "document_content",
        "files",
        "metadata",
        "user_ids",
        "view",
    }
)
MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
VIEW_TYPES = ("modal", "home")


@functools.cache
def spec() -> dict[str, dict[str, Any]]:
    """The methods the fake knows, keyed by name (loaded once from spec.json)."""
    return json.loads(SPEC_PATH.read_text())["methods"]


def decode_args(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `raw` with JSON-valued fields (blocks, view, metadata, …) parsed."""
    args = dict(raw)
    for name in JSON_FIELDS & args.keys():
        value = args[name]
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            # Unparseable JSON stays a string; the block and view checks report it.
            with contextlib.suppress(json.JSONDecodeError):
                args[name] = json.loads(value)
    return args


def flag(value: Any) -> bool:
    """A boolean argument as Slack reads it: true, "true" or "1"."""
    return value is True or str(value).lower() in ("1", "true")


def _given(value: Any) -> bool:
    return value not in (None, "", [], {})


def missing_arguments(method: str, args: Mapping[str, Any]) -> list[str]:
    """Slack-style `[ERROR] …` messages for required arguments that are absent or empty."""
    described = spec()[method]
    messages = [
        f"[ERROR] missing required field: {p['name']}"
        for p in described["params"]
        if p["required"] and not _given(args.get(p["name"]))
    ]
    for group in described.get("one_of", []):
        if not any(_given(args.get(name)) for name in group):
            messages.append(f"[ERROR] one of these fields is required: {', '.join(group)}")
    return messages


def block_errors(
    blocks: Any, *, pointer: str = "/blocks", limit: int = MESSAGE_BLOCKS_MAX
) -> list[str]:
    """Why Slack would reject `blocks` (empty when they are valid)."""
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array of blocks [json-pointer:{pointer}]"]
    errors = []
    if len(blocks) > limit:
        errors.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}]")
    for i, block in enumerate(blocks):
        where = f"[json-pointer:{pointer}/{i}]"
        if not isinstance(block, dict):
            errors.append(f"[ERROR] a block must be an object {where}")
            continue
        try:
            parsed = Block.parse(block)
            if parsed is None:
                errors.append(f"[ERROR] unsupported block type {block.get('type')!r} {where}")
                continue
            parsed.validate_json()
        # Anything slack_sdk cannot build (missing or unexpected fields, over-long text)
        # is a payload Slack refuses; the exception text says which rule broke.
        except Exception as exc:
            errors.append(f"[ERROR] {exc} {where}")
    return errors


def view_errors(view: Any) -> list[str]:
    """Why views.open/publish/update would reject `view` (empty when it is valid)."""
    if not isinstance(view, dict):
        return ["[ERROR] view must be a JSON object [json-pointer:/view]"]
    if view.get("type") not in VIEW_TYPES:
        return [f"[ERROR] type must be one of {', '.join(VIEW_TYPES)} [json-pointer:/view/type]"]
    errors = []
    if view["type"] == "modal" and not view.get("title"):
        errors.append("[ERROR] missing required field: title [json-pointer:/view]")
    if "blocks" not in view:
        errors.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    else:
        errors += block_errors(view["blocks"], pointer="/view/blocks", limit=VIEW_BLOCKS_MAX)
    if errors:
        return errors
    try:
        View(**view).validate_json()
    except Exception as exc:  # as in block_errors: slack_sdk's refusal is Slack's
        errors.append(f"[ERROR] {exc} [json-pointer:/view]")
    return errors
