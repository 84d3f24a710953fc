"""The fake Slack Web API now lives in `bot.standin` (the demo uses it too); same names here."""

from bot.standin import Call, FakeSlack, Response, UploadedFile

__all__ = ["Call", "FakeSlack", "Response", "UploadedFile"]
