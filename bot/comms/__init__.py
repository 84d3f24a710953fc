"""Communications: notice, post-mortem, checklists, contacts, reminders, history, metrics,
aftercare, their SQL and rendering. Imports no bot.app, no bot.demo.
"""
