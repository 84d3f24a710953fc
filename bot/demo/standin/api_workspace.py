"""The fake's other methods: auth, users, user groups, views, canvases and file uploads."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .api_messages import error
from .records import UploadedFile

if TYPE_CHECKING:
    from .server import FakeSlack

Args = dict[str, Any]


def auth_test(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """auth.test: who the bot token belongs to."""
    return {
        "ok": True,
        "url": "https://fake-slack.example/",
        "team": "Fake Workspace",
        "user": "rollback-bot",
        "team_id": fake.team_id,
        "user_id": fake.bot_user_id,
        "bot_id": fake.bot_id,
        "is_enterprise_install": False,
    }


def users_info(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """users.info: `fake.users[user]`, or a plain human user made up from the ID."""
    user_id = args["user"]
    made_up = {
        "id": user_id,
        "team_id": fake.team_id,
        "name": user_id.lower(),
        "real_name": f"User {user_id}",
        "deleted": False,
        "is_bot": False,
        "tz": "UTC",
        "profile": {"real_name": f"User {user_id}", "display_name": user_id.lower()},
    }
    return {"ok": True, "user": made_up | fake.users.get(user_id, {})}


def usergroup_users(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """usergroups.users.list: `fake.usergroups[usergroup]`; unknown groups are an error."""
    members = fake.usergroups.get(args["usergroup"])
    if members is None:
        return error("no_such_subteam")
    return {"ok": True, "users": list(members)}


def _store_view(fake: FakeSlack, view: dict[str, Any], *, view_id: str | None = None) -> dict:
    view_id = view_id or fake.new_id("V")
    stored = {
        "private_metadata": "",
        "callback_id": "",
        "external_id": "",
        **view,
        "id": view_id,
        "team_id": fake.team_id,
        "app_id": fake.app_id,
        "bot_id": fake.bot_id,
        "state": {"values": {}},
        "hash": fake.new_id("H"),
        "root_view_id": view_id,
    }
    fake.views[view_id] = stored
    return copy.deepcopy(stored)


def views_open(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """views.open: a new modal with a fresh view ID."""
    return {"ok": True, "view": _store_view(fake, args["view"])}


def views_publish(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """views.publish: the user's Home tab (same view ID each time)."""
    user_id = args["user_id"]
    current = fake.home_views.get(user_id)
    if current and args.get("hash") and args["hash"] != current["hash"]:
        return error("hash_conflict")
    view = _store_view(fake, args["view"], view_id=current["id"] if current else None)
    fake.home_views[user_id] = view
    return {"ok": True, "view": view}


def views_update(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """views.update: replace an open view found by view_id or external_id."""
    if args.get("view_id"):
        current = fake.views.get(args["view_id"])
    else:
        found = [v for v in fake.views.values() if v["external_id"] == args.get("external_id")]
        current = found[-1] if found else None
    if current is None:
        return error("not_found")
    if args.get("hash") and args["hash"] != current["hash"]:
        return error("hash_conflict")
    return {"ok": True, "view": _store_view(fake, args["view"], view_id=current["id"])}


def canvases_create(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """canvases.create: a canvas ID, or the refusal a workspace without canvases gives."""
    if not fake.canvases_enabled:
        return error(fake.canvas_disabled_error)
    canvas_id = fake.new_id("F")
    fake.canvases[canvas_id] = {k: args.get(k) for k in ("title", "document_content", "channel_id")}
    return {"ok": True, "canvas_id": canvas_id}


def canvases_edit(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """canvases.edit: apply `replace` changes of the whole document to a known canvas."""
    canvas = fake.canvases.get(args.get("canvas_id"))
    if canvas is None:
        return error("canvas_not_found")
    changes = args.get("changes")
    if not isinstance(changes, list) or not changes:
        return error("invalid_arguments")
    for change in changes:
        if not isinstance(change, dict) or change.get("operation") != "replace":
            return error("invalid_arguments")
        canvas["document_content"] = change.get("document_content")
    canvas["edits"] = canvas.get("edits", 0) + 1
    return {"ok": True}


def get_upload_url(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """files.getUploadURLExternal: a file ID and the fake's URL to POST its bytes to."""
    try:
        length = int(args["length"])
    except ValueError:
        return error("invalid_arguments")
    file_id = fake.new_id("F")
    fake.files[file_id] = UploadedFile(id=file_id, filename=args["filename"], length=length)
    return {"ok": True, "file_id": file_id, "upload_url": f"{fake.root_url}/upload/{file_id}"}


def complete_upload(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """files.completeUploadExternal: attach uploaded files, sharing them if a channel is given."""
    entries = args["files"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return error("invalid_arguments")
    files = [fake.files.get(e.get("id", "")) for e in entries]
    if any(f is None or f.content is None for f in files):
        return error("file_not_found")  # never announced, or its bytes never arrived
    channel = args.get("channel_id") or (args.get("channels") or "").split(",")[0] or None
    shared = []
    for entry, file in zip(entries, files, strict=True):
        file.title = entry.get("title") or file.filename
        file.channel_id, file.thread_ts = channel, args.get("thread_ts") or None
        file.initial_comment, file.completed = args.get("initial_comment"), True
        shared.append({"id": file.id, "name": file.filename, "title": file.title})
    if channel:
        message = {"text": args.get("initial_comment") or "", "files": shared, "upload": True}
        fake.channels.post(
            channel, message | {"thread_ts": args.get("thread_ts")} | fake.bot_identity()
        )
    sizes = [{"size": f.length} for f in files]
    return {"ok": True, "files": [s | size for s, size in zip(shared, sizes, strict=True)]}


def files_upload(fake: FakeSlack, args: Args) -> dict[str, Any]:
    """files.upload: retired by Slack on 2025-11-12 in favour of the two methods above.

    https://docs.slack.dev/changelog/2024-04-a-better-way-to-upload-files-is-here-to-stay
    """
    return error("method_deprecated")


HANDLERS = {
    "auth.test": auth_test,
    "users.info": users_info,
    "usergroups.users.list": usergroup_users,
    "views.open": views_open,
    "views.publish": views_publish,
    "views.update": views_update,
    "canvases.create": canvases_create,
    "canvases.edit": canvases_edit,
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
    "files.upload": files_upload,
}
