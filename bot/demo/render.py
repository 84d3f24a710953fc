"""Block Kit and mrkdwn as a person reads them in Slack: styled lines for a terminal or a page.

Pure. `message_lines(message, names)` turns what the bot sent (its blocks, else its text) into
`Line`s of styled spans; `to_plain` and `to_rich` write them for a file or a terminal.
Mentions of known users show as @name, dates as their fallback text, emoji codes as emoji.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text

Span = tuple[str, frozenset[str]]  # text, styles: bold italic strike code link mention date …
Names = Mapping[str, str]  # Slack ID (U…, S…, C…) -> the name a person sees

EMOJI = {
    "white_check_mark": "✅", "x": "❌", "warning": "⚠️", "octagonal_sign": "🛑",
    "no_entry": "⛔", "memo": "📝", "floppy_disk": "💾", "raised_hand": "✋", "pencil2": "✏️",
    "mega": "📣", "hourglass_flowing_sand": "⏳", "hourglass": "⌛", "heavy_minus_sign": "➖",
    "grey_question": "❔", "checkered_flag": "🏁", "arrows_counterclockwise": "🔄",
    "alarm_clock": "⏰", "rotating_light": "🚨", "red_circle": "🔴", "white_circle": "⚪",
    "large_orange_circle": "🟠", "large_yellow_circle": "🟡", "information_source": "ℹ️",
    "heavy_check_mark": "✔️", "bell": "🔔", "page_facing_up": "📄", "calendar": "📅",
    "stopwatch": "⏱️", "tada": "🎉", "lock": "🔒", "clipboard": "📋", "eyes": "👀",
    "fire": "🔥", "+1": "👍", "construction": "🚧", "ballot_box_with_check": "☑️",
}  # fmt: skip
_FENCE = re.compile(r"```(.*?)```", re.DOTALL)
_INLINE = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|<(?P<angle>[^<>\n]+)>"
    r"|(?<![\w*])\*(?P<bold>\S(?:[^*\n]*?\S)?)\*(?![\w*])"
    r"|(?<![\w_])_(?P<italic>\S(?:[^_\n]*?\S)?)_(?![\w_])"
    r"|(?<![\w~])~(?P<strike>\S(?:[^~\n]*?\S)?)~(?![\w~])"
    r"|:(?P<emoji>[a-z0-9_+\-]+):"
)
_RICH_STYLE = {
    "bold": "bold", "italic": "italic", "strike": "strike", "code": "bold magenta",
    "pre": "bright_black", "link": "underline blue", "mention": "bold blue",
    "date": "cyan", "dim": "dim", "primary": "bold green", "danger": "bold red",
    "button": "bold",
}  # fmt: skip
_PREFIX = {"quote": "┃ ", "pre": "│ "}


@dataclass(frozen=True)
class Line:
    """One line as shown: its spans and its kind (text, quote, pre, context, actions, rule)."""

    spans: tuple[Span, ...]
    kind: str = "text"

    @property
    def plain(self) -> str:
        """The line's text without styles or prefix."""
        return "".join(text for text, _ in self.spans)


def unescape(text: str) -> str:
    """Slack's three escaped characters, back as a person reads them."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def inline(text: str, names: Names, styles: frozenset[str] = frozenset()) -> list[Span]:
    """One line of mrkdwn (no code fences) as styled spans."""
    spans: list[Span] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            spans.append((unescape(text[position : match.start()]), styles))
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "code":
            spans.append((unescape(value), styles | {"code"}))
        elif kind == "angle":
            spans.append(_angle(value, names, styles))
        elif kind == "emoji":
            spans.append((EMOJI.get(value, match.group(0)), styles))
        else:
            spans += inline(value, names, styles | {kind})
        position = match.end()
    if position < len(text):
        spans.append((unescape(text[position:]), styles))
    return [span for span in spans if span[0]]


def _angle(token: str, names: Names, styles: frozenset[str]) -> Span:
    """<@U…>, <#C…|name>, <!subteam^S…>, <!date^…|fallback>, <!here>, <url|label>."""
    target, _, label = token.partition("|")
    if target.startswith("@"):
        return "@" + names.get(target[1:], label or target[1:]), styles | {"mention"}
    if target.startswith("#"):
        return "#" + names.get(target[1:], label or target[1:]), styles | {"mention"}
    if target.startswith("!subteam^"):
        group = target.split("^", 1)[1]
        return "@" + names.get(group, label.lstrip("@") or group), styles | {"mention"}
    if target.startswith("!date^"):
        return unescape(label or target), styles | {"date"}
    if target.startswith("!"):
        return "@" + target[1:], styles | {"mention"}
    return unescape(label or target), styles | {"link"}


def mrkdwn_lines(text: str, names: Names, *, kind: str = "text") -> list[Line]:
    """A mrkdwn text (code fences, quotes, inline styles) as lines."""
    lines: list[Line] = []
    position = 0
    for match in [*_FENCE.finditer(text), None]:
        before = text[position : match.start() if match else len(text)]
        for raw in before.strip("\n").split("\n") if before.strip("\n") else []:
            quoted = re.match(r"(?:>|&gt;) ?", raw)
            line_kind = "quote" if quoted else kind
            body = raw[quoted.end() :] if quoted else raw
            lines.append(Line(tuple(inline(body, names, _base(kind))), line_kind))
        if match:
            code = unescape(match.group(1).strip("\n"))
            lines += [Line(((row, frozenset({"pre"})),), "pre") for row in code.split("\n")]
            position = match.end()
    return lines


def _base(kind: str) -> frozenset[str]:
    return frozenset({"dim"}) if kind == "context" else frozenset()


def _text_object(obj: Mapping[str, Any] | None, names: Names, *, kind: str = "text") -> list[Line]:
    if not obj:
        return []
    if obj.get("type") == "plain_text":
        return [Line(((row, _base(kind)),), kind) for row in obj.get("text", "").split("\n")]
    return mrkdwn_lines(obj.get("text", ""), names, kind=kind)


def element_span(element: Mapping[str, Any]) -> Span:
    """An interactive element as a person sees it: `[Approve]`, `[Pick one ▾]`."""
    label = (element.get("text") or element.get("placeholder") or {}).get("text", "")
    styles = {"button"} | ({element["style"]} if element.get("style") else set())
    if element.get("type") == "button":
        return f"[{label}]", frozenset(styles)
    if element.get("type") == "overflow":
        return "[⋯]", frozenset(styles)
    return f"[{label or element.get('type', 'input')} ▾]", frozenset(styles)


def block_lines(block: Mapping[str, Any], names: Names) -> list[Line]:
    """One Block Kit block as lines."""
    kind = block.get("type")
    if kind == "section":
        lines = _text_object(block.get("text"), names)
        for field in block.get("fields") or []:
            lines += _text_object(field, names)
        if (accessory := block.get("accessory")) and accessory.get("type") != "image":
            lines.append(Line((element_span(accessory),), "actions"))
        return lines
    if kind == "header":
        return [Line(((block["text"]["text"], frozenset({"bold"})),))]
    if kind == "context":
        spans: list[Span] = []
        for element in block.get("elements") or []:
            if element.get("type") in ("mrkdwn", "plain_text"):
                for line in _text_object(element, names, kind="context"):
                    spans += [*line.spans, (" ", frozenset())]
        return [Line(tuple(spans[:-1]), "context")] if spans else []
    if kind == "actions":
        spans = []
        for element in block.get("elements") or []:
            spans += [element_span(element), (" ", frozenset())]
        return [Line(tuple(spans[:-1]), "actions")] if spans else []
    if kind == "divider":
        return [Line((("─" * 24, frozenset({"dim"})),), "rule")]
    if kind == "image":
        return [Line(((f"[image: {block.get('alt_text', '')}]", frozenset({"dim"})),))]
    if kind == "rich_text":
        return _rich_text(block, names)
    return [Line(((f"[{kind} block]", frozenset({"dim"})),))]


def _rich_text(block: Mapping[str, Any], names: Names) -> list[Line]:
    """rich_text blocks (what Slack's composer sends): sections, lists, quotes, code."""
    lines: list[Line] = []
    for part in block.get("elements") or []:
        spans = []
        for element in _leaves(part):
            text = element.get("text") or element.get("url") or ""
            if element.get("type") == "user":
                text = "@" + names.get(element.get("user_id", ""), element.get("user_id", ""))
            elif element.get("type") == "emoji":
                text = EMOJI.get(element.get("name", ""), f":{element.get('name')}:")
            styles = {k for k, on in (element.get("style") or {}).items() if on}
            spans.append((text, frozenset(styles)))
        kind = {"rich_text_quote": "quote", "rich_text_preformatted": "pre"}.get(part["type"])
        for row in "".join(t for t, _ in spans).split("\n") if kind == "pre" else [None]:
            content = ((row, frozenset({"pre"})),) if row is not None else tuple(spans)
            lines.append(Line(content, kind or "text"))
    return lines


def _leaves(part: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for element in part.get("elements") or []:
        if element.get("type", "").startswith("rich_text_"):
            yield {"type": "text", "text": "• "}
            yield from _leaves(element)
            yield {"type": "text", "text": "\n"}
        else:
            yield element


def message_lines(message: Mapping[str, Any], names: Names) -> list[Line]:
    """A message as Slack shows it: its blocks (or its text), then its attachments."""
    lines: list[Line] = []
    if message.get("blocks"):
        for block in message["blocks"]:
            lines += block_lines(block, names)
    else:
        lines += mrkdwn_lines(message.get("text") or "", names)
    for attachment in message.get("attachments") or []:
        inner = message_lines(
            {"blocks": attachment.get("blocks"), "text": attachment.get("text")}, names
        )
        lines += [Line(line.spans, "quote") for line in inner]
    return lines


def to_plain(lines: Iterable[Line], indent: str = "") -> str:
    """Lines as plain text (quotes and code blocks marked at the start, inline code in `…`)."""

    def text(line: Line) -> str:
        return "".join(f"`{t}`" if "code" in s else t for t, s in line.spans)

    return "\n".join((indent + _PREFIX.get(line.kind, "") + text(line)).rstrip() for line in lines)


def to_rich(lines: Iterable[Line], indent: str = "") -> Text:
    """Lines as a rich Text for a terminal."""
    text = Text()
    for number, line in enumerate(lines):
        if number:
            text.append("\n")
        text.append(indent + _PREFIX.get(line.kind, ""), style="bright_black")
        for chunk, styles in line.spans:
            text.append(
                chunk, style=" ".join(_RICH_STYLE[s] for s in sorted(styles) if s in _RICH_STYLE)
            )
    return text
