"""Command-line runs that need no Slack: rehearse and backup (arrive with the run work)."""

from __future__ import annotations

from actions.model import Runbook
from bot.settings import Settings


def rehearse(settings: Settings, runbook: Runbook, dsn: str, scenario: str) -> int:
    """Dry run of a scenario; not available yet."""
    from bot.cli import Stop

    raise Stop("`rehearse` is not available in this version yet.")


def backup(settings: Settings, runbook: Runbook, dsn: str) -> int:
    """Run the backup steps; not available yet."""
    from bot.cli import Stop

    raise Stop("`backup` is not available in this version yet.")
