"""The running bot: pool, Bolt app, outbox sender, scheduler (runtime), HTTP and Socket
Mode serving, the /rollback dispatcher, App Home. Imported only by bot.cli; never bot.demo.
"""
