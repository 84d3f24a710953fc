"""The files the bot ships besides its code, found with importlib.resources.

In a wheel (pip, pipx, a Procfile host) the default runbook, `.env.example` and the notice
and post-mortem templates are package data under `bot/_defaults/` (setup.py copies them in
from the repository root at build time). In a checkout — an editable install, or `python -m
bot` with the checkout on PYTHONPATH — there is no `_defaults/`, and the same files are read
where they are committed: `runbook.toml`, `.env.example` and `templates/` at the root.
Migrations (`bot/db/migrations/`) and the stand-in's `spec.json` are ordinary package data.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def defaults() -> Path:
    """The folder holding runbook.toml, .env.example and templates/ for this installation."""
    packaged = resources.files("bot") / "_defaults"
    if packaged.is_dir():
        return Path(str(packaged))  # a wheel is installed unpacked: a real directory
    return Path(str(resources.files("bot"))).resolve().parent  # a checkout's root


def default_runbook() -> Path:
    """The shipped runbook: the seed plan, with REPLACE markers where an operator's IDs go."""
    return defaults() / "runbook.toml"


def env_example() -> Path:
    """The shipped `.env.example`: every setting, each with a comment."""
    return defaults() / ".env.example"


def templates() -> Path:
    """The shipped notice and post-mortem templates."""
    return defaults() / "templates"
