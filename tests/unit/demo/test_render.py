"""The demo shows the bot's Block Kit as a person reads it in Slack: styles, buttons, people,
dates and messages only one person sees."""

from __future__ import annotations

from bot.demo.render import Line, inline, message_lines, mrkdwn_lines, to_plain, to_rich
from bot.demo.terminal import plain
from bot.demo.transcript import Transcript
from bot.demo.web import conversation_html, lines_html
from bot.slack.blocks import approval_request, escape, slack_time

NAMES = {"UALICE": "alice", "UBOB": "bob", "CROOM": "ecom-ops", "SDBA": "dbas"}


def styles_of(text: str, target: str) -> frozenset[str]:
    """The styles of the span whose text is `target`."""
    for line in mrkdwn_lines(text, NAMES):
        for chunk, styles in line.spans:
            if chunk == target:
                return styles
    raise AssertionError(f"no span {target!r} in {mrkdwn_lines(text, NAMES)}")


def test_bold_italic_strike_and_code_are_styled_without_their_markers():
    text = "*Rollback* _now_ ~never~ `pg_dump -d shop`"
    assert to_plain(mrkdwn_lines(text, NAMES)) == "Rollback now never `pg_dump -d shop`"
    assert styles_of(text, "Rollback") == {"bold"}
    assert styles_of(text, "now") == {"italic"}
    assert styles_of(text, "never") == {"strike"}
    assert styles_of(text, "pg_dump -d shop") == {"code"}


def test_styles_nest_and_markers_inside_words_stay_text():
    assert styles_of("*Rollback for `full`:* done", "full") == {"bold", "code"}
    assert to_plain(mrkdwn_lines("snake_case_name and 2*3*4", NAMES)) == (
        "snake_case_name and 2*3*4"
    )


def test_quotes_and_code_blocks_become_their_own_lines():
    lines = mrkdwn_lines("Output:\n```line one\n*not bold*```\n> WMS sync failed", NAMES)
    assert [line.kind for line in lines] == ["text", "pre", "pre", "quote"]
    assert lines[2].spans == (("*not bold*", frozenset({"pre"})),)
    assert to_plain(lines, "  ") == "  Output:\n  │ line one\n  │ *not bold*\n  ┃ WMS sync failed"


def test_mentions_show_names_of_known_people_groups_and_channels():
    text = "Paging <@UALICE> <@UNKNOWN> <!subteam^SDBA> in <#CROOM> <!here>"
    assert to_plain(mrkdwn_lines(text, NAMES)) == "Paging @alice @UNKNOWN @dbas in #ecom-ops @here"
    assert styles_of(text, "@alice") == {"mention"}


def test_dates_show_their_fallback_text():
    from datetime import UTC, datetime

    text = f"Declared {slack_time(datetime(2024, 5, 1, 9, 30, tzinfo=UTC))}"
    assert to_plain(mrkdwn_lines(text, NAMES)) == "Declared 2024-05-01 09:30 UTC"
    assert styles_of(text, "2024-05-01 09:30 UTC") == {"date"}


def test_links_show_their_label_and_emoji_codes_become_emoji():
    text = ":memo: post-mortem: <https://example.test/docs/F1|canvas> :no_such_emoji:"
    assert to_plain(mrkdwn_lines(text, NAMES)) == "📝 post-mortem: canvas :no_such_emoji:"
    assert styles_of(text, "canvas") == {"link"}


def test_escaped_user_text_reads_as_typed_and_never_becomes_a_mention():
    typed = escape("<@UALICE> & @channel <b>")
    spans = inline(typed, NAMES)
    assert "".join(chunk for chunk, _ in spans) == "<@UALICE> & @\u200bchannel <b>"
    assert all("mention" not in styles for _, styles in spans)


def test_approval_request_shows_its_steps_and_buttons():
    from datetime import UTC, datetime

    incident = {"id": 7, "severity": "critical"}
    approval = {"id": 3, "scenario": "full", "expires_at": datetime(2024, 5, 1, 10, tzinfo=UTC)}
    text, blocks = approval_request(
        incident,
        approval,
        scenario_title="Complete failure",
        steps=["Stop app", "Restore database"],
        contacts=["UBOB"],
        approvers=[],
    )
    lines = message_lines({"text": text, "blocks": blocks}, NAMES)
    shown = to_plain(lines)
    assert "Paging @bob" in shown
    assert "Rollback requested for RB-7: `full` — Complete failure" in shown
    assert "1. Stop app\n2. Restore database" in shown
    assert shown.endswith("[Approve] [Reject]")
    buttons = lines[-1]
    assert buttons.kind == "actions"
    assert buttons.spans[0] == ("[Approve]", frozenset({"button", "primary"}))
    assert buttons.spans[2] == ("[Reject]", frozenset({"button", "danger"}))
    assert "Expires 2024-05-01 10:00 UTC" in shown


def test_context_divider_header_and_text_only_messages():
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Notice *as typed*"}},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "small _print_"}]},
    ]
    lines = message_lines({"text": "fallback", "blocks": blocks}, NAMES)
    assert [line.kind for line in lines] == ["text", "rule", "context"]
    assert lines[0].spans == (("Notice *as typed*", frozenset({"bold"})),)
    assert "dim" in lines[2].spans[0][1]
    assert to_plain(message_lines({"text": "*only* text"}, NAMES)) == "only text"


def test_terminal_styles_follow_the_spans():
    rich_text = to_rich([Line((("Approve", frozenset({"bold"})), (" now", frozenset())))])
    assert rich_text.plain == "Approve now"
    assert [(span.start, span.end, str(span.style)) for span in rich_text.spans] == [(0, 7, "bold")]


def test_ephemerals_say_who_alone_sees_them_and_replies_name_their_thread():
    transcript = Transcript(NAMES)
    transcript.thread_labels[("CROOM", "1.0")] = "RB-1 CRITICAL: sync broken"
    refusal = transcript.add(
        "ephemeral",
        channel="CROOM",
        author="rollback-bot",
        to="@alice",
        text=":warning: You declared RB-1, so a second person must approve.",
    )
    assert plain(refusal, transcript) == (
        "rollback-bot in #ecom-ops (only visible to @alice):\n"
        "    ⚠️ You declared RB-1, so a second person must approve."
    )
    reply = transcript.add(
        "message",
        channel="CROOM",
        ts="2.0",
        thread="1.0",
        author="rollback-bot",
        text="*Step 1/2* done",
    )
    assert plain(reply, transcript).startswith(
        "rollback-bot in #ecom-ops › thread “RB-1 CRITICAL: sync broken”:"
    )


def test_the_page_escapes_text_and_shows_edits_in_place():
    transcript = Transcript(NAMES)
    transcript.add(
        "message", channel="CROOM", ts="1.0", author="rollback-bot", text="⏳ Step 1 <script>"
    )
    transcript.add("message", channel="CROOM", ts="2.0", author="rollback-bot", text="later")
    transcript.add("edit", channel="CROOM", ts="1.0", author="rollback-bot", text="*Step 1* done")
    page = conversation_html(transcript)
    assert "<script>" not in page and "&lt;script&gt;" not in page  # replaced by the edit
    assert page.index("<strong>Step 1</strong> done") < page.index("later")
    assert '<span class="tag">edited</span>' in page
    buttons = lines_html([Line((("[Approve]", frozenset({"button", "primary"})),), "actions")])
    assert '<span class="button primary">[Approve]</span>' in buttons
