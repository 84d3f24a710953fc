"""Render the notice and post-mortem templates for Slack mrkdwn, Markdown files or canvases. Pure.

Values that vary (user text, times, people) are wrapped in `Text`, `Moment` or `Who`. They
reach Jinja only as opaque tokens, so nothing a user typed is ever read as template or
reformatted; after rendering each token is replaced by its value written for the target.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot import packaged
from bot.slack.blocks import escape, mention, slack_time

Target = Literal["slack", "markdown", "canvas"]
_TOKEN = re.compile("\ue000([0-9]+)\ue001")  # private-use characters: never in our text
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#+!|~{}])")


class Text(str):
    """Text that came from a person or a command's output: escaped for the target."""


@dataclass(frozen=True)
class Moment:
    """A stored time: a Slack date token in Slack, UTC to the second in documents."""

    at: datetime


@dataclass(frozen=True)
class Who:
    """A Slack user (or 'bot'): a mention in Slack and canvases, the ID in Markdown files."""

    user_id: str


def _plain(text: str) -> str:
    return text.replace("\ue000", " ").replace("\ue001", " ")


def md_escape(text: str, *, limit: int = 2000) -> str:
    """User text for Markdown: `escape()` first, then no formatting, links or autolinks."""
    flat = " ".join(escape(_plain(text), limit=limit).split())
    flat = _MD_SPECIAL.sub(r"\\\1", flat)
    flat = re.sub(r"(?i)\bwww\.", lambda m: m.group(0)[:3] + "\\.", flat)
    return flat.replace("://", ":\\/\\/")


def document_time(moment: datetime) -> str:
    """A time as documents show it: 2026-11-24 03:05:12 UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _value(item: Any, target: Target) -> str:
    if isinstance(item, Moment):
        return slack_time(item.at) if target == "slack" else document_time(item.at)
    if isinstance(item, Who):
        if item.user_id == "bot":
            return "the bot"
        if target == "slack":
            return mention(item.user_id)
        return f"![](@{item.user_id})" if target == "canvas" else f"@{item.user_id}"
    if target == "slack":
        return " ".join(escape(_plain(str(item))).split())
    return md_escape(str(item))


def _tokenise(value: Any, found: list[Any]) -> Any:
    if isinstance(value, Text | Moment | Who):
        if isinstance(value, Text) and not value.strip():
            return ""
        found.append(value)
        return f"\ue000{len(found) - 1}\ue001"
    if isinstance(value, Mapping):
        return {key: _tokenise(item, found) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_tokenise(item, found) for item in value]
    return value


@functools.cache
def _environment(runbook: Path | None) -> Environment:
    # An operator's templates/ next to their runbook overrides the shipped ones, file by file.
    folders = [runbook.parent / "templates"] if runbook is not None else []
    return Environment(
        loader=FileSystemLoader([*folders, packaged.templates()]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(
    template: str, context: Mapping[str, Any], *, target: Target, runbook: Path | None = None
) -> str:
    """The template rendered for `target`; Slack gets mrkdwn, the others Markdown.

    `runbook`: the runbook's path; a `templates/` folder beside it overrides the shipped ones.
    """
    values: list[Any] = []
    text = _environment(runbook).get_template(template).render(_tokenise(context, values))
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    if target == "slack":
        text = to_mrkdwn(text)
    return _TOKEN.sub(lambda m: _value(values[int(m.group(1))], target), text)


def to_mrkdwn(markdown: str) -> str:
    """The templates' Markdown subset as Slack mrkdwn: headings, bold, bullets, task boxes."""
    lines = []
    for line in markdown.split("\n"):
        line = re.sub(r"^#{1,6}\s+(.+)$", r"*\1*", line)
        line = re.sub(r"\*\*(.+?)\*\*", r"*\1*", line)
        line = re.sub(r"^(\s*)- \[ \] ", r"\1☐ ", line)
        line = re.sub(r"^(\s*)- \[x\] ", r"\1☑ ", line)
        lines.append(re.sub(r"^(\s*)[-*] ", r"\1• ", line))
    return "\n".join(lines)


def sections(mrkdwn: str, *, limit: int = 2900) -> list[dict[str, Any]]:
    """mrkdwn split at paragraph breaks into verbatim sections under Slack's 3000 characters."""
    chunks: list[str] = []
    for paragraph in mrkdwn.strip().split("\n\n"):
        if chunks and len(chunks[-1]) + len(paragraph) + 2 <= limit:
            chunks[-1] += "\n\n" + paragraph
        else:
            chunks.append(paragraph[:limit])
    # verbatim: URLs and names typed by users are not auto-linked; <@U…> / <!date…> still work
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": c, "verbatim": True}}
        for c in chunks
        if c
    ]
