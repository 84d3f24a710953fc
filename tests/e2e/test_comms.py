"""After a rollback: the maintenance notice (once per channel, honest) and the post-mortem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.comms.render import document_time
from tests.e2e.comms_support import (
    APPROVER,
    CHANNEL,
    NOTICE_CHANNELS,
    answer,
    click,
    command,
    posts_to,
    roll_back,
    thread_text,
    wait_row,
    write_comms_runbook,
)
from tests.e2e.harness import fetch, text_of


async def test_verified_rollback_posts_the_notice_once_per_channel_and_a_postmortem_canvas(
    start_bot, fake, tmp_path
):
    write_comms_runbook(tmp_path, check="true")
    bot = await start_bot(rewrite=False)
    dsn = start_bot.dsn
    await roll_back(bot, fake, dsn)
    for channel in NOTICE_CHANNELS:
        await fake.wait_for(lambda f, c=channel: posts_to(f, c), timeout=20)
    await fake.wait_for(lambda f: f.canvases, timeout=20)
    await fake.wait_for(lambda f: ":memo:" in thread_text(f), timeout=20)

    for channel in NOTICE_CHANNELS:
        [notice] = posts_to(fake, channel)
        body = text_of(notice)
        assert "System Maintenance Notice" in body and "WMS integration" in body
        assert "What was rolled back*: Database migration failure (RB-1, CRITICAL)" in body
        assert "All other systems operating normally" in body
        # The scenario has no `compare_data`: nothing was compared, so no claim about data.
        assert "No data has been lost" not in body and "not yet checked by the rollback" in body
        assert "Rollback completed: <!date^" in body and "Services restored: <!date^" in body
        assert "Next attempt scheduled: not yet scheduled" in body
        assert "<@UONCALL01>" in body
        assert "&lt;!channel&gt;" in body and "<!channel>" not in body and "@here" not in body
    assert "Maintenance notice sent to <#CNOTICE01>, <#CNOTICE02>" in thread_text(fake)
    rows = await fetch(dsn, "select channel from notices order by channel")
    assert [r["channel"] for r in rows] == list(NOTICE_CHANNELS)

    # The canvas: every time is the audit log's, the steps and the approver are named.
    [canvas] = fake.canvases.values()
    markdown = canvas["document_content"]["markdown"]
    assert canvas["title"].startswith("RB-1 post-mortem") and canvas["channel_id"] == CHANNEL
    events = await fetch(dsn, "select kind, actor, at from events where incident_id = 1")
    at = {e["kind"]: document_time(e["at"]) for e in events}
    incident = (await fetch(dsn, "select * from incidents"))[0]
    assert f"**Start Time**: {at['declare']}" in markdown
    assert f"**Detection Time**: {document_time(incident['detected_at'])}" in markdown
    assert "(declared 10m after detection)" in markdown
    assert f"**Rollback Decision**: {at['request_approval']}" in markdown
    assert f"**Rollback Approved**: {at['approve']} by ![](@{APPROVER})" in markdown
    steps = await fetch(dsn, "select * from step_results order by id")
    assert [s["name"] for s in steps] == ["Stop services", "Restore database"]
    for n, step in enumerate(steps, 1):
        times = f"{document_time(step['started_at'])} → {document_time(step['ended_at'])}"
        assert f"{n}. **{step['name']}**: succeeded, {times}" in markdown
    assert "- passed: App responsive (run)" in markdown
    assert "<!channel>" not in markdown and "](http" not in markdown
    saved = (tmp_path / "data" / "postmortems" / "RB-1.md").read_text()
    assert f"**Rollback Approved**: {at['approve']} by @{APPROVER}" in saved
    [row] = await fetch(dsn, "select * from postmortems")
    assert (row["state"], row["kind"], row["slack_id"]) == ("created", "canvas", *fake.canvases)
    assert row["path"].endswith("postmortems/RB-1.md")

    # Asking again neither creates a second canvas nor posts a second notice.
    again = await answer(fake, await command(bot, fake, "postmortem RB-1"))
    assert "updated with the latest facts" in again["text"] and len(fake.canvases) == 1


async def test_next_attempt_date_appears_when_the_notice_is_posted_again(start_bot, fake, tmp_path):
    write_comms_runbook(tmp_path)
    bot = await start_bot(rewrite=False)
    await roll_back(bot, fake, start_bot.dsn, summary="migration broke")
    await fake.wait_for(lambda f: all(posts_to(f, c) for c in NOTICE_CHANNELS), timeout=20)
    notices = {c: posts_to(fake, c)[0] for c in NOTICE_CHANNELS}
    # A date that no other message can carry: a year from today, whatever today is.
    next_attempt = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    preview = await answer(fake, await command(bot, fake, f"notice RB-1 next {next_attempt}"))
    assert f"Next attempt scheduled: {next_attempt}" in text_of(preview)
    [action] = [b for b in preview["blocks"] if b["type"] == "actions"]
    value = action["elements"][0]["value"]
    clicked = await click(bot, fake, "UCOMMS001", "notice_post", value)
    assert "updated in <#CNOTICE01>, <#CNOTICE02>" in (await answer(fake, clicked))["text"]

    def notice_edits(f) -> list[dict]:
        """Accepted chat.update calls that edit one of the notices posted above."""
        return [
            c.args
            for c in f.calls_to("chat.update")
            if c.ok
            and c.args["channel"] in notices
            and c.args["ts"] == _ts_of(f, notices[c.args["channel"]])
        ]

    await fake.wait_for(lambda f: {e["channel"] for e in notice_edits(f)} == set(notices), 30)
    for channel in NOTICE_CHANNELS:
        assert len(posts_to(fake, channel)) == 1  # edited, never posted twice
        [shown] = fake.messages(channel)
        assert f"Next attempt scheduled: {next_attempt}" in text_of(shown)
    rows = await fetch(start_bot.dsn, "select next_attempt from incidents")
    assert str(rows[0]["next_attempt"]) == next_attempt


def _ts_of(fake, posted_args: dict) -> str:
    """The ts Slack gave the message that was posted with these chat.postMessage arguments."""
    [call] = [c for c in fake.calls_to("chat.postMessage") if c.args is posted_args]
    return call.response["ts"]


async def test_failed_verification_makes_no_claims_and_the_postmortem_falls_back_to_a_file(
    start_bot, fake, tmp_path
):
    write_comms_runbook(tmp_path, check="false")
    fake.canvases_enabled = False
    bot = await start_bot(rewrite=False)
    dsn = start_bot.dsn
    await roll_back(bot, fake, dsn)
    for channel in NOTICE_CHANNELS:
        await fake.wait_for(lambda f, c=channel: posts_to(f, c), timeout=20)
        body = text_of(posts_to(fake, channel)[0])
        assert "No data has been lost" not in body and "Services restored" not in body
        assert "All other systems operating normally" not in body
        assert "Not yet verified" in body and "verification failed (App responsive)" in body
    [run] = await fetch(dsn, "select verification_passed from runs")
    assert run["verification_passed"] is False

    await wait_row(dsn, "select 1 from postmortems where state = 'created'")
    [uploaded] = [f for f in fake.files.values() if f.completed]
    root = fake.messages(CHANNEL)[0]
    assert (uploaded.channel_id, uploaded.thread_ts) == (CHANNEL, root["ts"])
    assert uploaded.filename == "RB-1-postmortem.md"
    content = uploaded.content.decode()
    assert "- FAILED: App responsive (run)" in content
    assert "Verification: FAILED; services were not confirmed as restored" in content
    assert not fake.canvases
    [row] = await fetch(dsn, "select kind, slack_id from postmortems")
    assert (row["kind"], row["slack_id"]) == ("file", uploaded.id)
    assert (tmp_path / "data" / "postmortems" / "RB-1.md").read_text() == content


async def test_a_slack_refusal_of_the_postmortem_is_told_in_the_thread_and_retried_on_demand(
    start_bot, fake, tmp_path
):
    write_comms_runbook(tmp_path)
    fake.fail("canvases.create", error="missing_scope", times=None)
    fake.fail("files.getUploadURLExternal", error="missing_scope", times=1)
    bot = await start_bot(rewrite=False)
    await roll_back(bot, fake, start_bot.dsn)
    await fake.wait_for(lambda f: "couldn't create RB-1's post-mortem" in thread_text(f), 20)
    assert "(missing_scope)" in thread_text(fake)
    assert (tmp_path / "data" / "postmortems" / "RB-1.md").exists()
    retried = await answer(fake, await command(bot, fake, "postmortem RB-1"))
    assert "a Markdown file uploaded" in retried["text"]
    [row] = await fetch(start_bot.dsn, "select state, kind from postmortems")
    assert (row["state"], row["kind"]) == ("created", "file")


async def test_a_notice_slack_refuses_is_said_in_the_thread_and_notifies_no_one(
    start_bot, fake, tmp_path
):
    write_comms_runbook(tmp_path, check="true")
    fake.not_in_channels.add(NOTICE_CHANNELS[1])  # the bot was never invited there
    bot = await start_bot(rewrite=False)
    await roll_back(bot, fake, start_bot.dsn)
    await fake.wait_for(lambda f: posts_to(f, NOTICE_CHANNELS[0]), timeout=20)
    await fake.wait_for(lambda f: "couldn't post the maintenance notice" in thread_text(f), 20)
    text = thread_text(fake)
    assert f"<#{NOTICE_CHANNELS[1]}>" in text and "not_in_channel" in text
    assert "/rollback notice RB-1" in text
    delivered = await fetch(
        start_bot.dsn,
        "select n.channel from notices n join messages m on m.key = n.message_key"
        " where m.ts is not null",
    )
    assert [r["channel"] for r in delivered] == [NOTICE_CHANNELS[0]]


async def test_resolving_brings_the_postmortem_canvas_up_to_date(start_bot, fake, tmp_path):
    write_comms_runbook(tmp_path, check="true")
    bot = await start_bot(rewrite=False)
    await roll_back(bot, fake, start_bot.dsn)
    await fake.wait_for(lambda f: f.canvases, timeout=20)
    [canvas] = fake.canvases.values()
    assert "not resolved when this document was written" in canvas["document_content"]["markdown"]
    await command(bot, fake, "resolve RB-1 restored and verified")
    [row] = await wait_row(
        start_bot.dsn, "select resolved_at from incidents where resolved_at is not null"
    )
    expected = f"**Resolution Time**: {document_time(row['resolved_at'])}"
    # The canvas is edited in place once the resolution is stored (the call is recorded on
    # arrival, so wait for the edit's effect, not for the call).
    await fake.wait_for(lambda f: expected in canvas["document_content"]["markdown"], timeout=20)
    assert len(fake.canvases) == 1  # updated in place, not created again
