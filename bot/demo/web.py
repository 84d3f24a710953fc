"""`rollback-bot demo --web`: the demo's conversation as a page on 127.0.0.1, updating live.

The page polls `/transcript.json`; each answer carries the conversation rendered to HTML from
the very Block Kit the bot sent, with edits applied in place (as Slack shows them).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import web

from bot.demo.render import Line, message_lines
from bot.demo.transcript import Entry, Transcript

TRANSCRIPT = web.AppKey("transcript", Transcript)
_TAGS = {"bold": "strong", "italic": "em", "strike": "s", "code": "code"}
_CLASSES = ("mention", "date", "link", "button", "primary", "danger", "dim", "pre")


def spans_html(line: Line) -> str:
    """One line's spans as inline HTML (text escaped; styles as tags and classes)."""
    parts = []
    for text, styles in line.spans:
        chunk = html.escape(text)
        for style in sorted(styles):
            if style in _TAGS:
                chunk = f"<{_TAGS[style]}>{chunk}</{_TAGS[style]}>"
        classes = " ".join(c for c in _CLASSES if c in styles)
        parts.append(f'<span class="{classes}">{chunk}</span>' if classes else chunk)
    return "".join(parts)


def lines_html(lines: Iterable[Line]) -> str:
    """Lines as blocks of HTML, one div per line, classed by kind (quote, pre, context …)."""
    return "".join(
        f'<div class="line {line.kind}">{spans_html(line) or "&nbsp;"}</div>' for line in lines
    )


def conversation_html(transcript: Transcript) -> str:
    """The whole conversation so far, with each message in its latest state."""
    cards: list[list[str]] = []  # [html] boxes, so an edit can replace a card in place
    by_message: dict[tuple[str, str], int] = {}
    for entry in transcript.entries:
        key = (entry.channel, entry.ts)
        if entry.kind == "edit" and key in by_message:
            cards[by_message[key]][0] = _card(entry, transcript, edited=True)
        elif entry.kind == "deleted" and key in by_message:
            cards[by_message[key]][0] = _card(entry, transcript)
        else:
            if entry.kind in ("message", "edit"):
                by_message[key] = len(cards)
            cards.append([_card(entry, transcript)])
    return "\n".join(card[0] for card in cards)


def _card(entry: Entry, transcript: Transcript, *, edited: bool = False) -> str:
    escape = html.escape
    if entry.kind == "narration":
        detail = f"<p>{escape(entry.detail)}</p>" if entry.detail else ""
        return f'<section class="narration"><h2>{escape(entry.text)}</h2>{detail}</section>'
    if entry.kind == "note":
        return f'<div class="note">{escape(entry.text)}</div>'
    where = escape(transcript.where(entry))
    if entry.kind == "action":
        return (
            f'<div class="msg action"><div class="head"><b>{escape(entry.author)}</b>'
            f' <span class="where">{where}</span></div><div class="body">'
            f"{escape(entry.text)}</div></div>"
        )
    if entry.kind == "deleted":
        return f'<div class="msg deleted"><div class="head">message deleted in {where}</div></div>'
    tags = ""
    if entry.kind == "ephemeral":
        tags = f' <span class="tag">only visible to {escape(entry.to)}</span>'
    if edited:
        tags += ' <span class="tag">edited</span>'
    body = lines_html(message_lines(entry.as_message(), transcript.names))
    reply = " reply" if entry.thread else ""
    return (
        f'<div class="msg {entry.kind}{reply}" data-ts="{escape(entry.ts)}">'
        f'<div class="head"><b>{escape(entry.author)}</b> <span class="where">{where}</span>'
        f'{tags}</div><div class="body">{body}</div></div>'
    )


async def page(request: web.Request) -> web.Response:
    """The page itself: a frame that polls for the conversation."""
    return web.Response(text=PAGE, content_type="text/html")


async def transcript_json(request: web.Request) -> web.Response:
    """The conversation so far: version (grows with each entry), finished, and its HTML."""
    transcript = request.app[TRANSCRIPT]
    return web.json_response(
        {
            "version": len(transcript.entries),
            "finished": transcript.finished,
            "html": conversation_html(transcript),
        }
    )


@dataclass
class Page:
    """A served page; `close()` stops serving it."""

    runner: web.AppRunner
    url: str

    async def close(self) -> None:
        """Stop serving."""
        await self.runner.cleanup()


async def serve_page(transcript: Transcript, port: int = 0) -> Page:
    """Serve the page on 127.0.0.1:port (0: a free port)."""
    app = web.Application()
    app[TRANSCRIPT] = transcript
    app.router.add_get("/", page)
    app.router.add_get("/transcript.json", transcript_json)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    return Page(runner, f"http://127.0.0.1:{bound}/")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>rollback-bot demo</title>
<style>
body { font: 15px/1.45 -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       background: #f8f8f8; color: #1d1c1d; }
header { background: #3f0e40; color: #fff; padding: 10px 24px; position: sticky; top: 0; }
header h1 { font-size: 17px; margin: 0; display: inline; }
#status { margin-left: 12px; opacity: .8; }
main { max-width: 900px; margin: 0 auto; padding: 8px 24px 64px; }
.narration { border-top: 2px solid #e8a723; margin-top: 28px; }
.narration h2 { font-size: 16px; margin: 8px 0 2px; } .narration p { margin: 0; color: #616061;
                white-space: pre-line; }
.note { color: #616061; font: 12px/1.5 Menlo, Consolas, monospace; white-space: pre-wrap;
        margin: 4px 0; }
.msg { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; padding: 8px 12px;
       margin: 8px 0; }
.msg.reply { margin-left: 36px; border-left: 3px solid #c9c9c9; }
.msg.ephemeral { background: #f4f8fb; border-style: dashed; }
.msg.action { background: #eef7ee; } .msg.deleted { color: #999; }
.head { font-size: 13px; color: #616061; } .head b { color: #1d1c1d; }
.tag { background: #e8e8e8; border-radius: 3px; padding: 0 5px; font-size: 12px; }
.line { min-height: 1.2em; white-space: pre-wrap; }
.line.quote { border-left: 4px solid #ddd; padding-left: 8px; color: #444; }
.line.pre { font-family: Menlo, Consolas, monospace; font-size: 12px; background: #f6f6f6;
            padding: 0 8px; }
.line.context { font-size: 12px; color: #616061; }
code { font-family: Menlo, Consolas, monospace; font-size: 12px; color: #c01343;
       background: #f6f6f6; border: 1px solid #e2e2e2; border-radius: 3px; padding: 0 3px; }
.mention { color: #1264a3; background: #e8f5fa; border-radius: 3px; }
.link { color: #1264a3; text-decoration: underline; }
.button { display: inline-block; border: 1px solid #bbb; border-radius: 4px; padding: 2px 10px;
          margin: 4px 4px 0 0; font-weight: 600; font-size: 13px; }
.button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.button.danger { color: #e01e5a; border-color: #e01e5a; }
</style></head>
<body><header><h1>rollback-bot demo</h1><span id="status">starting…</span></header>
<main id="feed"></main>
<script>
let version = -1;
async function tick() {
  try {
    const answer = await fetch("transcript.json");
    const data = await answer.json();
    if (data.version !== version) {
      const atBottom = innerHeight + scrollY >= document.body.scrollHeight - 80;
      version = data.version;
      document.getElementById("feed").innerHTML = data.html;
      if (atBottom) scrollTo(0, document.body.scrollHeight);
    }
    document.getElementById("status").textContent =
      data.finished ? "finished" : "playing… (updates live)";
    document.body.dataset.finished = data.finished;
    if (!data.finished) setTimeout(tick, 400);
  } catch (error) {
    document.getElementById("status").textContent = "the demo has stopped";
  }
}
tick();
</script></body></html>
"""
