"""What the fake Slack received: Web API calls, response-URL posts and uploaded files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    """One Web API request and the answer the fake gave (filled in once answered)."""

    method: str
    args: dict[str, Any]
    at: float
    response: dict[str, Any] = field(default_factory=dict)
    status: int = 0
    failed: bool = False
    token: str | None = None

    @property
    def ok(self) -> bool:
        """True when the fake answered HTTP 200 with `"ok": true`."""
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass(frozen=True)
class Response:
    """One JSON body POSTed to a response URL (what Bolt's `respond()` sends)."""

    url_id: str
    body: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class UploadedFile:
    """A file uploaded with files.getUploadURLExternal + files.completeUploadExternal."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False
