"""Slack plumbing every domain shares: ids, pure Block Kit (blocks), parsing, the outbox,
guard, responder, the Socket Mode client. Imports no domain package (incidents, runs, comms).
"""
