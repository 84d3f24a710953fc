"""Block Kit builders: valid for Slack, user text inert and verbatim, buttons safe. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.lifecycle import ApprovalState, Severity, State
from bot.slack import blocks
from bot.slack.ids import Action

DECLARED = datetime(2031, 11, 24, 3, 5, tzinfo=UTC)
DECLARED_UTC = f"{DECLARED:%Y-%m-%d %H:%M} UTC"  # slack_time's fallback text for DECLARED
HOSTILE = (
    "<!channel> <!here> <!everyone> @channel @Here @EVERYONE <@U0BOSS> <#C0SECRET> "
    "<!subteam^S0ALL> <http://evil.example|click me> & *bold* `code`"
)
BROADCAST = re.compile(r"@(channel|here|everyone)", re.IGNORECASE)


def incident(**overrides) -> dict:
    row = {
        "id": 12,
        "severity": "critical",
        "state": "open",
        "declared_by": "UDECLARE1",
        "declared_at": DECLARED,
        "detected_at": DECLARED - timedelta(minutes=15),
        "scenario": "database",
        "summary": HOSTILE,
    }
    row.update(overrides)
    return row


def approval(**overrides) -> dict:
    row = {
        "id": 77,
        "scenario": "database",
        "state": "pending",
        "decided_by": None,
        "decided_at": None,
        "expires_at": DECLARED + timedelta(minutes=30),
    }
    row.update(overrides)
    return row


def assert_valid(message_blocks: list[dict]) -> None:
    """As Slack checks a message: at most 50 blocks, each accepted by Block Kit's rules."""
    assert 0 < len(message_blocks) <= 50
    for block in message_blocks:
        parsed = Block.parse(block)
        assert parsed is not None, f"unknown block {block}"
        parsed.validate_json()


def text_objects(node) -> list[dict]:
    """Every text object (mrkdwn or plain_text) anywhere in the blocks."""
    found = []
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            found.append(node)
        for value in node.values():
            found += text_objects(value)
    elif isinstance(node, list):
        for item in node:
            found += text_objects(item)
    return found


def elements_of(message_blocks: list[dict], kind: str) -> list[dict]:
    return [
        e
        for b in message_blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["type"] == kind
    ]


# --- escape ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here>", "&lt;!here&gt;"),
        ("<!everyone>", "&lt;!everyone&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<#C123>", "&lt;#C123&gt;"),
        ("<#C123|general>", "&lt;#C123|general&gt;"),
        ("<http://x|y>", "&lt;http://x|y&gt;"),
        ("<!subteam^S123>", "&lt;!subteam^S123&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;!channel&gt;", "&amp;lt;!channel&amp;gt;"),  # pre-escaped text stays text
        ("@channel", "@\u200bchannel"),
        ("@here", "@\u200bhere"),
        ("@everyone", "@\u200beveryone"),
        ("hey @CHANNEL and @Here!", "hey @\u200bCHANNEL and @\u200bHere!"),
        ("plain words", "plain words"),
    ],
)
def test_escape_neutralises_mentions_links_broadcasts_and_ampersands(raw, escaped):
    assert blocks.escape(raw) == escaped


def test_escape_truncates_to_the_limit_with_an_ellipsis():
    assert blocks.escape("x" * 10, limit=5) == "xxxx…"
    assert blocks.escape("x" * 5, limit=5) == "xxxxx"
    long = blocks.escape("y" * 3000)
    assert len(long) == 2000
    assert long.endswith("…")


def test_escape_truncates_before_escaping_so_no_entity_is_cut():
    assert blocks.escape("<" * 10, limit=5) == "&lt;" * 4 + "…"


def test_escape_truncation_cannot_revive_a_broadcast():
    assert not BROADCAST.search(blocks.escape("@channel" * 300, limit=100))


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("<>&@!#|^ abcUChnelhrvyo:/"), max_size=80)
    | st.text(max_size=80)
)
def test_escaped_text_has_no_angle_brackets_bare_ampersands_or_broadcasts(text):
    out = blocks.escape(text)
    assert "<" not in out and ">" not in out
    assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", out, re.DOTALL)
    assert not BROADCAST.search(out)


# --- incident_root ---------------------------------------------------------------------------


def test_incident_root_with_hostile_summary_is_valid_and_inert():
    fallback, root = blocks.incident_root(incident(), "Database migration failure")
    assert_valid(root)
    for obj in text_objects(root):
        assert not BROADCAST.search(obj["text"])
        for raw in (
            "<!channel>",
            "<!here>",
            "<!everyone>",
            "<@U0BOSS>",
            "<#C0SECRET>",
            "<!subteam^S0ALL>",
            "<http://evil",
        ):
            assert raw not in obj["text"]
    assert not BROADCAST.search(fallback)
    assert "<" not in fallback and ">" not in fallback
    assert "RB-12 CRITICAL" in fallback


def test_incident_root_puts_the_summary_only_in_verbatim_text():
    _, root = blocks.incident_root(incident(), "Database migration failure")
    carrying = [o for o in text_objects(root) if "evil.example" in o["text"]]
    assert len(carrying) == 1
    assert carrying[0]["verbatim"] is True
    assert "&lt;http://evil.example|click me&gt;" in carrying[0]["text"]
    assert "&lt;@U0BOSS&gt;" in carrying[0]["text"]


def test_incident_root_names_declarer_state_and_scenario():
    _, root = blocks.incident_root(incident(state="awaiting_approval"), "Database failure")
    head = root[0]["text"]["text"]
    assert "RB-12" in head and "CRITICAL" in head
    assert "<@UDECLARE1>" in head
    assert "waiting for rollback approval" in head
    assert "`database` — Database failure" in head


def test_incident_root_without_summary_or_scenario_has_no_summary_block():
    fallback, root = blocks.incident_root(
        incident(summary="", scenario=None, detected_at=None, severity="low"), None
    )
    assert_valid(root)
    assert fallback == "RB-12 LOW: incident declared"
    assert not any(o.get("verbatim") for o in text_objects(root))


def test_incident_root_stays_valid_when_escaping_multiplies_a_maximal_summary():
    _, root = blocks.incident_root(incident(summary="&<>" * 700), "Database migration failure")
    assert_valid(root)


@pytest.mark.parametrize("state", list(State))
def test_incident_root_is_valid_in_every_state(state):
    _, root = blocks.incident_root(incident(state=state.value), "Database migration failure")
    assert_valid(root)


# --- approval_request ------------------------------------------------------------------------


def request(**overrides):
    options = {
        "scenario_title": "Database migration failure",
        "steps": ["Stop services", "Restore <database> & @channel"],
        "contacts": ["UDBA00001", "S0GROUP01"],
        "approvers": ["UAPPROVE1", "SAPPROVERS"],
        "refusal": "No completed backup holds `db_dump`; run `/rollback backup` first.",
    }
    options.update(overrides)
    return blocks.approval_request(incident(), approval(), **options)


def test_approval_request_is_valid_with_refusal_contacts_and_approvers():
    fallback, message = request()
    assert_valid(message)
    everything = "\n".join(o["text"] for o in text_objects(message))
    assert "<@UDBA00001>" in everything and "<!subteam^S0GROUP01>" in everything
    assert "<@UAPPROVE1>" in everything and "<!subteam^SAPPROVERS>" in everything
    assert "This rollback can't start yet." in everything
    assert "run `/rollback backup` first" in everything
    assert "Rollback requested for RB-12" in fallback


def test_approval_request_lists_steps_escaped_and_in_order():
    _, message = request()
    steps = next(o["text"] for o in text_objects(message) if o["text"].startswith("*Steps*"))
    assert steps == "*Steps*\n1. Stop services\n2. Restore &lt;database&gt; &amp; @\u200bchannel"


def test_approval_request_without_refusal_contacts_or_approvers_says_anyone_may_approve():
    _, message = request(refusal=None, contacts=[], approvers=[])
    assert_valid(message)
    everything = "\n".join(o["text"] for o in text_objects(message))
    assert "Anyone who didn't ask for it may approve." in everything
    assert "Paging" not in everything
    assert "can't start yet" not in everything


def test_approval_request_with_many_long_steps_stays_valid():
    _, message = request(steps=[f"Step {n} " + "x" * 80 for n in range(200)])
    assert_valid(message)


def test_approval_buttons_carry_the_approval_id_and_ask_for_confirmation():
    _, message = request()
    buttons = elements_of(message, "button")
    assert [b["action_id"] for b in buttons] == [Action.APPROVE.value, Action.REJECT.value]
    # Approve also names the restore point shown (0: none), so a stale click is refused.
    assert [b["value"] for b in buttons] == ["77:0", "77"]
    for button in buttons:
        confirm = button["confirm"]
        assert confirm["title"]["text"] and confirm["text"]["text"]
        assert confirm["confirm"]["text"] and confirm["deny"]["text"]
    assert buttons[0]["confirm"]["style"] == "danger"
    assert "2 steps of `database`" in buttons[0]["confirm"]["text"]["text"]


# --- approval_decided ------------------------------------------------------------------------

DECIDED = {
    ApprovalState.APPROVED: ("UAPPROVE1", ":white_check_mark: Approved by <@UAPPROVE1>"),
    ApprovalState.REJECTED: ("UREJECT01", ":x: Rejected by <@UREJECT01>"),
    ApprovalState.EXPIRED: (None, ":hourglass: Expired unused"),
    ApprovalState.WITHDRAWN: (None, "Withdrawn: the incident was closed"),
}


def test_every_decided_approval_state_has_an_outcome():
    assert set(DECIDED) == set(ApprovalState) - {ApprovalState.PENDING}


@pytest.mark.parametrize("state", list(DECIDED))
def test_decided_approval_replaces_buttons_with_who_and_when(state):
    by, outcome = DECIDED[state]
    decided_at = DECLARED + timedelta(minutes=3) if by else None
    record = approval(state=state.value, decided_by=by, decided_at=decided_at)
    fallback, message = blocks.approval_decided(incident(), record, scenario_title="DB failure")
    assert_valid(message)
    assert elements_of(message, "button") == []
    assert not [b for b in message if b["type"] == "actions"]
    text = message[-1]["text"]["text"]
    assert outcome in text
    when = decided_at or record["expires_at"]
    assert f"<!date^{int(when.timestamp())}^" in text
    assert fallback == f"Rollback for RB-12: {state.value}"


# --- note and small helpers ------------------------------------------------------------------


def test_note_with_escaped_user_text_is_valid_and_inert():
    text = "Resolved by <@UDECLARE1>: " + blocks.escape(HOSTILE)
    fallback, message = blocks.note(text)
    assert_valid(message)
    assert fallback == text
    assert not BROADCAST.search(message[0]["text"]["text"])
    assert "<!channel>" not in message[0]["text"]["text"]


def test_overlong_note_is_cut_to_a_valid_section():
    _, message = blocks.note("n" * 5000)
    assert_valid(message)
    assert len(message[0]["text"]["text"]) == 3000


def test_incident_line_escapes_and_shortens_the_summary():
    line = blocks.incident_line(incident(summary="<!channel> " + "z" * 200, severity="high"))
    assert "&lt;!channel&gt;" in line and "<!channel>" not in line
    assert "z" * 80 not in line
    assert "RB-12" in line and "HIGH" in line


def test_mention_of_a_user_group_uses_subteam_syntax():
    assert blocks.mention("U0123") == "<@U0123>"
    assert blocks.mention("S0123") == "<!subteam^S0123>"


def test_slack_time_shows_the_epoch_and_a_utc_fallback():
    assert blocks.slack_time(DECLARED) == (
        f"<!date^{int(DECLARED.timestamp())}^{{date_short_pretty}} {{time}}|{DECLARED_UTC}>"
    )


def test_slack_time_fallback_is_in_utc_whatever_the_offset():
    paris = DECLARED.astimezone(timezone(timedelta(hours=1)))
    assert blocks.slack_time(paris).endswith(f"|{DECLARED_UTC}>")


@pytest.mark.parametrize("severity", list(Severity))
def test_severity_choice_fits_a_menu_option(severity):
    label = blocks.severity_choice(severity)
    assert severity.value.capitalize() in label
    assert len(label) <= 75


def test_an_approval_request_needing_two_shows_the_tally_and_who_approved():
    from datetime import UTC, datetime

    from bot.slack import blocks as rendering

    incident = {"id": 4, "severity": "critical", "summary": "x", "state": "awaiting_approval"}
    approval = {
        "id": 9,
        "scenario": "database",
        "expires_at": datetime(2032, 1, 1, tzinfo=UTC),
        "approvals_required": 2,
    }
    _, shown = rendering.approval_request(
        incident, approval, scenario_title="DB", steps=["a"], contacts=[], approvers=[],
        approved_by=["U0FIRST1"],
    )  # fmt: skip
    text = str(shown)
    assert "*1 of 2 approvals* (distinct people) — <@U0FIRST1>" in text
    assert any(b["type"] == "actions" for b in shown)
