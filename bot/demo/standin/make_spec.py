"""Regenerate spec.json: the subset of Slack's OpenAPI description the fake server enforces.

Run once from the repository root when the list of methods changes:

    .venv/bin/python -m bot.demo.standin.make_spec /work/shared/slack/slack_web_openapi_v2.json

The OpenAPI file (slackapi/slack-api-specs, last published 2020) predates some methods and
misses some arguments; those are added below by hand, each citing Slack's method docs.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SPEC_PATH = Path(__file__).with_name("spec.json")

METHODS = [
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "chat.delete",
    "chat.getPermalink",
    "conversations.history",
    "conversations.replies",
    "conversations.info",
    "usergroups.users.list",
    "users.info",
    "views.open",
    "views.publish",
    "views.update",
    "files.upload",
]

DOCS = "https://docs.slack.dev/reference/methods/"


def _param(name: str, required: bool, type_: str = "string") -> dict:
    return {"name": name, "in": "formData", "required": required, "type": type_}


# Methods newer than the 2020 OpenAPI file, transcribed from Slack's method docs.
NEWER_METHODS = {
    # https://docs.slack.dev/reference/methods/apps.connections.open (Socket Mode): no
    # arguments; the app-level token goes in the Authorization header.
    "apps.connections.open": [],
    # https://docs.slack.dev/reference/methods/canvases.create
    "canvases.create": [
        _param("title", False),
        _param("document_content", False, "object"),
        _param("channel_id", False),
    ],
    # https://docs.slack.dev/reference/methods/canvases.edit
    "canvases.edit": [
        _param("canvas_id", True),
        _param("changes", True, "object"),
    ],
    # https://docs.slack.dev/reference/methods/files.getUploadURLExternal
    "files.getUploadURLExternal": [
        _param("filename", True),
        _param("length", True, "integer"),
        _param("alt_txt", False),
        _param("snippet_type", False),
    ],
    # https://docs.slack.dev/reference/methods/files.completeUploadExternal
    "files.completeUploadExternal": [
        _param("files", True, "array"),
        _param("channel_id", False),
        _param("channels", False),
        _param("thread_ts", False),
        _param("initial_comment", False),
        _param("blocks", False),
    ],
}

# Where the 2020 file marks as optional what the method docs (DOCS + method) require, or
# omits an argument added since: {method: {name: (required, type)}}.
CORRECTIONS = {
    "chat.delete": {"channel": (True, "string"), "ts": (True, "string")},
    "chat.postMessage": {"metadata": (False, "object")},
    "chat.update": {"metadata": (False, "object")},
    "conversations.history": {
        "channel": (True, "string"),
        "include_all_metadata": (False, "boolean"),
    },
    "conversations.replies": {
        "channel": (True, "string"),
        "ts": (True, "string"),
        "include_all_metadata": (False, "boolean"),
    },
    "conversations.info": {"channel": (True, "string")},
    "users.info": {"user": (True, "string")},
    "views.update": {"view": (True, "string")},
}

# Arguments of which at least one must be given (Slack docs: views.update).
ONE_OF = {"views.update": [["view_id", "external_id"]]}


def build(openapi: dict) -> dict:
    """The spec.json document for METHODS, NEWER_METHODS and CORRECTIONS."""
    methods: dict[str, dict] = {}
    for name in METHODS:
        ((verb, operation),) = openapi["paths"]["/" + name].items()
        params = [
            {k: p.get(k, False) for k in ("name", "in", "required", "type")}
            for p in operation["parameters"]
            if p["name"] != "token"
        ]
        methods[name] = {"http_method": verb.upper(), "docs": DOCS + name, "params": params}
    for name, params in NEWER_METHODS.items():
        methods[name] = {"http_method": "POST", "docs": DOCS + name, "params": params}
    for name, fixes in CORRECTIONS.items():
        by_name = {p["name"]: p for p in methods[name]["params"]}
        for arg, (required, type_) in fixes.items():
            by_name.setdefault(arg, _param(arg, required, type_)).update(required=required)
        methods[name]["params"] = list(by_name.values())
        methods[name]["corrected_from_docs"] = sorted(fixes)
    for name, groups in ONE_OF.items():
        methods[name]["one_of"] = groups
    return {
        "source": "slackapi/slack-api-specs web-api/slack_web_openapi_v2.json (MIT), subset",
        "generated_by": "bot/demo/standin/make_spec.py",
        "methods": dict(sorted(methods.items())),
    }


def main() -> None:
    """Read the OpenAPI file named on the command line and write spec.json."""
    openapi = json.loads(Path(sys.argv[1]).read_text())
    text = json.dumps(build(openapi), indent=1)
    # One parameter per line keeps the file short enough to review.
    flat = lambda m: re.sub(r"\n\s*", " ", m[0])  # noqa: E731
    text = re.sub(r"\{\s+\"name\"[^{}]*?\}", flat, text)
    text = re.sub(r"\[\s+\"[^\[\]{}]*?\]", flat, text)
    text = re.sub(r"\[\s+\[.*?\]\s+\]", flat, text, flags=re.S)
    SPEC_PATH.write_text(text + "\n")
    print(f"wrote {SPEC_PATH}")


if __name__ == "__main__":
    main()
