"""Adversarial paths against the safety rules (issues 12 and 13): another channel, another
person, forged payloads. Each test is one way an operator under pressure could break a rule."""

from __future__ import annotations

from tests.e2e.harness import ack_body, fetch, outcome
from tests.e2e.test_runs import (
    APPROVER,
    CHANNEL,
    DECLARER,
    SCENARIOS,
    buttons,
    run_state,
    start,
    wait_state,
)

ELSEWHERE, OUTSIDER = "COTHER001", "UOUTSIDE1"


async def press_in(bot, fake, user: str, action_id: str, value: str, channel: str) -> str:
    """`user` sends a click of `action_id` with `value` from `channel`; the private answer."""
    url = fake.response_url()
    status, _ = await bot.click(
        user=user, action_id=action_id, value=value, channel=channel, message_ts="1.1",
        response_url=url,
    )  # fmt: skip
    assert status == 200
    return (await fake.wait_for(lambda f: f.responses_to(url), timeout=20))[0].body["text"]


async def said_to(bot, fake, text: str, user: str, channel: str) -> str:
    """The answer `user` gets to `/rollback <text>` in `channel` (the ack, else the response)."""
    url = fake.response_url()
    status, reply = await bot.command(text, user=user, channel=channel, response_url=url)
    assert status == 200, reply
    return (await outcome(fake, ack_body(reply), url))["text"]


async def stopped_run(bot, fake, dsn) -> None:
    """RB-1's rollback stopped at its failing step 2 (waiting for Retry / Skip / Abort)."""
    await bot.ask("declare critical flaky things broke", user=DECLARER, channel=CHANNEL)
    found = await fake.wait_for(lambda f: buttons(f, "rollback_approve"), timeout=20)
    assert "Approved" in await press_in(
        bot, fake, APPROVER, "rollback_approve", found[-1][0], CHANNEL
    )
    await wait_state(dsn, fake, "waiting")
    await fake.wait_for(lambda f: buttons(f, "run_retry"), timeout=20)  # the outbox posts them


async def test_run_buttons_from_another_channel_change_nothing(start_bot, fake, tmp_path):
    """Retry, Skip, Abort and Cancel run are changes to the incident: only from its channel."""
    bot = await start(start_bot, tmp_path)
    dsn = start_bot.dsn
    await stopped_run(bot, fake, dsn)
    events = await fetch(dsn, "select count(*) from events")
    for action in ("run_abort", "run_skip", "run_retry"):
        value = buttons(fake, action)[-1][0]
        said = await press_in(bot, fake, APPROVER, action, value, ELSEWHERE)
        assert f"RB-1 belongs to <#{CHANNEL}>" in said and "Nothing changed" in said, said
        assert await run_state(dsn) == "waiting"
    run_id = (await fetch(dsn, "select id from runs where kind = 'rollback'"))[0]["id"]
    said = await press_in(bot, fake, DECLARER, "run_cancel", str(run_id), ELSEWHERE)
    assert f"RB-1 belongs to <#{CHANNEL}>" in said, said
    assert await fetch(dsn, "select count(*) from events") == events
    assert (tmp_path / "ran.log").read_text() == "first\n"


async def test_postmortem_from_another_channel_changes_nothing(start_bot, fake, tmp_path):
    """`postmortem RB-ID [done]` creates or closes the incident's post-mortem: its channel only."""
    bot = await start(start_bot, tmp_path)
    dsn = start_bot.dsn
    await bot.ask("declare low secret merger numbers", user=DECLARER, channel=CHANNEL)
    await bot.ask("resolve RB-1", user=DECLARER, channel=CHANNEL)
    assert (await fetch(dsn, "select state from incidents"))[0]["state"] == "resolved"
    for text in ("postmortem RB-1", "postmortem RB-1 done"):
        said = await said_to(bot, fake, text, OUTSIDER, ELSEWHERE)
        assert f"RB-1 belongs to <#{CHANNEL}>" in said, (text, said)
        assert "secret merger" not in said
    assert await fetch(dsn, "select * from postmortems") == []
    done = await fetch(dsn, "select postmortem_done_by from incidents")
    assert done[0]["postmortem_done_by"] is None
    # Nothing in the audit trail is the outsider's (the bot's own after-resolve work may add
    # rows meanwhile, so count by actor, not in all).
    assert await fetch(dsn, "select * from events where actor = $1", OUTSIDER) == []
    said = await press_in(bot, fake, OUTSIDER, "postmortem_done", "1", ELSEWHERE)
    assert f"RB-1 belongs to <#{CHANNEL}>" in said, said
    done = await fetch(dsn, "select postmortem_done_by from incidents")
    assert done[0]["postmortem_done_by"] is None
    assert await fetch(dsn, "select * from events where actor = $1", OUTSIDER) == []


async def test_a_forged_checklist_tick_from_another_channel_records_nothing(
    start_bot, fake, tmp_path
):
    """A tick is an entry in the incident's audit trail, and its answer shows the incident's
    checklist: a click from another channel must do neither."""
    checklists = '\n[checklists]\npost = ["Stakeholders notified"]\n'
    bot = await start_bot(scenarios=SCENARIOS + checklists, workdir=tmp_path)
    dsn = start_bot.dsn
    await bot.ask("declare low secret merger numbers", user=DECLARER, channel=CHANNEL)
    said = await press_in(bot, fake, OUTSIDER, "checklist_tick", "1:post:0:all", ELSEWHERE)
    assert f"RB-1 belongs to <#{CHANNEL}>" in said, said
    ticks = await fetch(dsn, "select * from events where kind = 'checklist_tick'")
    assert ticks == []


async def test_a_user_group_approver_may_decide_on_a_failed_backup(start_bot, fake, tmp_path):
    """`approvers` lists user groups too: a member of one is an allowed approver for a backup
    run's Retry / Abort as for everything else (it was compared with the raw list)."""
    from tests.e2e.test_one_operation import SCENARIOS as BACKUP_SCENARIOS

    fake.usergroups["SOPS00001"] = [APPROVER]
    bot = await start_bot(scenarios=BACKUP_SCENARIOS, workdir=tmp_path, approvers=("SOPS00001",))
    dsn = start_bot.dsn
    (tmp_path / "dump_fails").write_text("")
    assert "Backup started" in await said_to(bot, fake, "backup", DECLARER, CHANNEL)
    found = await fake.wait_for(lambda f: buttons(f, "run_abort"), timeout=30)
    said = await press_in(bot, fake, OUTSIDER, "run_abort", found[-1][0], CHANNEL)
    assert "Only the runbook's approvers" in said, said
    said = await press_in(bot, fake, APPROVER, "run_abort", found[-1][0], CHANNEL)
    assert said == "Aborted. No further step runs.", said
    runs = await fetch(dsn, "select state from runs where kind = 'backup'")
    assert [r["state"] for r in runs] == ["aborted"]


async def test_a_held_rollback_whose_incident_is_resolved_never_runs(start_bot, fake, tmp_path):
    """RB-2's rollback approved while RB-1's runs is held; resolving RB-2 ends it for good:
    when RB-1's ends, the project's next operation is not RB-2's closed one."""
    from tests.e2e.test_one_operation import SCENARIOS as OP_SCENARIOS
    from tests.e2e.test_one_operation import backup, wait_rows

    bot = await start_bot(scenarios=OP_SCENARIOS, workdir=tmp_path)
    dsn = start_bot.dsn
    await backup(bot, fake, dsn)
    await bot.ask("declare critical slow first", user=DECLARER, channel=CHANNEL)
    await bot.ask("declare critical restore second", user=DECLARER, channel=CHANNEL)
    approvals = await wait_rows(
        dsn, "select id from approvals order by id", check=lambda r: len(r) == 2
    )
    for approval in approvals:
        said = await press_in(bot, fake, APPROVER, "rollback_approve", str(approval["id"]), CHANNEL)
        assert "Approved" in said, said
    held = await fetch(dsn, "select id, state from runs where incident_id = 2")
    assert held[0]["state"] == "held", held
    said = await said_to(bot, fake, "resolve RB-2 fixed by hand", DECLARER, CHANNEL)
    assert "RB-2" in said and "resolved" in said, said
    assert (await fetch(dsn, "select state from runs where incident_id = 2"))[0]["state"] in (
        "aborted", "cancelled"
    )  # fmt: skip
    await wait_rows(dsn, "select 1 from runs where incident_id = 1 and state = 'succeeded'")
    await bot.ask("backup", user=DECLARER, channel=CHANNEL)  # the project is free again
    await wait_rows(
        dsn, "select 1 from runs where kind = 'backup' and state = 'succeeded'",
        check=lambda r: len(r) == 2,
    )  # fmt: skip
    assert not (tmp_path / "ops.log").exists()  # RB-2's restore never ran a step
    steps = await fetch(dsn, "select * from step_results where run_id = $1", held[0]["id"])
    assert steps == []
