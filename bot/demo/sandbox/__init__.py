"""A throw-away stand-in for the operator's production (git project, database, tools).
Imports nothing of bot outside bot.demo.sandbox except bot.packaged.
"""
