"""Declaring incidents and the two-person approval, through signed requests to a real bot."""

from __future__ import annotations

import asyncio

from tests.e2e.harness import fetch, posts_in, text_of

CHANNEL = "CINCIDENT1"
DECLARER, SECOND, THIRD = "UDECLARE1", "USECOND01", "UTHIRD001"


async def declare_critical(
    bot, fake, *, text="declare critical database migration corrupted orders"
):
    url = fake.response_url()
    status, _ = await bot.command(text, user=DECLARER, channel=CHANNEL, response_url=url)
    assert status == 200

    def requests(f):
        return [p for p in posts_in(f, CHANNEL) if "Rollback requested" in p.get("text", "")]

    return (await fake.wait_for(requests))[0]


def approval_button(fake, action_id="rollback_approve"):
    """(value, message ts) of the approval request's button, as Slack shows it."""
    for message in fake.thread(CHANNEL, fake.messages(CHANNEL)[0]["ts"]):
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == action_id:
                    return element["value"], message["ts"]
    raise AssertionError("no approval button in the thread")


async def click(bot, fake, user, action_id="rollback_approve"):
    value, ts = approval_button(fake, action_id)
    url = fake.response_url()
    status, _ = await bot.click(
        user=user,
        action_id=action_id,
        value=value,
        channel=CHANNEL,
        message_ts=ts,
        response_url=url,
    )
    assert status == 200
    return url


async def test_critical_posts_approval_request_in_the_thread_and_pages_contacts(start_bot, fake):
    bot = await start_bot()
    request = await declare_critical(bot, fake)
    root = fake.messages(CHANNEL)[0]
    assert "RB-1" in text_of(root) and "CRITICAL" in text_of(root)
    assert request["thread_ts"] == root["ts"]
    body = text_of(request)
    assert "<@UDBA00001>" in body and "<@UONCALL01>" in body
    assert "1. Stop services" in body and "2. Restore database" in body
    actions = next(b for b in request["blocks"] if b["type"] == "actions")["elements"]
    assert [a["action_id"] for a in actions] == ["rollback_approve", "rollback_reject"]
    assert all("confirm" in a for a in actions)
    rows = await fetch(start_bot.dsn, "select state, severity, scenario from incidents")
    assert [tuple(r) for r in rows] == [("awaiting_approval", "critical", "database")]
    kinds = [r["kind"] for r in await fetch(start_bot.dsn, "select kind from events order by id")]
    assert kinds == ["declare", "request_approval"]


async def test_declarer_cannot_approve_own_rollback(start_bot, fake):
    bot = await start_bot()
    await declare_critical(bot, fake)
    url = await click(bot, fake, DECLARER)
    answer = await fake.wait_for(lambda f: f.responses_to(url))
    assert "second person" in answer[0].body["text"]
    assert answer[0].body.get("response_type") == "ephemeral"
    rows = await fetch(start_bot.dsn, "select state from approvals")
    assert [r["state"] for r in rows] == ["pending"]
    assert await fetch(start_bot.dsn, "select * from runs") == []


async def test_someone_not_among_approvers_is_refused_and_a_group_member_may_approve(
    start_bot, fake
):
    fake.usergroups["SOPS00001"] = [SECOND]
    bot = await start_bot(approvers=("UAPPROVE1", "SOPS00001"))
    await declare_critical(bot, fake)
    refused = await click(bot, fake, THIRD)
    answer = await fake.wait_for(lambda f: f.responses_to(refused))
    assert "Only the runbook's approvers" in answer[0].body["text"]
    assert [r["state"] for r in await fetch(start_bot.dsn, "select state from approvals")] == [
        "pending"
    ]
    accepted = await click(bot, fake, SECOND)
    await fake.wait_for(lambda f: f.responses_to(accepted))
    rows = await fetch(start_bot.dsn, "select state, decided_by from approvals")
    assert [tuple(r) for r in rows] == [("approved", SECOND)]


async def test_approval_replaces_buttons_with_who_decided_and_queues_one_run(start_bot, fake):
    bot = await start_bot()
    await declare_critical(bot, fake)
    await click(bot, fake, SECOND)
    root_ts = fake.messages(CHANNEL)[0]["ts"]

    def decided(f):
        thread = f.thread(CHANNEL, root_ts)
        return [m for m in thread if "Approved by" in text_of(m)]

    message = (await fake.wait_for(decided))[0]
    assert "<@USECOND01>" in text_of(message)
    assert not [b for b in message["blocks"] if b["type"] == "actions"]
    runs = await fetch(start_bot.dsn, "select kind, scenario, requested_by, total_steps from runs")
    assert [tuple(r) for r in runs] == [("rollback", "database", SECOND, 2)]
    state = await fetch(start_bot.dsn, "select state from incidents")
    assert state[0]["state"] in ("rollback_queued", "rolling_back", "rolled_back")


async def test_double_clicks_on_two_processes_give_one_approval_and_one_run(start_bot, fake):
    first = await start_bot()
    second = await start_bot(rewrite=False)
    await declare_critical(first, fake)
    value, ts = approval_button(fake)
    clicks = [
        bot.click(
            user=SECOND,
            action_id="rollback_approve",
            value=value,
            channel=CHANNEL,
            message_ts=ts,
            response_url=fake.response_url(),
        )
        for bot in (first, second, first, second, first, second)
    ]
    statuses = await asyncio.gather(*clicks)
    assert {status for status, _ in statuses} == {200}
    answers = await fake.wait_for(lambda f: len(f.responses) >= 6 and f.responses, timeout=20)
    assert len(await fetch(start_bot.dsn, "select * from runs")) == 1
    approvals = await fetch(start_bot.dsn, "select kind from events where kind = 'approve'")
    assert len(approvals) == 1
    already = [r for r in answers if "already approved" in r.body.get("text", "")]
    assert len(already) == 5


async def test_rejection_closes_the_request_and_keeps_the_incident_open(start_bot, fake):
    bot = await start_bot()
    await declare_critical(bot, fake)
    await click(bot, fake, SECOND, action_id="rollback_reject")
    root_ts = fake.messages(CHANNEL)[0]["ts"]
    await fake.wait_for(
        lambda f: [m for m in f.thread(CHANNEL, root_ts) if "Rejected by" in text_of(m)]
    )
    rows = await fetch(
        start_bot.dsn,
        "select i.state, a.state as a from incidents i join approvals a on a.incident_id = i.id",
    )
    assert [tuple(r) for r in rows] == [("open", "rejected")]
    assert await fetch(start_bot.dsn, "select * from runs") == []


async def test_an_expired_request_cannot_be_used(start_bot, fake):
    bot = await start_bot(expires="1s")
    await declare_critical(bot, fake)
    value, ts = approval_button(fake)  # as a stale client would still show it
    root_ts = fake.messages(CHANNEL)[0]["ts"]
    await fake.wait_for(
        lambda f: [m for m in f.thread(CHANNEL, root_ts) if "Expired unused" in text_of(m)],
        timeout=15,
    )
    url = fake.response_url()
    await bot.click(
        user=SECOND,
        action_id="rollback_approve",
        value=value,
        channel=CHANNEL,
        message_ts=ts,
        response_url=url,
    )
    answer = await fake.wait_for(lambda f: f.responses_to(url))
    assert "has expired, so nothing was started" in answer[0].body["text"]
    rows = await fetch(start_bot.dsn, "select state from approvals")
    assert [r["state"] for r in rows] == ["expired"]
    assert await fetch(start_bot.dsn, "select * from runs") == []
