"""The notice and post-mortem templates: honest claims, and hostile user text made inert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.comms.render import Moment, Text, Who, md_escape, render, sections, to_mrkdwn

T0 = datetime(2031, 11, 24, 3, 0, tzinfo=UTC)  # the clock these tests control
NEXT_ATTEMPT = (T0 + timedelta(days=7)).date().isoformat()
HOSTILE = "<!channel> @here <@U999> [click](http://evil.example) {{ 7*7 }} **x** www.evil.com"


def at(seconds: int) -> Moment:
    return Moment(T0 + timedelta(seconds=seconds))


def utc(seconds: int) -> str:
    """How the post-mortem writes T0 + seconds."""
    return f"{T0 + timedelta(seconds=seconds):%Y-%m-%d %H:%M:%S} UTC"


def notice(**changes) -> dict:
    context = {
        "project": Text("WMS"),
        "incident": "RB-3",
        "severity": "CRITICAL",
        "scenario": Text("database"),
        "scenario_title": Text("Database migration failure"),
        "reason": Text(HOSTILE),
        "completed": True,
        "run_state": "succeeded",
        "verified": True,
        "checks_ran": True,
        "failed_checks": [],
        "ended_at": at(90),
        "next_attempt": NEXT_ATTEMPT,
        "on_call": Who("UONCALL01"),
        "data": {"no_loss": True, "compared": True, "lost_rows": 0, "lost": [], "kept": Text("")},
    }
    return context | changes


def postmortem(**changes) -> dict:
    context = {
        "date": T0.date().isoformat(),
        "incident": "RB-3",
        "severity": "CRITICAL",
        "scenario": Text("database"),
        "scenario_title": Text("Database migration failure"),
        "trigger": Text("Migration fails"),
        "summary": Text(HOSTILE),
        "declared_by": Who("UDECLARE1"),
        "declared_at": at(0),
        "detected_at": at(-300),
        "detection_delay": "5m",
        "decided_at": at(1),
        "requested_by": Who("UDECLARE1"),
        "decision_reason": "declared CRITICAL",
        "approver": Who("UAPPROVE1"),
        "approved_at": at(60),
        "resolved_at": at(600),
        "resolved_by": Who("UDECLARE1"),
        "resolution_note": Text(HOSTILE),
        "on_call": Who("UONCALL01"),
        "timeline": [{"at": at(0), "kind": "declare", "actor": Who("UDECLARE1")}],
        "run": {
            "state": "succeeded",
            "started_at": at(61),
            "ended_at": at(90),
            "verified": True,
            "checks_ran": True,
        },
        "time_to_restore": "1m 30s",
        "steps": [
            {
                "name": Text("Restore [db](http://x)"),
                "status": "succeeded",
                "attempt": 1,
                "started_at": at(61),
                "ended_at": at(80),
                "duration": "19s",
                "exit_code": 0,
                "message": Text(HOSTILE),
            }
        ],
        "checks": [{"name": Text("App"), "kind": "run", "passed": True, "detail": Text(HOSTILE)}],
        "notices": [Text("#CNOTICE01")],
        "next_attempt": None,
        "data": {"present": False, "compared": False},
    }
    return context | changes


def assert_inert(text: str, target: str = "markdown") -> None:
    assert "<!channel>" not in text and "<@U999>" not in text
    assert "@here" not in text  # a zero-width space breaks the broadcast
    assert "49" not in text  # user text is never evaluated as a template
    if target == "slack":  # no <url|text> markup; sections are verbatim (no auto-links)
        assert "<http" not in text
    else:
        assert "](http" not in text and "http://evil" not in text


@pytest.mark.parametrize("target", ["slack", "markdown", "canvas"])
def test_verified_notice_claims_restoration_and_keeps_user_text_inert(target):
    text = render("maintenance_notice.md.j2", notice(), target=target)
    assert "No data has been lost" in text
    assert "Services restored:" in text and "Rollback completed:" in text
    assert f"Next attempt scheduled: {NEXT_ATTEMPT}" in text
    assert "{{ 7*7 }}" in text.replace("\\", "")  # shown as typed
    assert_inert(text, target)


def test_unverified_notice_makes_no_claim_and_names_the_failed_checks():
    context = notice(verified=False, failed_checks=[Text("App responsive")], next_attempt=None)
    text = render("maintenance_notice.md.j2", context, target="slack")
    assert "No data has been lost" not in text and "Services restored" not in text
    assert "Not yet verified" in text and "App responsive" in text
    assert "Next attempt scheduled: not yet scheduled" in text


def test_notice_without_checks_says_verification_did_not_run():
    context = notice(verified=False, checks_ran=False, completed=False, run_state="aborted")
    text = render("maintenance_notice.md.j2", context, target="markdown")
    assert "did not complete (aborted)" in text and "checks did not run" in text
    assert "No data has been lost" not in text and "Rollback completed" not in text


def test_notice_for_slack_is_mrkdwn_with_mentions_and_date_tokens():
    text = render("maintenance_notice.md.j2", notice(), target="slack")
    assert text.startswith("*System Maintenance Notice*")
    assert "<@UONCALL01>" in text and f"<!date^{int(T0.timestamp()) + 90}^" in text
    assert "**x**" in text and "**What" not in text  # only user text keeps its asterisks
    assert all(block["text"]["verbatim"] for block in sections(text))


def test_postmortem_fills_the_seed_sections_from_the_context():
    text = render("postmortem.md.j2", postmortem(), target="markdown")
    for heading in ("## Incident Summary", "## Root Cause", "## Impact", "## Resolution Steps"):
        assert heading in text
    assert "## Preventive Measures" in text and "## Action Items" in text
    assert f"**Start Time**: {utc(0)}" in text
    assert f"**Detection Time**: {utc(-300)} (declared 5m after detection)" in text
    assert f"**Rollback Approved**: {utc(60)} by @UAPPROVE1" in text
    assert f"**Resolution Time**: {utc(600)}" in text
    assert "On-call**: @UONCALL01" in text
    assert_inert(text)


def test_postmortem_canvas_mentions_people_the_canvas_way():
    text = render("postmortem.md.j2", postmortem(), target="canvas")
    assert "![](@UAPPROVE1)" in text
    assert_inert(text)


def test_md_escape_neutralises_markdown_and_slack_syntax():
    escaped = md_escape("# [a](http://b) `c` *d* <!here> www.e.com\n- [x] f")
    assert escaped.startswith("\\# \\[a\\]\\(http:\\/\\/b\\)")
    assert "&lt;!here&gt;" not in escaped  # the ! is escaped too
    assert "\n" not in escaped and "www\\." in escaped


def test_to_mrkdwn_and_sections():
    converted = to_mrkdwn("## Head\n**bold** - x\n- item\n- [ ] box")
    assert converted == "*Head*\n*bold* - x\n• item\n☐ box"
    long = "\n\n".join(["p" * 2000, "q" * 2000])
    assert [len(s["text"]["text"]) for s in sections(long)] == [2000, 2000]


def test_notice_names_the_discarded_rows_and_where_they_are_kept():
    data = {"no_loss": False, "compared": True, "lost_rows": 3,
            "lost": [Text("3 in orders")], "kept": Text("shop_failed_1")}  # fmt: skip
    text = render("maintenance_notice.md.j2", notice(data=data), target="markdown")
    assert "No data has been lost" not in text
    assert "3 records written after the backup are not in the restored system (3 in orders)" in text
    assert "kept (in the database shop\\_failed\\_1) and will be reconciled" in text


def test_notice_without_a_data_comparison_makes_no_data_claim():
    data = {"no_loss": False, "compared": False, "lost_rows": 0, "lost": [], "kept": Text("")}
    text = render("maintenance_notice.md.j2", notice(data=data), target="slack")
    assert "No data has been lost" not in text and "All other systems operating normally" in text
    assert "not yet checked by the rollback" in text
