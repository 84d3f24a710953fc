"""A local stand-in for the Slack Web API (server.FakeSlack): the tests and the demo use it."""

from .records import Call, Response, UploadedFile
from .server import FakeSlack

__all__ = ["Call", "FakeSlack", "Response", "UploadedFile"]
