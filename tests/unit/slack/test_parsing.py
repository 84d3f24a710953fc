"""`/rollback …` text -> Command, or a ParseError that names the problem and the correct form."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.lifecycle import Severity
from bot.slack.parsing import (
    MAX_TEXT,
    USAGE,
    Command,
    ParseError,
    clean_text,
    parse_command,
    parse_incident_id,
)

SCENARIOS = frozenset({"database", "full"})
NOW = datetime(2031, 11, 24, 12, 0, tzinfo=UTC)  # the clock these tests control
NEXT = (NOW + timedelta(days=7)).date().isoformat()  # a next attempt, YYYY-MM-DD
LATER = f"{NOW.year + 1}-02-28"
NOT_A_DAY = f"{NOW.year}-02-30"
TODAY = NOW.date().isoformat()


def parse(text: str) -> Command:
    return parse_command(text, SCENARIOS, now=NOW)


# --- good forms ------------------------------------------------------------------------------

GOOD = [
    ("", Command("help")),
    ("help", Command("help")),
    ("HELP me please", Command("help")),
    ("declare", Command("declare")),
    (
        "declare critical database disk is full",
        Command("declare", severity=Severity.CRITICAL, scenario="database", text="disk is full"),
    ),
    ("declare high", Command("declare", severity=Severity.HIGH)),
    ("DECLARE LOW shouting", Command("declare", severity=Severity.LOW, text="shouting")),
    ("declare medium FULL", Command("declare", severity=Severity.MEDIUM, scenario="full")),
    ("status", Command("status")),
    ("status RB-12", Command("status", incident_id=12)),
    ("status rb-12", Command("status", incident_id=12)),
    ("status 12", Command("status", incident_id=12)),
    ("resolve", Command("resolve")),
    ("resolve RB-3 fixed by restart", Command("resolve", incident_id=3, text="fixed by restart")),
    ("resolve fixed it myself", Command("resolve", text="fixed it myself")),
    ("escalate RB-1 critical", Command("escalate", incident_id=1, severity=Severity.CRITICAL)),
    (
        "escalate 7 HIGH database",
        Command("escalate", incident_id=7, severity=Severity.HIGH, scenario="database"),
    ),
    ("cancel", Command("cancel")),
    ("cancel rb-2", Command("cancel", incident_id=2)),
    ("backup", Command("backup")),
    ("rehearse database", Command("rehearse", scenario="database")),
    ("rehearse Full", Command("rehearse", scenario="full")),
    ("checklist", Command("checklist")),
    ("checklist pre", Command("checklist", phase="pre")),
    ("checklist DURING", Command("checklist", phase="during")),
    ("checklist post", Command("checklist", phase="post")),
    ("contacts", Command("contacts")),
    ("notice RB-1", Command("notice", incident_id=1)),
    (f"notice RB-1 next {NEXT}", Command("notice", incident_id=1, next_attempt=NEXT)),
    (f"notice 4 NEXT {LATER}", Command("notice", incident_id=4, next_attempt=LATER)),
    ("postmortem RB-9", Command("postmortem", incident_id=9)),
    ("postmortem RB-9 done", Command("postmortem", incident_id=9, text="done")),
    ("history", Command("history")),
    ("  status \t RB-5 \n", Command("status", incident_id=5)),
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[t or "<empty>" for t, _ in GOOD])
def test_good_forms_parse_to_the_expected_command(text, expected):
    assert parse(text) == expected


# --- malformed forms -------------------------------------------------------------------------

MALFORMED = [
    ("declare urgent", "declare", "`urgent` is not a severity"),
    ("declare sev1 database", "declare", "`sev1` is not a severity"),
    ("declare low detected=yesterday", "declare", "detected= takes"),
    ("declare low detected=", "declare", "detected= takes"),
    ("declare low detected=0m", "declare", "detected= takes"),
    ("status RB-abc", "status", "`RB-abc` is not an incident id"),
    ("status RB-", "status", "is not an incident id"),
    ("status 12 now", "status", "Unexpected `now`"),
    ("status soon", "status", "Unexpected `soon`"),
    ("resolve RB-x fixed", "resolve", "`RB-x` is not an incident id"),
    ("escalate", "escalate", "Say which incident"),
    ("escalate critical", "escalate", "Say which incident"),
    ("escalate RB-1", "escalate", "A severity is needed"),
    ("escalate RB-1 extreme", "escalate", "`extreme` is not a severity"),
    ("escalate RB-1 critical nosuch", "escalate", "There is no scenario `nosuch`"),
    ("escalate RB-1 critical database now", "escalate", "Unexpected `now`"),
    ("cancel RB-2 please", "cancel", "Unexpected `please`"),
    ("backup now", "backup", "Unexpected `now`"),
    ("rehearse", "rehearse", "Say which scenario"),
    ("rehearse nosuch", "rehearse", "known: database, full"),
    ("rehearse ../../etc/passwd", "rehearse", "There is no scenario"),
    ("rehearse database twice", "rehearse", "Unexpected `twice`"),
    ("checklist sometimes", "checklist", "`sometimes` is not pre, during or post"),
    ("checklist pre post", "checklist", "Unexpected `post`"),
    ("contacts all", "contacts", "Unexpected `all`"),
    ("notice", "notice", "Say which incident"),
    ("notice RB-1 next", "notice", "next YYYY-MM-DD"),
    (f"notice RB-1 later {NEXT}", "notice", "next YYYY-MM-DD"),
    ("notice RB-1 next 01/12/2026", "notice", "next YYYY-MM-DD"),
    (f"notice RB-1 next {NEXT} 09:00", "notice", "next YYYY-MM-DD"),
    (f"notice RB-1 next {NOW.year}-13-45", "notice", f"`{NOW.year}-13-45` is not a date"),
    (f"notice RB-1 next {NOT_A_DAY}", "notice", f"`{NOT_A_DAY}` is not a date"),
    ("postmortem", "postmortem", "Say which incident"),
    ("postmortem RB-1 now", "postmortem", "Unexpected `now`"),
    ("history all", "history", "Unexpected `all`"),
]


@pytest.mark.parametrize(("text", "verb", "problem"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_forms_name_the_problem_and_the_usage(text, verb, problem):
    with pytest.raises(ParseError) as caught:
        parse(text)
    message = str(caught.value)
    assert problem in message
    assert f"Usage: `{USAGE[verb]}`" in message


def test_unknown_verb_is_named_and_points_at_help():
    with pytest.raises(ParseError, match=r"I don't know `frobnicate`\. Try `/rollback help`"):
        parse("frobnicate now")


def test_unknown_verb_quote_cannot_break_out_of_its_code_span():
    with pytest.raises(ParseError) as caught:
        parse("do`<!channel>`")
    assert str(caught.value).count("`") == 4  # only our own two code spans


def test_usage_is_known_for_every_verb_the_parser_accepts():
    for verb in USAGE:
        try:
            parse(verb)
        except ParseError as error:  # verbs that need arguments still speak their usage
            assert USAGE[verb] in str(error)


# --- incident ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [("RB-12", 12), ("rb-12", 12), ("12", 12), ("Rb-007", 7), ("RB-999999999", 999999999)],
)
def test_incident_ids_are_read_with_or_without_the_prefix(token, expected):
    assert parse_incident_id(token) == expected


@pytest.mark.parametrize("token", ["RB-abc", "RB-", "RB12", "-12", "12a", "RB-1234567890", ""])
def test_non_ids_are_not_incident_ids(token):
    assert parse_incident_id(token) is None


# --- scenarios and summaries -----------------------------------------------------------------


def test_scenario_is_recognised_only_when_it_is_a_runbook_key():
    assert parse("declare critical databases are slow") == Command(
        "declare", severity=Severity.CRITICAL, text="databases are slow"
    )


def test_scenario_word_later_in_the_summary_stays_part_of_the_summary():
    command = parse("declare high checkout slow database full")
    assert command.scenario is None
    assert command.text == "checkout slow database full"


def test_scenario_is_matched_against_the_given_keys_only():
    command = parse_command("declare critical payments down", {"payments"}, now=NOW)
    assert command.scenario == "payments"
    assert parse("declare critical payments down").scenario is None


# --- detection time --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ago"),
    [("15m", timedelta(minutes=15)), ("2h", timedelta(hours=2)), ("1h30m", timedelta(minutes=90))],
)
def test_detected_as_a_duration_means_that_long_ago(value, ago):
    command = parse(f"declare high database detected={value} checkout errors")
    assert command.detected_at == NOW - ago
    assert command.text == "checkout errors"
    assert command.scenario == "database"


def test_detected_as_iso_time_with_offset_is_stored_in_utc():
    command = parse(f"declare low DETECTED={TODAY}T03:05+01:00 slow")
    assert command.detected_at == NOW.replace(hour=2, minute=5)
    assert command.detected_at.utcoffset() == timedelta(0)
    assert command.text == "slow"


def test_detected_allows_a_minute_of_clock_skew():
    soon = (NOW + timedelta(seconds=30)).isoformat()
    assert parse(f"declare low detected={soon}").detected_at == NOW + timedelta(seconds=30)


@pytest.mark.parametrize("moment", [NOW + timedelta(minutes=5), NOW + timedelta(days=400)])
def test_detection_time_in_the_future_is_refused(moment):
    with pytest.raises(ParseError, match=r"in the future\. Usage"):
        parse(f"declare low detected={moment.isoformat()}")


@pytest.mark.parametrize("value", [f"{TODAY}T03:05", TODAY, f"{TODAY} 03:05"])
def test_detection_time_without_an_offset_is_refused(value):
    with pytest.raises(ParseError, match=r"ISO time with its offset\. Usage"):
        parse(f"declare low detected={value}")


def test_detection_time_at_the_edge_of_the_calendar_is_refused_not_crashed():
    with pytest.raises(ParseError):
        parse("declare low detected=0001-01-01T00:00+14:00 x")


# --- cleaning and length ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x00b\x07c\x1b[31md", "abc[31md"),  # C0 controls, incl. ESC
        ("evil\u202eexe.txt", "evilexe.txt"),  # right-to-left override
        ("a\u2066b\u2069c\u200fd\u200ee", "abcde"),  # bidi isolates and marks
        ("zero\u200bwidth\u200c\u200dj\ufeffoin", "zerowidthjoin"),  # zero-width characters
        ("a\x85b\x9bc", "abc"),  # C1 controls
        ("line one\nline two\r\n\ttabbed", "line one line two tabbed"),
        ("  lots   of\u00a0 space  ", "lots of space"),
        ("café ✅ 日本", "café ✅ 日本"),
    ],
)
def test_clean_text_removes_control_bidi_and_zero_width_characters(raw, clean):
    assert clean_text(raw) == clean


def test_hidden_characters_are_removed_from_the_summary():
    command = parse("declare low \x00\x07\x1b[31mred\u202eRTL\u200f marks")
    assert command.text == "[31mredRTL marks"


def test_hidden_characters_cannot_hide_the_verb():
    assert parse("\u202ede\u200bclare low x") == Command("declare", severity=Severity.LOW, text="x")


def test_text_up_to_the_limit_is_accepted():
    prefix = "declare low "
    command = parse(prefix + "A" * (MAX_TEXT - len(prefix)))
    assert len(command.text) == MAX_TEXT - len(prefix)


@pytest.mark.parametrize("text", ["declare low " + "A" * MAX_TEXT, "resolve " + "word " * 2000])
def test_over_long_text_is_refused_with_the_limit(text):
    with pytest.raises(ParseError, match=f"the limit is {MAX_TEXT}"):
        parse(text)


def test_hidden_characters_do_not_count_towards_the_limit():
    assert parse("declare low " + "\u200b" * 5000 + "x").text == "x"


# --- property: never any other exception -----------------------------------------------------

# Words that lead the parser into every branch. Detection times stay within years 1900–9000:
# the calendar's edge is covered by the test above.
TOKENS = st.one_of(
    st.sampled_from(
        sorted(USAGE)
        + [s.value for s in Severity]
        + sorted(SCENARIOS)
        + [
            "RB-1",
            "rb-22",
            "12",
            "RB-abc",
            "next",
            NEXT,
            NOT_A_DAY,
            "pre",
            "during",
            "post",
            "detected=15m",
            "detected=0s",
            "detected=",
        ]
    ),
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(9000, 1, 1),
        timezones=st.sampled_from([UTC, None]),
    ).map(lambda d: f"detected={d.isoformat()}"),
    st.text(max_size=12),
)
TEXTS = st.one_of(st.text(max_size=300), st.lists(TOKENS, max_size=8).map(" ".join))


def _hidden(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf")


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_any_text_parses_or_raises_parse_error_and_keeps_no_hidden_characters(text):
    try:
        command = parse(text)
    except ParseError as error:
        assert str(error)
        return
    assert command.verb in USAGE
    assert not any(_hidden(ch) for ch in command.text)
    assert len(command.text) <= MAX_TEXT


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_clean_text_output_has_no_hidden_characters_or_doubled_spaces(text):
    cleaned = clean_text(text)
    assert not any(_hidden(ch) for ch in cleaned)
    assert "  " not in cleaned
    assert cleaned == cleaned.strip()
