"""A fake Slack Web API server for end-to-end tests (see server.FakeSlack)."""

from .records import Call, Response, UploadedFile
from .server import FakeSlack

__all__ = ["Call", "FakeSlack", "Response", "UploadedFile"]
