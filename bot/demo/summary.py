"""The end of the demo: where the post-mortem went, and a summary a person can check."""

from __future__ import annotations

import shutil

from bot.demo.script import Outcome
from bot.demo.stage import NOTICE_CHANNEL, Stage
from bot.demo.transcript import Transcript


def find_postmortems(stage: Stage) -> list[str]:
    """Where the post-mortem went: files (copied next to the transcript), canvases, uploads."""
    found = []
    for made_by in ("bot", "sandbox"):
        for path in sorted((stage.root / made_by).rglob("*")):
            where = "/".join(path.relative_to(stage.root).parts).lower().replace("-", "")
            if path.is_file() and "postmortem" in where and ".git/" not in where:
                kept = stage.root / "postmortems" / path.name
                kept.parent.mkdir(exist_ok=True)
                shutil.copy2(path, kept)
                found.append(f"the file {kept}")
    for canvas in stage.fake.canvases.values():
        found.append(f"a canvas in Slack, “{canvas.get('title', '')}”")
    for upload in stage.fake.files.values():
        if upload.completed:
            found.append(f"a file in Slack, “{upload.title or upload.filename}”")
    return found


def summarise(
    transcript: Transcript,
    outcome: Outcome,
    stage: Stage,
    *,
    scenario: str,
    keep: bool,
    seconds: float,
) -> None:
    """The last part of the transcript: outcome, checks, row counts, what is left, how to delete."""
    transcript.narrate("Summary")
    passed = sum(1 for _, ok in outcome.checks if ok)
    marks = "  ".join(f"{'✓' if ok else '✗'} {name}" for name, ok in outcome.checks)
    if outcome.stopped:
        transcript.note(
            f"Rollback `{scenario}`: {outcome.rollback_state}: stopped at a failed "
            "step; in Slack an approver would now press Retry, Skip or Abort."
        )
    else:
        transcript.note(
            f"Rollback `{scenario}`: {outcome.rollback_state}; verification: "
            f"{passed}/{len(outcome.checks)} checks passed\n{marks}"
        )
    refused = "refused" if outcome.refused else "NOT refused"
    transcript.note(f"The declarer's own approval: {refused}; a second person approved.")
    missing = "the run has not ended" if outcome.stopped else "this version of the bot"
    notice = f"posted in #{transcript.names.get(NOTICE_CHANNEL, NOTICE_CHANNEL)}"
    transcript.note(
        "Maintenance notice: " + (notice if outcome.notice_posted else f"not posted ({missing})")
    )
    where = "\n".join(outcome.postmortem) or f"none ({missing})"
    transcript.note(f"Post-mortem:\n{where}")
    if outcome.discarded:
        transcript.note(f"What the rollback discarded: {outcome.discarded}")
    transcript.note(f"Rows per table of {stage.shop_db}:\n" + count_table(outcome.counts))
    database, files = (
        ("yes" if same else "NO") for same in (outcome.database_restored, outcome.files_restored)
    )
    transcript.note(f"Identical to before the failure: database {database}, project files {files}")
    transcript.note(f"The demo took {seconds:.0f}s.")
    if keep:
        transcript.note(
            f"The sandbox is kept in {stage.root}, with its databases {stage.shop_db}"
            f" and {stage.bot_db}.\nDelete it all: rollback-bot demo --clean"
        )
    else:
        transcript.note(
            f"The sandbox and its databases are deleted; the transcript, post-mortem "
            f"and bot log stay in {stage.root}.\nDelete them: rollback-bot demo "
            "--clean"
        )


def count_table(counts: dict[str, dict[str, int]]) -> str:
    """Rows per table at each moment, as an aligned text table."""
    moments = list(counts)
    tables = sorted({table for found in counts.values() for table in found})
    rows = [["table", *moments]] + [
        [table, *(str(counts[m].get(table, "—")) for m in moments)] for table in tables
    ]
    width = max(len(row[0]) for row in rows)
    return "\n".join(row[0].ljust(width) + "".join(c.rjust(9) for c in row[1:]) for row in rows)
