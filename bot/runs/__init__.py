"""Rollback and backup runs: executor, queue, outcomes, report, controls, CLI runs, their SQL
and rendering. Imports no bot.comms, bot.app or bot.demo; the executor owes Slack via the outbox.
"""
