"""Incidents: declare/escalate (flow), two-person approvals, access, restore points, deadlines,
their SQL. Imports no bot.runs, bot.comms, bot.app or bot.demo (bot.app.flow hands off to them).
"""
