"""The fake's chat.* and conversations.* methods, answered from the channel model."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .channels import window
from .validation import flag

if TYPE_CHECKING:
    from .server import FakeSlack

Args = dict[str, Any]


def error(code: str, **extra: Any) -> dict[str, Any]:
    """A Slack error body."""
    return {"ok": False, "error": code, **extra}


def _has_content(args: Args) -> bool:
    return any(args.get(k) not in (None, "", []) for k in ("text", "blocks", "attachments"))


def post_message(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """chat.postMessage: store the message as the bot's; answer with its ts."""
    if not _has_content(args):
        return error("no_text")
    channel = args["channel"]
    message = fake.channels.post(
        channel,
        {
            "text": args.get("text") or "",
            "blocks": args.get("blocks"),
            "attachments": args.get("attachments"),
            "thread_ts": args.get("thread_ts") or None,
            "reply_broadcast": True if flag(args.get("reply_broadcast")) else None,
            "metadata": args.get("metadata"),
            **fake.bot_identity(),
        },
    )
    return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}


def update(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """chat.update: edit one of the bot's messages; omitted fields keep their value."""
    channel, ts = args["channel"], args["ts"]
    message = fake.channels.find(channel, ts)
    if message is None:
        return error("message_not_found")
    if message.get("user") != fake.bot_user_id:
        return error("cant_update_message")
    if not _has_content(args):
        return error("no_text")
    changes = {k: args.get(k) for k in ("text", "blocks", "attachments", "metadata")}
    edited = fake.channels.edit(channel, ts, changes, by=fake.bot_user_id)
    return {"ok": True, "channel": channel, "ts": ts, "text": edited["text"], "message": edited}


def post_ephemeral(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """chat.postEphemeral: not stored (only its recipient ever sees it)."""
    if not _has_content(args):
        return error("no_text")
    return {"ok": True, "message_ts": fake.channels.next_ts()}


def delete(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """chat.delete: remove one of the bot's messages."""
    channel, ts = args["channel"], str(args["ts"])
    message = fake.channels.find(channel, ts)
    if message is None:
        return error("message_not_found")
    if message.get("user") != fake.bot_user_id:
        return error("cant_delete_message")
    fake.channels.delete(channel, ts)
    return {"ok": True, "channel": channel, "ts": ts}


def get_permalink(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """chat.getPermalink: a stable fake link to an existing message."""
    channel, ts = args["channel"], args["message_ts"]
    if fake.channels.find(channel, ts) is None:
        return error("message_not_found")
    link = f"https://fake-slack.example/archives/{channel}/p{ts.replace('.', '')}"
    return {"ok": True, "channel": channel, "permalink": link}


def _page(messages: list[dict[str, Any]], args: Args) -> dict[str, Any]:
    try:
        start, limit = int(args.get("cursor") or 0), int(args.get("limit") or 100)
    except ValueError:
        return error("invalid_cursor")
    page = messages[start : start + limit]
    if not flag(args.get("include_all_metadata")):
        page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
    more = start + limit < len(messages)
    return {
        "ok": True,
        "messages": page,
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def history(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """conversations.history: channel-level messages, newest first."""
    channel = args["channel"]
    messages = window(
        fake.channels.messages(channel),
        oldest=args.get("oldest"),
        latest=args.get("latest"),
        inclusive=flag(args.get("inclusive")),
    )
    messages = [fake.channels.with_thread_info(channel, m) for m in reversed(messages)]
    return _page(messages, args) | {"pin_count": 0}


def replies(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """conversations.replies: the thread's parent, then its replies, oldest first."""
    channel, ts = args["channel"], str(args["ts"])
    parent = fake.channels.find(channel, ts)
    if parent is None:
        return error("thread_not_found")
    thread = window(
        fake.channels.thread(channel, ts),
        oldest=args.get("oldest"),
        latest=args.get("latest"),
        inclusive=flag(args.get("inclusive")),
    )
    first = fake.channels.with_thread_info(channel, copy.deepcopy(parent))
    return _page([first, *thread], args)


def info(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """conversations.info: a public channel the bot is in, overridable per channel."""
    channel = args["channel"]
    described = {
        "id": channel,
        "name": channel.lower(),
        "is_channel": True,
        "is_private": False,
        "is_archived": False,
        "is_member": True,
    }
    return {"ok": True, "channel": described | fake.channel_info.get(channel, {})}


HANDLERS = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.postEphemeral": post_ephemeral,
    "chat.delete": delete,
    "chat.getPermalink": get_permalink,
    "conversations.history": history,
    "conversations.replies": replies,
    "conversations.info": info,
}
