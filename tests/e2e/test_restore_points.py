"""Restore points: pinned on the request, labelled when taken during an incident, chosen by an
approver, listed; and every bad choice refused without changing anything."""

from __future__ import annotations

from tests.e2e.harness import ack_body, fetch, outcome, text_of
from tests.e2e.test_sandbox_rollback import CHANNEL, DECLARER
from tests.e2e.truth_support import (
    add_orders,
    approve,
    backup,
    choose_backup,
    declare,
    drop_kept,
    ended_rollback,
    message_at,
    next_second,
    order_count,
    request_message,
    response,
    start_keeping,
    wait_request,
)


async def backup_ids(dsn) -> list[int]:
    rows = await fetch(dsn, "select id from runs where kind = 'backup' order by id")
    return [r["id"] for r in rows]


async def command_answer(bot, fake, text: str, user: str = DECLARER) -> str:
    """The command's answer: its acknowledgement (or, when still working, the response URL)."""
    url = fake.response_url()
    status, reply = await bot.command(text, user=user, channel=CHANNEL, response_url=url)
    assert status == 200, reply
    return (await outcome(fake, ack_body(reply), url))["text"]


async def test_a_backup_taken_during_the_incident_is_labelled_and_not_restored_unless_chosen(
    start_bot, fake, sandbox
):
    try:
        bot = await start_keeping(start_bot, sandbox)
        await backup(bot, fake, start_bot.dsn)
        clean = order_count(sandbox)
        add_orders(sandbox, 4)  # the failed state
        await declare(bot, fake)
        request = await wait_request(fake)
        [good] = await backup_ids(start_bot.dsn)
        assert f"*Restore point:* backup #{good}, taken" in text_of(request)
        assert "(the default)" in text_of(request)

        await next_second(start_bot.dsn)
        await backup(bot, fake, start_bot.dsn)  # someone backs up the broken state
        bad = (await backup_ids(start_bot.dsn))[-1]
        [row] = await fetch(start_bot.dsn, "select open_incidents from runs where id = $1", bad)
        assert row["open_incidents"] == [1]
        listing = await command_answer(bot, fake, "backups")
        assert f"backup #{bad}, taken" in listing and "taken while RB-1 was open" in listing
        [bad_line] = [line for line in listing.splitlines() if f"backup #{bad}," in line]
        [good_line] = [line for line in listing.splitlines() if f"backup #{good}," in line]
        assert "*completed*; files intact (size and mtime)" in good_line
        assert "the default restore point" in good_line and "default" not in bad_line
        assert "RB-1" not in good_line

        await approve(bot, fake, request_message(fake))
        run = await ended_rollback(start_bot.dsn)
        assert run["backup_run_id"] == good and run["state"] == "succeeded"
        assert order_count(sandbox) == clean  # the pre-integration backup, not the broken one
        checks = await fetch(start_bot.dsn, "select name, passed, detail from check_results")
        assert run["verification_passed"] is True, [tuple(c) for c in checks]
        dump = await fetch(
            start_bot.dsn, "select path, workdir from artifacts where run_id = $1 and name = $2",
            bad, "db_dump",
        )  # fmt: skip
        with open(f"{dump[0]['workdir']}/{dump[0]['path']}", "a") as handle:
            handle.write("-- changed\n")
        changed = await command_answer(bot, fake, "backups")
        [bad_line] = [line for line in changed.splitlines() if f"backup #{bad}," in line]
        assert "NOT intact: db_dump changed size" in bad_line
        decided = text_of(message_at(fake, request["ts"]))
        assert f"Restore point: backup #{good}, taken" in decided and "(the default)" in decided
    finally:
        await drop_kept(sandbox)


async def test_an_approver_chooses_an_older_backup_and_exactly_that_one_is_restored(
    start_bot, fake, sandbox
):
    try:
        bot = await start_keeping(start_bot, sandbox)
        await backup(bot, fake, start_bot.dsn)
        oldest = order_count(sandbox)
        add_orders(sandbox, 5)
        await next_second(start_bot.dsn)
        await backup(bot, fake, start_bot.dsn)
        older, newer = await backup_ids(start_bot.dsn)
        add_orders(sandbox, 2)
        await declare(bot, fake)
        request = await wait_request(fake)
        assert f"*Restore point:* backup #{newer}, taken" in text_of(request)

        # Bad choices: each refused, nothing changed.
        refusals = [
            (await choose_backup(bot, fake, request, "abc"), "malformed"),
            (await choose_backup(bot, fake, request, str(older), block_id="restore-point-x"),
             "malformed"),
            (await choose_backup(bot, fake, request, "999999"), "is not a completed backup"),
            (await choose_backup(bot, fake, request, str(older), user=DECLARER),
             "a second person must approve"),
        ]  # fmt: skip
        for url, said in refusals:
            assert said in await response(fake, url)
        pinned = await fetch(start_bot.dsn, "select backup_run_id, backup_chosen_by from approvals")
        assert (pinned[0]["backup_run_id"], pinned[0]["backup_chosen_by"]) == (newer, None)

        said = await response(fake, await choose_backup(bot, fake, request, str(older)))
        assert f"now restores backup #{older}" in said
        [event] = await fetch(
            start_bot.dsn, "select actor, detail from events where kind = 'restore_point_chosen'"
        )
        assert event["actor"] == "UAPPROVE1"
        assert f'"backup_run_id": {older}' in event["detail"]
        assert f'"previous": {newer}' in event["detail"]

        def shows_choice(f):
            return "chosen by <@UAPPROVE1>" in text_of(request_message(f))

        await fake.wait_for(shows_choice, timeout=20)
        await approve(bot, fake, request_message(fake))
        run = await ended_rollback(start_bot.dsn)
        assert (run["backup_run_id"], run["state"]) == (older, "succeeded")
        assert order_count(sandbox) == oldest
        late = await response(fake, await choose_backup(bot, fake, request, str(newer)))
        assert "no longer pending" in late
        [row] = await fetch(start_bot.dsn, "select backup_run_id from approvals")
        assert row["backup_run_id"] == older
        [stored] = await fetch(start_bot.dsn, "select discarded_rows from data_comparisons")
        assert stored["discarded_rows"] == 7
    finally:
        await drop_kept(sandbox)


async def test_backups_listing_before_any_backup_and_with_extra_words(start_bot, fake, sandbox):
    bot = await start_keeping(start_bot, sandbox)
    assert "No backups yet" in await command_answer(bot, fake, "backups")
    url = fake.response_url()
    status, body = await bot.command("backups now", user=DECLARER, channel=CHANNEL,
                                     response_url=url)  # fmt: skip
    assert status == 200 and "Unexpected `now`" in body and "/rollback backups" in body
    assert await fetch(start_bot.dsn, "select 1 from runs") == []


async def test_with_only_a_backup_taken_during_an_incident_the_request_pins_none(
    start_bot, fake, tmp_path
):
    from tests.e2e import comms_support as comms

    comms.write_comms_runbook(tmp_path)
    bot = await start_bot(rewrite=False)
    dsn = start_bot.dsn
    await comms.command(bot, fake, "declare high database orders look odd")
    await comms.wait_row(dsn, "select 1 from incidents")
    await comms.command(bot, fake, "backup")
    await comms.wait_row(dsn, "select 1 from runs where kind = 'backup' and state = 'succeeded'")
    [backup] = await fetch(dsn, "select id, open_incidents from runs where kind = 'backup'")
    assert backup["open_incidents"] == [1]
    await comms.command(bot, fake, "escalate RB-1 critical database")
    [(_value, ts)] = await fake.wait_for(lambda f: comms.buttons(f, "rollback_approve"), timeout=20)
    [request] = [
        m for root in fake.messages(comms.CHANNEL) for m in fake.thread(comms.CHANNEL, root["ts"])
        if m["ts"] == ts
    ]  # fmt: skip
    said = text_of(request)
    assert "*Restore point:* none. No completed backup was taken while no incident was open" in said
    assert f"#{backup['id']} · " in said and "taken while RB-1 was open" in said
    [approval] = await fetch(dsn, "select backup_run_id from approvals")
    assert approval["backup_run_id"] is None
