"""The fake Slack Web API lives in `bot.demo.standin` (the demo uses it too); same names here."""

from bot.demo.standin import Call, FakeSlack, Response, UploadedFile

__all__ = ["Call", "FakeSlack", "Response", "UploadedFile"]
