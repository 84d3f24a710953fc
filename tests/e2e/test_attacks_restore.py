"""Adversarial paths against pinned restore points (issue 13): a stale Approve click."""

from __future__ import annotations

import copy

from tests.e2e.harness import fetch, text_of
from tests.e2e.test_restore_choice_votes import SCENARIOS, SECOND_APPROVER
from tests.e2e.test_sandbox_rollback import APPROVER
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


async def test_an_approve_click_on_the_request_as_it_was_before_another_restore_point_was_chosen(
    start_bot, fake, tmp_path
):
    bot = await start_bot(scenarios=SCENARIOS, workdir=tmp_path)
    dsn = start_bot.dsn
    older = await backup(bot, fake, dsn)
    await next_second(dsn)
    newer = await backup(bot, fake, dsn)
    await declare(bot, fake)
    request = await wait_request(fake)
    assert f"backup #{newer}" in text_of(request)
    as_seen = copy.deepcopy(request)  # what the approver's Slack shows when they click
    chosen = await response(
        fake, await choose_backup(bot, fake, request, str(older), user=SECOND_APPROVER)
    )
    assert f"now restores backup #{older}" in chosen
    said = await response(fake, await approve(bot, fake, as_seen, user=APPROVER))
    assert "Approved" not in said, said
    assert f"The restore point changed since you saw this request (backup #{newer}" in said
    assert await fetch(dsn, "select id from runs where kind = 'rollback'") == []
    assert await fetch(dsn, "select 1 from approval_votes") == []  # no vote was recorded
    # The request as it is now shows the chosen backup, and approving that works.
    await fake.wait_for(lambda f: f"backup #{older}" in text_of(request_message(f)), 20)
    approved = await response(fake, await approve(bot, fake, request_message(fake)))
    assert "Approved" in approved, approved
