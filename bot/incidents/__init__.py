"""Incidents: declare/escalate/resolve (flow), two-person approvals, access, restore points,
deadlines, their SQL. Imports no bot.app, no bot.demo; runs and comms only where pyproject says.
"""
