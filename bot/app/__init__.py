"""The running bot: runtime (pool, Bolt app, outbox, scheduler), serving, the /rollback dispatcher,
App Home, flow (incidents' hand-offs to runs and comms). Imported only by bot.cli; never bot.demo.
"""
