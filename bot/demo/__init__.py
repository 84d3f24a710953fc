"""`rollback-bot demo`: the play, its sandbox and the Slack stand-in (the tests use both).
Only bot.cli imports it; it imports no bot.app (the bot runs as a subprocess).
"""
