"""`rollback-bot init [DIR]`: a starter runbook.toml and .env.example, and what to edit next."""

from __future__ import annotations

import re
from pathlib import Path

from bot import packaged


class StarterError(Exception):
    """Nothing was written; str() is one line saying why and what to do."""


def init(directory: Path, *, force: bool = False) -> str:
    """Write the shipped runbook and .env.example into `directory`; the next steps to print.

    Refuses (StarterError, nothing written) when either file exists, unless `force`.
    """
    sources = {"runbook.toml": packaged.default_runbook(), ".env.example": packaged.env_example()}
    if directory.exists() and not directory.is_dir():
        raise StarterError(f"{directory} is not a directory; nothing was written.")
    targets = {name: directory / name for name in sources}
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing and not force:
        one = len(existing) == 1
        raise StarterError(
            f"{' and '.join(existing)} already exist{'s' if one else ''}; nothing was written "
            f"(edit {'it' if one else 'them'}, or run `rollback-bot init --force` to overwrite)."
        )
    try:
        texts = {name: source.read_text(encoding="utf-8") for name, source in sources.items()}
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            with open(targets[name], "w" if force else "x", encoding="utf-8") as out:
                out.write(text)
    except OSError as error:
        raise StarterError(f"could not write into {directory}: {error}") from None
    return next_steps(directory, texts["runbook.toml"])


def to_edit(runbook_text: str) -> list[tuple[int, str]]:
    """The lines an operator must look at: [project] workdir, each REPLACE marker, [vars]."""
    found: list[tuple[int, str]] = []
    table = ""
    for number, line in enumerate(runbook_text.splitlines(), start=1):
        header = re.match(r"\s*\[([A-Za-z0-9_.]+)\]\s*(#.*)?$", line)
        if header:
            table = header[1]
            if table == "vars":
                found.append((number, "[vars]: the names, URLs and paths your steps use"))
        elif table == "project" and re.match(r"\s*workdir\s*=", line):
            found.append((number, f"{line.split('#')[0].strip()}: where your project lives"))
        elif "REPLACE" in line:
            found.append((number, line.split("#", 1)[-1].strip()))
    return found


def next_steps(directory: Path, runbook_text: str) -> str:
    """What `init` prints after writing the files."""
    where = "" if directory.resolve() == Path.cwd().resolve() else f"cd {directory} && "
    lines = [
        f"Wrote {directory / 'runbook.toml'} and {directory / '.env.example'}.",
        "Next:",
        "  1. Edit runbook.toml for your system, at least:",
        *(f"       runbook.toml:{number}: {what}" for number, what in to_edit(runbook_text)),
        f"  2. Check it: {where}rollback-bot runbook check   (and rollback-bot rehearse SCENARIO)",
        "  3. Copy .env.example to .env and fill in SLACK_BOT_TOKEN and SLACK_APP_TOKEN",
        "     (or SLACK_SIGNING_SECRET for HTTP mode).",
        "  4. Run rollback-bot serve from that directory (or set ROLLBACK_RUNBOOK to the file).",
    ]
    return "\n".join(lines)
