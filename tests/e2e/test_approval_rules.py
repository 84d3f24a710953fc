"""The two-person rule and where an incident is changed, through signed requests to a real bot."""

from __future__ import annotations

import signal
import textwrap

from tests.e2e.harness import fetch, text_of

CHANNEL, ELSEWHERE = "CINCIDENT1", "COTHER001"
DECLARER, ESCALATOR, THIRD, FOURTH = "UDECLARE1", "UESCALAT1", "UTHIRD001", "UFOURTH01"


def request_message(fake, approval_id: int | None = None) -> dict:
    """The (latest) approval request message in the incident's thread, as Slack shows it now."""
    root = fake.messages(CHANNEL)[0]
    found = [
        m
        for m in fake.thread(CHANNEL, root["ts"])
        if any(
            e.get("action_id") == "rollback_approve"
            and (approval_id is None or e.get("value") == str(approval_id))
            for b in m.get("blocks") or []
            for e in b.get("elements") or []
        )
    ]
    assert found, "no approval request with buttons in the thread"
    return found[-1]


async def press(bot, fake, user: str, message: dict, action: str = "rollback_approve") -> str:
    """`user` presses a button of `message` in the incident's channel; the answer they see."""
    value = next(
        e["value"]
        for b in message["blocks"]
        for e in b.get("elements") or []
        if e.get("action_id") == action
    )
    url = fake.response_url()
    status, _ = await bot.click(
        user=user,
        action_id=action,
        value=value,
        channel=CHANNEL,
        message_ts=message["ts"],
        response_url=url,
    )
    assert status == 200
    return (await fake.wait_for(lambda f: f.responses_to(url)))[0].body["text"]


async def wait_request(fake, count: int = 1) -> None:
    def requests(f):
        posts = [c.args for c in f.calls_to("chat.postMessage") if c.ok]
        return len([p for p in posts if "Rollback requested" in p.get("text", "")]) >= count

    await fake.wait_for(requests)


async def test_the_escalator_cannot_approve_their_own_request_and_a_third_person_can(
    start_bot, fake
):
    bot = await start_bot()
    await bot.ask("declare low orders look odd", user=DECLARER, channel=CHANNEL)
    answer = await bot.ask("escalate RB-1 critical database", user=ESCALATOR, channel=CHANNEL)
    assert answer["text"] == "RB-1 is now CRITICAL."
    await wait_request(fake)
    refused = await press(bot, fake, ESCALATOR, request_message(fake))
    assert "You escalated RB-1" in refused and "second person" in refused
    assert [r["state"] for r in await fetch(start_bot.dsn, "select state from approvals")] == [
        "pending"
    ]
    assert await fetch(start_bot.dsn, "select * from approval_votes") == []
    assert await fetch(start_bot.dsn, "select * from runs") == []
    requesters = await fetch(
        start_bot.dsn, "select user_id, part from incident_requesters order by at"
    )
    assert [tuple(r) for r in requesters] == [(DECLARER, "declared"), (ESCALATOR, "escalated")]
    accepted = await press(bot, fake, THIRD, request_message(fake))
    assert "Approved" in accepted
    runs = await fetch(start_bot.dsn, "select requested_by, scenario from runs")
    assert [tuple(r) for r in runs] == [(THIRD, "database")]


async def test_the_database_itself_refuses_a_requesters_vote(start_bot, fake):
    bot = await start_bot()
    await bot.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    import asyncpg

    conn = await asyncpg.connect(start_bot.dsn)
    try:
        approval_id = await conn.fetchval("select id from approvals")
        try:
            await conn.execute(
                "insert into approval_votes (approval_id, user_id) values ($1, $2)",
                approval_id,
                DECLARER,
            )
        except asyncpg.CheckViolationError as error:
            assert "took part in requesting" in str(error)
        else:
            raise AssertionError("the requester's vote was accepted")
        try:
            await conn.execute("update approvals set state = 'approved', decided_by = $1", THIRD)
        except asyncpg.CheckViolationError as error:
            assert "lacks the 1 distinct approvals" in str(error)
        else:
            raise AssertionError("an approval without a vote was accepted")
    finally:
        await conn.close()


async def test_declarers_govern_escalate_too(start_bot, fake):
    bot = await start_bot(declarers=(DECLARER,))
    await bot.ask("declare low slow pages", user=DECLARER, channel=CHANNEL)
    answer = await bot.ask("escalate RB-1 critical database", user=ESCALATOR, channel=CHANNEL)
    assert "Only the runbook's declarers may escalate" in answer["text"]
    incident = await fetch(start_bot.dsn, "select severity, state from incidents")
    assert tuple(incident[0]) == ("low", "open")
    kinds = [r["kind"] for r in await fetch(start_bot.dsn, "select kind from events")]
    assert kinds == ["declare"]
    refused = await bot.ask("declare low another", user=ESCALATOR, channel=CHANNEL)
    assert "Only the runbook's declarers may declare" in refused["text"]


async def test_two_approvals_required_need_two_distinct_people_and_start_one_run(start_bot, fake):
    bot = await start_bot(approvals_required=2)
    await bot.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    assert "0 of 2 approvals" in text_of(request_message(fake))
    first = await press(bot, fake, THIRD, request_message(fake))
    assert first.startswith("Approval recorded (1 of 2 approvals)")

    def tallied(f):
        message = request_message(f)
        return "1 of 2 approvals" in text_of(message) and f"<@{THIRD}>" in text_of(message)

    await fake.wait_for(tallied)
    again = await press(bot, fake, THIRD, request_message(fake))
    assert "You already approved this request (1 of 2 approvals)" in again
    assert await fetch(start_bot.dsn, "select * from runs") == []
    votes = await fetch(start_bot.dsn, "select user_id from approval_votes")
    assert [r["user_id"] for r in votes] == [THIRD]
    assert "second person" in await press(bot, fake, DECLARER, request_message(fake))
    second = await press(bot, fake, FOURTH, request_message(fake))
    assert "Approved" in second
    runs = await fetch(start_bot.dsn, "select requested_by from runs")
    assert [r["requested_by"] for r in runs] == [FOURTH]
    approval = await fetch(start_bot.dsn, "select state, decided_by from approvals")
    assert tuple(approval[0]) == ("approved", FOURTH)
    root = fake.messages(CHANNEL)[0]

    def decided(f):
        return [m for m in f.thread(CHANNEL, root["ts"]) if "Approved by" in text_of(m)]

    message = (await fake.wait_for(decided))[0]
    assert f"<@{THIRD}>, <@{FOURTH}>" in text_of(message)


async def test_an_outsider_in_another_channel_reads_nothing_and_changes_nothing(start_bot, fake):
    bot = await start_bot()
    await bot.ask("declare high database secret merger numbers", user=DECLARER, channel=CHANNEL)
    before = await fetch(start_bot.dsn, "select * from incidents")
    events = await fetch(start_bot.dsn, "select count(*) from events")
    status = await bot.ask("status RB-1", user=THIRD, channel=ELSEWHERE)
    assert status["text"] == ":warning: RB-1 belongs to another channel."
    for text in (
        "resolve RB-1 nothing to see",
        "cancel RB-1",
        "escalate RB-1 critical",
        "notice RB-1 next 2099-01-01",
    ):
        answer = await bot.ask(text, user=THIRD, channel=ELSEWHERE)
        assert f"RB-1 belongs to <#{CHANNEL}>" in answer["text"], (text, answer)
        assert "Nothing changed" in answer["text"]
    assert await fetch(start_bot.dsn, "select * from incidents") == before
    assert await fetch(start_bot.dsn, "select count(*) from events") == events
    assert await fetch(start_bot.dsn, "select * from approvals") == []
    history = await bot.ask("history", user=THIRD, channel=ELSEWHERE)
    assert history["text"] == "No incidents in this channel yet."
    mine = await bot.ask("status RB-1", user=THIRD, channel=CHANNEL)
    assert "secret merger numbers" in mine["text"]


FAILING = textwrap.dedent("""
    [[scenario]]
    key = "database"
    title = "Database migration failure"
    trigger = "Migration fails"
      [[scenario.step]]
      name = "Restore database"
      run = "exit 3"
""")


async def test_resolving_an_incident_whose_run_is_stopped_needs_an_approver(start_bot, fake):
    bot = await start_bot(approvers=(THIRD,), scenarios=FAILING)
    await bot.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    assert "Approved" in await press(bot, fake, THIRD, request_message(fake))

    async def stopped():
        rows = await fetch(start_bot.dsn, "select state from runs")
        return rows and rows[0]["state"] == "waiting"

    await fake.wait_for(lambda f: "run_retry" in str([c.args for c in f.calls]), timeout=20)
    assert await stopped()
    refused = await bot.ask("resolve RB-1 fixed by hand", user=DECLARER, channel=CHANNEL)
    assert refused["text"] == (
        ":warning: Only the runbook's approvers may resolve RB-1 while its rollback is stopped "
        f"(that ends the run): <@{THIRD}>. Nothing changed."
    )
    assert (await fetch(start_bot.dsn, "select state from incidents"))[0][0] == "rollback_stopped"
    assert await stopped()
    refused = await bot.ask("cancel RB-1", user=DECLARER, channel=CHANNEL)
    assert (
        "Only the runbook's approvers may cancel RB-1 while its rollback is stopped"
        in (refused["text"])
    )
    assert await stopped()
    done = await bot.ask("resolve RB-1 fixed by hand", user=THIRD, channel=CHANNEL)
    assert done["text"] == "RB-1 is resolved."
    assert (await fetch(start_bot.dsn, "select state from runs"))[0][0] == "aborted"


async def test_a_stale_approve_click_after_a_rejection_says_the_request_is_rejected(
    start_bot, fake
):
    bot = await start_bot()
    await bot.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    old = request_message(fake)  # as a client that hasn't refreshed still shows it
    assert "Rejected" in await press(bot, fake, THIRD, old, action="rollback_reject")
    stale = await press(bot, fake, FOURTH, old)
    assert stale == f":warning: This request was already rejected by <@{THIRD}>; nothing changed."
    await bot.ask("escalate RB-1 critical", user=ESCALATOR, channel=CHANNEL)
    await wait_request(fake, 2)
    superseded = await press(bot, fake, FOURTH, old)
    assert "already rejected" in superseded and "A newer request is waiting" in superseded
    rows = await fetch(start_bot.dsn, "select state from approvals order by id")
    assert [r["state"] for r in rows] == ["rejected", "pending"]
    assert await fetch(start_bot.dsn, "select * from approval_votes") == []
    assert await fetch(start_bot.dsn, "select * from runs") == []
    parts = await fetch(start_bot.dsn, "select part from incident_requesters where user_id = $1",
                        ESCALATOR)  # fmt: skip
    assert [r["part"] for r in parts] == ["asked_again"]


async def test_an_acknowledged_resolve_survives_sigkill_right_after_the_ack(start_bot, fake):
    bot = await start_bot(high_after="3s")
    await bot.ask("declare high database control incident", user=DECLARER, channel=CHANNEL)
    await bot.ask("declare high database to be resolved", user=DECLARER, channel=CHANNEL)
    status, reply = await bot.command(
        "resolve RB-2 fixed", user=DECLARER, channel=CHANNEL, response_url=fake.response_url()
    )
    await bot.stop(signal.SIGKILL)  # the moment the HTTP response arrived
    assert status == 200
    from tests.e2e.harness import ack_body

    assert ack_body(reply)["text"] == "RB-2 is resolved."
    await start_bot(rewrite=False, high_after="3s")
    # RB-1's identical deadline fires after the restart: RB-2's would have fired by then too.
    await fake.wait_for(
        lambda f: [
            c for c in f.calls_to("chat.postMessage") if "Rollback requested for RB-1" in
            text_of(c.args)
        ],
        timeout=30,
    )  # fmt: skip
    incident = await fetch(start_bot.dsn, "select state from incidents where id = 2")
    assert incident[0]["state"] == "resolved"
    deadline = await fetch(
        start_bot.dsn, "select fired_at, cancelled_at from deadlines where incident_id = 2"
    )
    assert deadline[0]["fired_at"] is None and deadline[0]["cancelled_at"] is not None
    assert await fetch(start_bot.dsn, "select * from approvals where incident_id = 2") == []


async def test_approve_and_reject_pressed_from_another_channel_change_nothing(start_bot, fake):
    bot = await start_bot()
    await bot.ask("declare critical database broken", user=DECLARER, channel=CHANNEL)
    await wait_request(fake)
    message = request_message(fake)
    value = next(
        e["value"] for b in message["blocks"] for e in b.get("elements") or [] if e.get("value")
    )
    for action in ("rollback_approve", "rollback_reject"):
        url = fake.response_url()
        await bot.click(
            user=THIRD, action_id=action, value=value, channel=ELSEWHERE,
            message_ts=message["ts"], response_url=url,
        )  # fmt: skip
        answer = (await fake.wait_for(lambda f, u=url: f.responses_to(u)))[0].body["text"]
        assert f"RB-1 belongs to <#{CHANNEL}>" in answer and "Nothing changed" in answer
    assert [r["state"] for r in await fetch(start_bot.dsn, "select state from approvals")] == [
        "pending"
    ]
    assert await fetch(start_bot.dsn, "select * from approval_votes") == []
    assert await fetch(start_bot.dsn, "select * from runs") == []


async def test_post_notice_pressed_from_another_channel_posts_nothing(start_bot, fake, tmp_path):
    from tests.e2e import comms_support as comms

    comms.write_comms_runbook(tmp_path)
    bot = await start_bot(rewrite=False)
    await comms.roll_back(bot, fake, start_bot.dsn, summary="migration broke")
    await fake.wait_for(lambda f: all(comms.posts_to(f, c) for c in comms.NOTICE_CHANNELS))
    preview = await comms.answer(fake, await comms.command(bot, fake, "notice RB-1"))
    [action] = [b for b in preview["blocks"] if b["type"] == "actions"]
    notices = await fetch(start_bot.dsn, "select count(*) from events where kind = 'notice_posted'")
    # Only what reaches the notice channels: the rollback's own thread keeps getting edits.
    to_notices = (
        "select count(*) from outbox o join messages m on m.key = o.message_key"
        " where m.channel = any($1::text[])"
    )
    owed = await fetch(start_bot.dsn, to_notices, list(comms.NOTICE_CHANNELS))
    url = fake.response_url()
    await bot.click(
        user=comms.APPROVER, action_id="notice_post", value=action["elements"][0]["value"],
        channel=ELSEWHERE, message_ts="1.0", response_url=url,
    )  # fmt: skip
    answer = (await fake.wait_for(lambda f: f.responses_to(url)))[0].body["text"]
    assert f"RB-1 belongs to <#{comms.CHANNEL}>" in answer
    after = await fetch(start_bot.dsn, "select count(*) from events where kind = 'notice_posted'")
    assert after == notices
    assert await fetch(start_bot.dsn, to_notices, list(comms.NOTICE_CHANNELS)) == owed
