"""The fake's memory of channels: messages as Slack would now show them."""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

# Slack timestamps are "<unix seconds>.<6 digits>" of the moment of posting; ours count up
# from the second the stand-in started, so they are unique, increasing and near the real
# clock (the outbox looks for a message it may already have posted from the row's
# `created_at` on: timestamps from another year would never be found).


def _as_float(ts: Any) -> float:
    return float(ts) if ts not in (None, "") else 0.0


class Channels:
    """Messages per channel, with edits applied and deleted messages removed."""

    def __init__(self) -> None:
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._tick = itertools.count(100, 100)
        self.base = int(time.time())  # unix seconds of the first ts

    def next_ts(self) -> str:
        """A fresh, unique message timestamp, later than every earlier one."""
        n = next(self._tick)
        return f"{self.base + n // 1_000_000}.{n % 1_000_000:06d}"

    def post(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        """Store `message` (None values dropped) under a new ts; return a copy of it."""
        stored = {k: v for k, v in message.items() if v is not None}
        stored.setdefault("type", "message")
        stored["ts"] = self.next_ts()
        self._messages.setdefault(channel, []).append(stored)
        return copy.deepcopy(stored)

    def find(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The stored message (not a copy) with this ts, if it exists."""
        for message in self._messages.get(channel, []):
            if message["ts"] == ts:
                return message
        return None

    def edit(self, channel: str, ts: str, changes: dict[str, Any], *, by: str) -> dict:
        """Apply `changes` (None values ignored) to an existing message; return a copy."""
        message = self.find(channel, ts)
        if message is None:
            raise KeyError(ts)
        message.update({k: v for k, v in changes.items() if v is not None})
        message["edited"] = {"user": by, "ts": self.next_ts()}
        return copy.deepcopy(message)

    def delete(self, channel: str, ts: str) -> None:
        """Remove a message (KeyError if there is none with this ts)."""
        message = self.find(channel, ts)
        if message is None:
            raise KeyError(ts)
        self._messages[channel].remove(message)

    def ids(self) -> list[str]:
        """Every channel that has had a message, in the order they were first used."""
        return list(self._messages)

    def everything(self, channel: str) -> list[dict[str, Any]]:
        """Every message of the channel, thread replies included, oldest first."""
        return [copy.deepcopy(m) for m in self._messages.get(channel, [])]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Channel-level messages, oldest first (thread replies only if broadcast)."""
        return [
            copy.deepcopy(m)
            for m in self._messages.get(channel, [])
            if m.get("thread_ts") in (None, m["ts"]) or m.get("reply_broadcast")
        ]

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """Replies in the thread under `thread_ts`, oldest first (without the parent)."""
        return [
            copy.deepcopy(m)
            for m in self._messages.get(channel, [])
            if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
        ]

    def with_thread_info(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        """`message` with reply_count/latest_reply set when it has replies, as Slack shows."""
        replies = self.thread(channel, message["ts"])
        if not replies:
            return message
        return message | {
            "thread_ts": message["ts"],
            "reply_count": len(replies),
            "reply_users": sorted({r.get("user", "") for r in replies} - {""}),
            "latest_reply": replies[-1]["ts"],
        }


def window(
    messages: list[dict[str, Any]], *, oldest: Any, latest: Any, inclusive: bool
) -> list[dict[str, Any]]:
    """The messages between `oldest` and `latest` (Slack's history/replies filter)."""
    low, high = _as_float(oldest), _as_float(latest) or float("inf")

    def inside(ts: str) -> bool:
        t = float(ts)
        return low <= t <= high if inclusive else low < t < high

    return [m for m in messages if inside(m["ts"])]
