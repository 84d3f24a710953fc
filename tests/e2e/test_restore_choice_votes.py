"""Choosing another restore point withdraws the approvals already given: they approved
restoring a different backup."""

from __future__ import annotations

import textwrap

from tests.e2e.harness import fetch, text_of
from tests.e2e.test_sandbox_rollback import APPROVER, CHANNEL, DECLARER, until
from tests.e2e.truth_support import (
    approve,
    backup,
    choose_backup,
    declare,
    next_second,
    request_message,
    response,
    wait_request,
)

SECOND_APPROVER = "UAPPROVE2"
SCENARIOS = textwrap.dedent("""
    [backup]
      [[backup.step]]
      name = "Keep a marker"
      run = "mkdir -p {{ backup_dir }} && date +%s%N > {{ artifact }}"
      artifact = { name = "marker", path = "{{ backup_dir }}/marker.txt" }

    [[scenario]]
    key = "database"
    title = "Database migration failure"
    trigger = "Migration fails"
      [[scenario.step]]
      name = "Restore the marker"
      run = "cat {{ backup.marker }}"
""")


async def test_choosing_another_restore_point_withdraws_the_votes_already_given(
    start_bot, fake, tmp_path
):
    bot = await start_bot(scenarios=SCENARIOS, workdir=tmp_path, approvals_required=2)
    dsn = start_bot.dsn
    older = await backup(bot, fake, dsn)
    await next_second(dsn)
    newer = await backup(bot, fake, dsn)
    await declare(bot, fake)
    request = await wait_request(fake)
    assert f"backup #{newer}" in text_of(request)

    first = await response(fake, await approve(bot, fake, request, user=APPROVER))
    assert "1 of 2 approvals" in first
    [approval] = await fetch(dsn, "select id from approvals")
    votes = "select user_id from approval_votes where approval_id = $1"
    assert [r["user_id"] for r in await fetch(dsn, votes, approval["id"])] == [APPROVER]

    chosen = await response(
        fake, await choose_backup(bot, fake, request, str(older), user=SECOND_APPROVER)
    )
    assert f"now restores backup #{older}" in chosen
    assert await fetch(dsn, votes, approval["id"]) == []  # the vote was for the newer backup
    [event] = await fetch(
        dsn, "select detail from events where kind = 'restore_point_chosen' order by id"
    )
    assert f'"votes_withdrawn": ["{APPROVER}"]' in event["detail"]

    def told(f) -> bool:
        thread = [text_of(m) for root in f.messages(CHANNEL) for m in f.thread(CHANNEL, root["ts"])]
        return any("were withdrawn" in t and f"<@{APPROVER}>" in t for t in thread)

    await fake.wait_for(told, timeout=20)
    # One more approval is not enough any more: two are needed again, for the chosen backup.
    again = await response(fake, await approve(bot, fake, request_message(fake), user=APPROVER))
    assert "1 of 2 approvals" in again
    assert await fetch(dsn, "select id from runs where kind = 'rollback'") == []
    await approve(bot, fake, request_message(fake), user=SECOND_APPROVER)

    async def restored_older():
        rows = await fetch(dsn, "select backup_run_id from runs where kind = 'rollback'")
        return rows and rows[0]["backup_run_id"]

    assert await until(restored_older, what="the rollback run") == older
    assert DECLARER not in [r["user_id"] for r in await fetch(dsn, votes, approval["id"])]
