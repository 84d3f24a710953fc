"""Moved to `bot.demo.standin.server`; this module keeps the old import path working."""

from bot.demo.standin.server import HANDLERS, VIEW_METHODS, FakeSlack

__all__ = ["HANDLERS", "VIEW_METHODS", "FakeSlack"]
