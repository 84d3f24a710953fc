"""Moved to `bot.standin.server`; this module keeps the old import path working."""

from bot.standin.server import HANDLERS, VIEW_METHODS, FakeSlack

__all__ = ["HANDLERS", "VIEW_METHODS", "FakeSlack"]
