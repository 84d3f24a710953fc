"""Typed, located reading of TOML tables: a wrong value becomes a `Problem`, not an exception."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actions.durations import parse_duration
from actions.toml_positions import KeyPath, line_of

SlackIdKind = tuple[re.Pattern[str], str]  # pattern, and how messages describe it
USER_ID: SlackIdKind = (re.compile(r"[UW][A-Z0-9]{2,}"), "a Slack user ID (U… or W…)")
USER_OR_GROUP_ID: SlackIdKind = (
    re.compile(r"[UWS][A-Z0-9]{2,}"),
    "a Slack user ID (U…, W…) or user-group ID (S…)",
)
_MULTILINE_QUOTES = ("'''", '"""')
CHANNEL_ID: SlackIdKind = (re.compile(r"[CGD][A-Z0-9]{2,}"), "a Slack channel ID (C…, G… or D…)")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a runbook, where it is, and what is expected instead."""

    path: Path
    line: int  # 1-based; 0 when the file itself could not be read
    message: str
    warning: bool = False  # a risk worth a look; the runbook still loads

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {'warning: ' if self.warning else ''}{self.message}"


@dataclass
class Reader:
    """Collects the problems of one runbook file, located through its key lines."""

    path: Path
    lines: dict[KeyPath, int]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    source: tuple[str, ...] = ()  # the file's lines, to locate lines inside a multi-line string

    def report(self, at: KeyPath, where: str, message: str) -> None:
        """Record a problem at the line of `at` (or of its closest enclosing table)."""
        line = line_of(self.lines, at) or 1
        self.problems.append(Problem(self.path, line, f"{where}: {message}" if where else message))

    def report_in_string(
        self, at: KeyPath, offset: int, where: str, message: str, *, warning: bool = False
    ) -> None:
        """Record a problem on line `offset` (1-based) of the string value written at `at`."""
        line = line_of(self.lines, at) or 1
        text = self.source[line - 1] if 0 < line <= len(self.source) else ""
        value = text.split("=", 1)[-1].strip()
        if value[:3] in _MULTILINE_QUOTES:  # TOML drops a newline right after the quotes
            line += offset - (value.rstrip() != value[:3])
        found = Problem(self.path, line, f"{where}: {message}" if where else message, warning)
        (self.warnings if warning else self.problems).append(found)

    def line(self, at: KeyPath) -> int:
        """The line where `at` (or its closest enclosing table) is written."""
        return line_of(self.lines, at)


def kind_of(value: Any) -> str:
    """How a message names the TOML type of `value`."""
    kinds = {bool: "true/false", str: "a string", int: "a number", float: "a number"}
    kinds |= {dict: "a table", list: "a list"}
    return kinds.get(type(value), "a date/time")


@dataclass
class Table:
    """One TOML table being read: its data, its path in the document, how messages name it."""

    reader: Reader
    data: dict[str, Any]
    at: KeyPath
    where: str

    def report(self, key: str | int | None, message: str) -> None:
        """Record a problem at `key` of this table (at its header when `key` is None)."""
        self.reader.report(self.at if key is None else (*self.at, key), self.where, message)

    def known(self, allowed: tuple[str, ...]) -> None:
        """Report every key that is not in `allowed`."""
        for key in self.data:
            if key not in allowed:
                self.report(key, f"unknown key {key!r} (expected one of: {', '.join(allowed)})")

    def text(self, key: str, required: bool = False) -> str | None:
        """The string at `key`, or None (reported when missing but required, or not a string)."""
        value = self.data.get(key)
        if value is None and required:
            self.report(None, f"missing required key {key!r}")
        elif value is not None and not isinstance(value, str):
            self.report(key, f"{key} must be a string, not {kind_of(value)}")
        elif required and not value.strip():
            self.report(key, f"{key} must not be empty")
        else:
            return value
        return None

    def duration(self, key: str, default: float) -> float:
        """Seconds of the duration at `key` (`30s`, `10m`, `2h`), or `default`."""
        text = self.text(key)
        try:
            return default if text is None else parse_duration(text)
        except ValueError as error:
            self.report(key, f"{key}: {error}")
            return default

    def count(self, key: str, default: int) -> int:
        """The whole number >= 1 at `key`, or `default` (reported when it is anything else)."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            shown = repr(value) if number else kind_of(value)
            self.report(key, f"{key} must be a whole number of at least 1, not {shown}")
            return default
        return value

    def flag(self, key: str) -> bool:
        """The boolean at `key` (default false)."""
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            self.report(key, f"{key} must be true or false, not {kind_of(value)}")
        return value is True

    def strings(self, key: str) -> tuple[str, ...]:
        """The list of strings at `key` (default empty)."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.report(key, f"{key} must be a list of strings")
            return ()
        return tuple(value)

    def slack_ids(self, key: str, kind: SlackIdKind) -> tuple[str, ...]:
        """The list of Slack IDs at `key`, each checked against `kind`."""
        values = self.strings(key)
        for index, value in enumerate(values):
            if not kind[0].fullmatch(value):
                message = f"{key}: {value!r} is not {kind[1]}"
                self.reader.report((*self.at, key, index), self.where, message)
        return values

    def table(self, key: str, where: str) -> Table:
        """The sub-table at `key` (empty when absent)."""
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            self.report(key, f"{key} must be a table, not {kind_of(value)}")
            value = {}
        return Table(self.reader, value, (*self.at, key), where)

    def entries(self, key: str, header: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """(index, table) of each `[[header]]` array-of-tables entry at `key`."""
        value = self.data.get(key, [])
        if not isinstance(value, list):
            self.report(key, f"{key} must be written as [[{header}]] tables, not {kind_of(value)}")
            return
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item
            else:
                self.report(key, f"{key} entry {index + 1} must be a [[{header}]] table")
