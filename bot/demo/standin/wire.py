"""Reading Slack-client requests: arguments from query, form or JSON; the bearer token."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def read_args(request: web.Request) -> dict[str, Any]:
    """Query parameters merged with a form or JSON body (ValueError if the JSON is bad)."""
    args: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except json.JSONDecodeError as exc:
            raise ValueError("body is not JSON") from exc
        if not isinstance(body, dict):
            raise ValueError("JSON body is not an object")
        args.update(body)
    else:
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    return args


def bearer_token(request: web.Request) -> str | None:
    """The token from `Authorization: Bearer …`, if that header is there."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def read_upload(request: web.Request) -> bytes:
    """A file's bytes, sent raw (as slack_sdk does) or as a multipart form field."""
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    reader = await request.multipart()
    async for part in reader:
        if part.filename or part.name in ("file", "filename"):
            return bytes(await part.read())
    return b""
