"""PostgreSQL: the embedded server, the pool, and migrations/ (applied in order, once).
Imports nothing else of bot.
"""
