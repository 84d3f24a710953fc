"""`/rollback …` text -> one command object, or a ParseError that says the correct form. Pure."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from actions.durations import parse_duration
from bot.lifecycle import Severity

MAX_TEXT = 2000  # characters of free text (summary, note) we accept
_ID = re.compile(r"(?:RB-)?([0-9]{1,9})", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

USAGE = {
    "declare": "/rollback declare <critical|high|medium|low> [SCENARIO] [detected=15m] [summary…]",
    "status": "/rollback status [RB-ID]",
    "resolve": "/rollback resolve [RB-ID] [note…]",
    "escalate": "/rollback escalate RB-ID <critical|high|medium> [SCENARIO]",
    "cancel": "/rollback cancel [RB-ID]",
    "backup": "/rollback backup",
    "backups": "/rollback backups",
    "rehearse": "/rollback rehearse SCENARIO",
    "checklist": "/rollback checklist [pre|during|post]",
    "contacts": "/rollback contacts",
    "notice": "/rollback notice RB-ID [next YYYY-MM-DD]",
    "postmortem": "/rollback postmortem RB-ID [done]",
    "history": "/rollback history",
    "help": "/rollback help",
}


class ParseError(Exception):
    """Input we can't act on; str() says what was wrong and the correct form."""


@dataclass(frozen=True)
class Command:
    """A parsed `/rollback` command: its verb and arguments."""

    verb: str
    incident_id: int | None = None
    severity: Severity | None = None
    scenario: str | None = None
    text: str = ""  # summary or note, cleaned of control characters
    detected_at: datetime | None = None
    phase: str | None = None
    next_attempt: str | None = None


def clean_text(text: str) -> str:
    """Drop control and format characters (incl. bidi overrides); collapse whitespace."""
    kept = "".join(
        " " if ch in "\t\n\r" else ch
        for ch in text
        if ch in "\t\n\r" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    return " ".join(kept.split())


def parse_incident_id(token: str) -> int | None:
    """12 from `RB-12` or `12`; None when the token is not an incident id."""
    match = _ID.fullmatch(token)
    return int(match.group(1)) if match else None


def parse_command(text: str, scenarios: Collection[str], *, now: datetime | None = None) -> Command:
    """Parse the text typed after `/rollback`; raises ParseError."""
    cleaned = clean_text(text)
    if len(cleaned) > MAX_TEXT:
        raise ParseError(f"That is {len(cleaned)} characters; the limit is {MAX_TEXT}.")
    words = cleaned.split(" ") if cleaned else []
    if not words:
        return Command("help")
    verb, args = words[0].lower(), words[1:]
    parser = _PARSERS.get(verb)
    if parser is None:
        raise ParseError(f"I don't know `{_quote(verb)}`. Try `/rollback help`.")
    return parser(args, scenarios, now or datetime.now(UTC))


def _quote(word: str) -> str:
    return word[:40].replace("`", "'")


def _fail(verb: str, problem: str) -> ParseError:
    return ParseError(f"{problem} Usage: `{USAGE[verb]}`")


def _severity(verb: str, token: str | None) -> Severity:
    try:
        return Severity((token or "").lower())
    except ValueError:
        shown = f"`{_quote(token)}` is not a severity." if token else "A severity is needed."
        raise _fail(verb, shown + " Use critical, high, medium or low.") from None


def _optional_id(verb: str, args: list[str]) -> tuple[int | None, list[str]]:
    if args and (found := parse_incident_id(args[0])) is not None:
        return found, args[1:]
    if args and args[0].upper().startswith("RB-"):
        raise _fail(verb, f"`{_quote(args[0])}` is not an incident id like RB-12.")
    return None, args


def _required_id(verb: str, args: list[str]) -> tuple[int, list[str]]:
    found, rest = _optional_id(verb, args)
    if found is None:
        raise _fail(verb, "Say which incident.")
    return found, rest


def _no_more(verb: str, args: list[str]) -> None:
    if args:
        raise _fail(verb, f"Unexpected `{_quote(' '.join(args))}`.")


def _declare(args, scenarios, now) -> Command:
    if not args:
        return Command("declare")  # no arguments: the modal
    severity = _severity("declare", args[0])
    rest = args[1:]
    scenario = None
    if rest and rest[0].lower() in scenarios:
        scenario, rest = rest[0].lower(), rest[1:]
    detected_at = None
    if rest and rest[0].lower().startswith("detected="):
        detected_at, rest = _detected("declare", rest[0].split("=", 1)[1], now), rest[1:]
    return Command(
        "declare",
        severity=severity,
        scenario=scenario,
        text=" ".join(rest),
        detected_at=detected_at,
    )


def _detected(verb: str, value: str, now: datetime) -> datetime:
    """`15m` (that long ago) or an ISO time with its offset, e.g. 2026-11-24T03:05+01:00."""
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _fail(verb, "detected= takes a time ago like 15m, or an ISO time with its offset.")
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or moment.year < 2000:
        raise _fail(verb, "That detection time is not plausible.")
    if moment > now + timedelta(minutes=1):
        raise _fail(verb, "The detection time is in the future.")
    return moment


def _escalate(args, scenarios, now) -> Command:
    incident_id, rest = _required_id("escalate", args)
    severity = _severity("escalate", rest[0] if rest else None)
    scenario = None
    if len(rest) > 1:
        if rest[1].lower() not in scenarios:
            raise _fail("escalate", f"There is no scenario `{_quote(rest[1])}`.")
        scenario = rest[1].lower()
    _no_more("escalate", rest[2:])
    return Command("escalate", incident_id=incident_id, severity=severity, scenario=scenario)


def _with_optional_id(verb: str, takes_text: bool):
    def parse(args, scenarios, now) -> Command:
        incident_id, rest = _optional_id(verb, args)
        if not takes_text:
            _no_more(verb, rest)
        return Command(verb, incident_id=incident_id, text=" ".join(rest))

    return parse


def _bare(verb: str):
    def parse(args, scenarios, now) -> Command:
        _no_more(verb, args)
        return Command(verb)

    return parse


def _rehearse(args, scenarios, now) -> Command:
    if not args:
        raise _fail("rehearse", "Say which scenario.")
    if args[0].lower() not in scenarios:
        known = ", ".join(sorted(scenarios)) or "none"
        raise _fail("rehearse", f"There is no scenario `{_quote(args[0])}` (known: {known}).")
    _no_more("rehearse", args[1:])
    return Command("rehearse", scenario=args[0].lower())


def _checklist(args, scenarios, now) -> Command:
    phase = args[0].lower() if args else None
    if phase is not None and phase not in ("pre", "during", "post"):
        raise _fail("checklist", f"`{_quote(args[0])}` is not pre, during or post.")
    _no_more("checklist", args[1:])
    return Command("checklist", phase=phase)


def _notice(args, scenarios, now) -> Command:
    incident_id, rest = _required_id("notice", args)
    next_attempt = None
    if rest:
        if rest[0].lower() != "next" or len(rest) != 2 or not _DATE.match(rest[1]):
            raise _fail("notice", "Give the next attempt as `next YYYY-MM-DD`.")
        try:
            datetime.strptime(rest[1], "%Y-%m-%d")
        except ValueError:
            raise _fail("notice", f"`{_quote(rest[1])}` is not a date.") from None
        next_attempt = rest[1]
    return Command("notice", incident_id=incident_id, next_attempt=next_attempt)


def _postmortem(args, scenarios, now) -> Command:
    incident_id, rest = _required_id("postmortem", args)
    done = bool(rest) and rest[0].lower() == "done"
    _no_more("postmortem", rest[1:] if done else rest)
    return Command("postmortem", incident_id=incident_id, text="done" if done else "")


_PARSERS = {
    "declare": _declare,
    "status": _with_optional_id("status", takes_text=False),
    "resolve": _with_optional_id("resolve", takes_text=True),
    "escalate": _escalate,
    "cancel": _with_optional_id("cancel", takes_text=False),
    "backup": _bare("backup"),
    "backups": _bare("backups"),
    "rehearse": _rehearse,
    "checklist": _checklist,
    "contacts": _bare("contacts"),
    "notice": _notice,
    "postmortem": _postmortem,
    "history": _bare("history"),
    "help": lambda args, scenarios, now: Command("help"),
}
