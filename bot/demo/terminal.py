"""The demo's conversation in a terminal: styled with rich when stdout is a TTY, plain text
otherwise. In a terminal, a message the bot keeps editing (the run's progress) updates in
place at the bottom of the screen; it is printed for good when another message changes."""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from dataclasses import replace
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from bot.demo.render import message_lines, to_plain, to_rich
from bot.demo.transcript import Entry, Transcript

INDENT = "    "
RULE_WIDTH = 78


def heading(entry: Entry, transcript: Transcript) -> str:
    """The line above a message: who, where, and what kind (edited, only visible to …)."""
    where = transcript.where(entry)
    if entry.kind == "action":
        return f"{entry.author} in {where}:"
    if entry.kind == "ephemeral":
        return f"{entry.author} in {where} (only visible to {entry.to}):"
    if entry.kind == "edit":
        return f"{entry.author} in {where} (edited):"
    if entry.kind == "deleted":
        return f"{entry.author} deleted a message in {where}"
    return f"{entry.author} in {where}:"


def plain(entry: Entry, transcript: Transcript) -> str:
    """One entry as plain text, ending without a newline."""
    if entry.kind == "narration":
        title = f"━━ {entry.text} "
        text = "\n" + title + "━" * max(4, RULE_WIDTH - len(title))
        return text + (f"\n{entry.detail}" if entry.detail else "")
    if entry.kind == "note":
        return _note(entry.text)
    if entry.kind == "action":
        return f"{heading(entry, transcript)}  {entry.text}"
    if entry.kind == "deleted":
        return heading(entry, transcript)
    body = to_plain(message_lines(entry.as_message(), transcript.names), INDENT)
    return f"{heading(entry, transcript)}\n{body}"


def styled(entry: Entry, transcript: Transcript) -> Text:
    """One entry as rich Text."""
    if entry.kind == "narration":
        text = Text("\n" + f"━━ {entry.text} ".ljust(RULE_WIDTH, "━"), style="bold yellow")
        if entry.detail:
            text.append("\n" + entry.detail, style="yellow")
        return text
    if entry.kind == "note":
        return Text(_note(entry.text), style="bright_black")
    head = Text(heading(entry, transcript), style=_HEADING_STYLE.get(entry.kind, "bold"))
    if entry.kind == "action":
        return head.append("  " + entry.text, style="bold white")
    if entry.kind == "deleted":
        return head
    body = to_rich(message_lines(entry.as_message(), transcript.names), INDENT)
    return head.append("\n").append_text(body)


def _note(text: str) -> str:
    first, *rest = text.split("\n")
    return "\n".join([f"  · {first}", *(f"      {line}" for line in rest)])


_HEADING_STYLE = {"action": "bold green", "ephemeral": "bold bright_black", "edit": "bold cyan"}


class TerminalView:
    """Shows each entry of a transcript as it is added; `close()` when the demo ends.

    In a terminal the latest message stays live: while nothing newer arrives, the bot's edits
    to it (a step going from running to done) change it in place. `delay` paces the display
    so a person can follow; `drain()` waits until everything added has been shown.
    """

    def __init__(
        self,
        transcript: Transcript,
        *,
        stream: IO[str] | None = None,
        styled_output: bool | None = None,
        delay: float | None = None,
    ) -> None:
        self.transcript = transcript
        self.stream = stream or sys.stdout
        self.styled = self.stream.isatty() if styled_output is None else styled_output
        self.delay = (0.2 if self.styled else 0.0) if delay is None else delay
        self.console = Console(
            file=self.stream,
            highlight=False,
            soft_wrap=not self.styled,
            force_terminal=self.styled or None,
        )
        self.log: IO[str] | None = None
        self.live: Live | None = None
        self.live_entry: Entry | None = None
        self.last_shown: Entry | None = None  # plain output: the entry printed last
        self.log_last: Entry | None = None
        self.pending: deque[Entry] = deque()
        transcript.listeners.append(self._added)

    def attach_log(self, log: IO[str]) -> None:
        """Also write every entry, as plain text, to `log` (the ones so far first)."""
        self.log, self.log_last = log, None
        for entry in self.transcript.entries:
            self._log(entry)

    def _log(self, entry: Entry) -> None:
        if self.log is not None:
            self.log.write(plain_after(entry, self.log_last, self.transcript) + "\n")
            self.log.flush()
            self.log_last = entry

    def _added(self, entry: Entry) -> None:
        self._log(entry)
        if self.delay:
            self.pending.append(entry)
        else:
            self.show(entry)

    async def pace(self) -> None:
        """Show pending entries one by one, `delay` apart (run as a task while the demo plays)."""
        while True:
            if self.pending:
                self.show(self.pending.popleft())
                await asyncio.sleep(self.delay)
            else:
                await asyncio.sleep(0.02)

    async def drain(self) -> None:
        """Return once every entry added so far has been shown."""
        while self.pending:
            await asyncio.sleep(0.02)

    def show(self, entry: Entry) -> None:
        """Print one entry, or update the live message in place when the entry edits it."""
        if not self.styled:
            self.stream.write(plain_after(entry, self.last_shown, self.transcript) + "\n")
            self.stream.flush()
            self.last_shown = entry
            return
        if _edits(entry, self.live_entry):
            entry = replace(entry, kind=self.live_entry.kind)  # updated in place, heading kept
        else:
            self._commit()
        self.live_entry = entry
        if self.live is None:
            self.live = Live(console=self.console, auto_refresh=False, transient=True)
            self.live.start()
        self.live.update(styled(entry, self.transcript), refresh=True)

    def _commit(self) -> None:
        """Print the live entry, in its latest state, for good."""
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.live_entry is not None:
            self.console.print(styled(self.live_entry, self.transcript))
            self.live_entry = None

    def close(self) -> None:
        """Show what is still pending, leave the last entry on screen, close the log."""
        while self.pending:
            self.show(self.pending.popleft())
        self._commit()
        if self.log is not None:
            self.log.close()
            self.log = None


def _edits(entry: Entry, shown: Entry | None) -> bool:
    """True when `entry` is an edit of the message `shown` (the one on screen last)."""
    return (
        entry.kind == "edit"
        and shown is not None
        and shown.kind in ("message", "edit")
        and (shown.channel, shown.ts) == (entry.channel, entry.ts)
    )


def plain_after(entry: Entry, previous: Entry | None, transcript: Transcript) -> str:
    """`plain(entry)`, or only the new body when it edits the message printed just before."""
    text = plain(entry, transcript)
    if _edits(entry, previous):
        return f"{INDENT}↻ edited in place:\n" + text.split("\n", 1)[1]
    return text
