"""The demo's conversation: entries in the order a person would see them, and the watcher that
turns what the Slack stand-in received into entries (posts, edits, ephemerals, deletions)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.demo.standin import FakeSlack

BOT_NAME = "rollback-bot"


@dataclass
class Entry:
    """One thing that appeared: a narration, a person's action, or a message from the bot."""

    seq: int
    kind: str  # narration | action | message | edit | ephemeral | deleted | note
    text: str = ""  # narration and action text; a message's fallback text
    channel: str = ""
    ts: str = ""
    thread: str = ""  # the root ts when the message is a thread reply
    author: str = ""  # who it is from, as a person sees it: "@alice", "rollback-bot"
    to: str = ""  # an ephemeral's only reader
    blocks: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""  # narration: a second line

    def as_message(self) -> dict[str, Any]:
        """The entry as a Slack message (text and blocks) for the renderers."""
        return {"text": self.text, "blocks": self.blocks}

    def as_json(self) -> dict[str, Any]:
        """Everything about the entry, JSON-ready."""
        return dict(self.__dict__)


class Transcript:
    """Entries in arrival order; listeners see each one as it is added."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)  # Slack ID -> name, for @mentions, #channels and authors
        self.entries: list[Entry] = []
        self.listeners: list[Callable[[Entry], None]] = []
        self.finished = False
        self.thread_labels: dict[tuple[str, str], str] = {}

    def add(self, kind: str, **fields: Any) -> Entry:
        """Append an entry and tell every listener."""
        entry = Entry(seq=len(self.entries) + 1, kind=kind, **fields)
        self.entries.append(entry)
        for listener in self.listeners:
            listener(entry)
        return entry

    def narrate(self, text: str, detail: str = "") -> Entry:
        """A heading of the demo's own (not something Slack shows)."""
        return self.add("narration", text=text, detail=detail)

    def note(self, text: str) -> Entry:
        """A line of the demo's own about what it checked or found."""
        return self.add("note", text=text)

    def action(self, user: str, text: str, *, channel: str, thread: str = "") -> Entry:
        """Something a person did in Slack: typed a command, clicked a button."""
        return self.add(
            "action",
            author="@" + self.names.get(user, user),
            text=text,
            channel=channel,
            thread=thread,
        )

    def channel_name(self, channel: str) -> str:
        """#name of a channel."""
        return "#" + self.names.get(channel, channel)

    def where(self, entry: Entry) -> str:
        """`#ecom-ops` or `#ecom-ops › thread “RB-1 CRITICAL: …”`."""
        place = self.channel_name(entry.channel) if entry.channel else ""
        if entry.thread:
            label = self.thread_labels.get((entry.channel, entry.thread), "")
            place += f" › thread “{label}”" if label else " › thread"
        return place


def _thread_label(message: Mapping[str, Any]) -> str:
    text = re.sub(r"<[^>|]*\|([^>]*)>|<[^>]*>", r"\1", message.get("text") or "")
    text = " ".join(text.split())
    return text if len(text) <= 48 else text[:47] + "…"


class Watcher:
    """Replays, in order, what the stand-in received since the last look: every message the
    bot posted, each state it edited a message to, deletions, and what only one person saw."""

    def __init__(self, fake: FakeSlack, transcript: Transcript) -> None:
        self.fake, self.transcript = fake, transcript
        self.shown: set[tuple[str, str]] = set()  # (channel, ts) of messages already shown
        self.calls_seen = self.responses_seen = 0
        self.response_readers: dict[str, tuple[str, str]] = {}  # url id -> (user, channel)

    def expect_response(self, url: str, *, user: str, channel: str) -> None:
        """Posts to this response URL are shown to `user` only (unless they go in channel)."""
        self.response_readers[url.rstrip("/").rsplit("/", 1)[-1]] = (user, channel)

    def poll(self) -> int:
        """Add an entry for everything new since the last poll; how many were added."""
        before = len(self.transcript.entries)
        calls = []
        for call in self.fake.calls[self.calls_seen :]:
            if not call.status:
                break  # still being answered: it and the calls after it wait for the next poll
            calls.append((call.at, 0, call))
        self.calls_seen += len(calls)
        responses = [(r.at, 1, r) for r in self.fake.responses[self.responses_seen :]]
        self.responses_seen += len(responses)
        for _, is_response, record in sorted(calls + responses, key=lambda item: item[:2]):
            if is_response:
                self._response(record)
            elif record.ok:
                self._call(record.method, record.args, record.response)
        for channel in self.fake.channels.ids():  # anything else that appeared (file shares…)
            for message in self.fake.channels.everything(channel):
                if (channel, message["ts"]) not in self.shown:
                    self._message("message", channel, message)
        return len(self.transcript.entries) - before

    def _call(self, method: str, args: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
        if method in ("chat.postMessage", "chat.update") and answer.get("message"):
            kind = "message" if method == "chat.postMessage" else "edit"
            self._message(kind, answer["channel"], answer["message"])
        elif method == "chat.delete":
            self.shown.discard((args["channel"], str(args["ts"])))
            self.transcript.add(
                "deleted", channel=args["channel"], ts=str(args["ts"]), author=BOT_NAME
            )
        elif method == "chat.postEphemeral":
            self.ephemeral(args, args.get("user", ""), args.get("channel", ""))

    def _response(self, response) -> None:
        body, hook = response.body, self.fake.hooks.get(response.url_id)
        if response.status != 200:
            return
        bound = hook is not None and hook.channel and hook.message_ts
        if bound and (body.get("replace_original") or body.get("delete_original")):
            message = self.fake.channels.find(hook.channel, hook.message_ts)
            if body.get("delete_original") or message is None:
                self.shown.discard((hook.channel, hook.message_ts))
                self.transcript.add(
                    "deleted", channel=hook.channel, ts=hook.message_ts, author=BOT_NAME
                )
            else:
                edited = {**message, "text": body.get("text", ""), "blocks": body.get("blocks")}
                self._message("edit", hook.channel, edited)
        elif body.get("response_type") != "in_channel":  # in channel: found by the state scan
            user, channel = self.response_readers.get(response.url_id, ("", ""))
            self.ephemeral(body, user, channel)

    def _message(self, kind: str, channel: str, message: Mapping[str, Any]) -> None:
        key = (channel, message["ts"])
        thread = message.get("thread_ts") or ""
        thread = "" if thread == message["ts"] else thread
        if key not in self.shown and not thread:
            self.transcript.thread_labels[key] = _thread_label(message)
        self.shown.add(key)
        self.transcript.add(
            kind,
            channel=channel,
            ts=message["ts"],
            thread=thread,
            author=self._author(message),
            text=message.get("text") or "",
            blocks=message.get("blocks") or [],
        )

    def _author(self, message: Mapping[str, Any]) -> str:
        user = message.get("user", "")
        if user == self.fake.bot_user_id or message.get("bot_id"):
            return BOT_NAME
        return "@" + self.transcript.names.get(user, user)

    def ephemeral(self, body: Mapping[str, Any], user: str, channel: str) -> None:
        """Show a message only `user` sees."""
        self.transcript.add(
            "ephemeral",
            channel=channel,
            author=BOT_NAME,
            to="@" + self.transcript.names.get(user, user or "you"),
            text=body.get("text") or "",
            blocks=body.get("blocks") or [],
            thread=body.get("thread_ts") or "",
        )
