"""One operation at a time per project, runs stopped before their first step, and buttons
that act only in the state they were offered for (issue 12, paths 3, 4, 6 and 7)."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap

from tests.e2e.harness import ack_body, fetch, outcome, text_of
from tests.e2e.test_runs import APPROVER, CHANNEL, DECLARER, buttons, click

SCENARIOS = textwrap.dedent("""
    [backup]
      [[backup.step]]
      name = "Dump"
      run = "test -f dump_fails && exit 3; truncate -s ${DUMP_SIZE:-1k} {{ artifact }}"
      artifact = { name = "dump", path = "dump_{{ ts }}.bin" }

    [[scenario]]
    key = "restore"
    title = "Restores the database"
    trigger = "test"
      [[scenario.step]]
      name = "Restore"
      run = '''
      echo start-{{ incident.id }} >> ops.log; sleep 2
      echo end-{{ incident.id }} >> ops.log; test -e {{ backup.dump }}'''

    [[scenario]]
    key = "slow"
    title = "A slow step"
    trigger = "test"
      [[scenario.step]]
      name = "Slow"
      run = "echo slow >> ran.log; sleep 6"
      [[scenario.step]]
      name = "After"
      run = "echo after >> ran.log"
""")


async def start(start_bot, tmp_path, **env):
    return await start_bot(scenarios=SCENARIOS, workdir=tmp_path, env=env or None)


async def wait_rows(dsn, query, *args, check=bool, timeout=60.0):
    """Poll a query until `check(rows)`; the rows."""
    for _ in range(int(timeout * 10)):
        rows = await fetch(dsn, query, *args)
        if check(rows):
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting on {query!r}: {rows}")


async def answer(bot, fake, text: str, user: str = DECLARER) -> str:
    """The command's answer: its acknowledgement (acknowledged means done)."""
    url = fake.response_url()
    status, reply = await bot.command(text, user=user, channel=CHANNEL, response_url=url)
    assert status == 200, reply
    return (await outcome(fake, ack_body(reply), url))["text"]


async def backup(bot, fake, dsn) -> int:
    assert "Backup started" in await answer(bot, fake, "backup")
    rows = await wait_rows(
        dsn, "select id, state from runs where kind = 'backup' order by id desc limit 1",
        check=lambda r: r and r[0]["state"] not in ("queued", "running"),
    )  # fmt: skip
    return rows[0]["id"]


def incident_thread(fake, dsn_rows, incident_id: int) -> str:
    """Everything visible in one incident's thread (its root's ts is in the messages table)."""
    ts = {r["key"]: r["ts"] for r in dsn_rows}[f"RB-{incident_id}/root"]
    return "\n".join(text_of(m) for m in fake.thread(CHANNEL, ts))


async def click_value(bot, fake, user, action_id, value, ts="1.1") -> str:
    url = fake.response_url()
    await bot.click(
        user=user, action_id=action_id, value=value, channel=CHANNEL, message_ts=ts,
        response_url=url,
    )  # fmt: skip
    return (await fake.wait_for(lambda f: f.responses_to(url), timeout=20))[0].body["text"]


async def test_two_rollbacks_approved_at_once_on_two_processes_run_one_after_the_other(
    start_bot, fake, tmp_path
):
    first = await start(start_bot, tmp_path)
    second = await start_bot(rewrite=False)
    dsn = start_bot.dsn
    await backup(first, fake, dsn)
    for n in (1, 2):
        assert f"Declared RB-{n}" in await answer(first, fake, "declare critical restore broke")
    approvals = await wait_rows(
        dsn, "select id, incident_id from approvals order by id", check=lambda r: len(r) == 2
    )
    await fake.wait_for(lambda f: len(buttons(f, "rollback_approve")) == 2, timeout=20)
    urls = await asyncio.gather(
        *(
            click_value(bot, fake, APPROVER, "rollback_approve", str(a["id"]))
            for bot, a in zip((first, second), approvals, strict=True)
        )
    )
    assert all("Approved" in u for u in urls), urls
    runs = await wait_rows(
        dsn, "select id, incident_id, state, waits_for from runs where kind = 'rollback'"
        " order by id", check=lambda r: len(r) == 2 and all(x["state"] == "succeeded" for x in r),
    )  # fmt: skip
    # The steps of the two never overlapped: each restore ended before the other started.
    lines = (tmp_path / "ops.log").read_text().split()
    assert len(lines) == 4 and lines[0].split("-")[1] == lines[1].split("-")[1], lines
    assert [line.split("-")[0] for line in lines] == ["start", "end", "start", "end"], lines
    steps = await fetch(dsn, "select run_id, started_at, ended_at from step_results"
                        " where run_id = any($1::bigint[]) order by started_at",
                        [r["id"] for r in runs])  # fmt: skip
    assert steps[0]["ended_at"] <= steps[1]["started_at"]
    # The later one was held behind the earlier one, and its thread said which.
    held = [r for r in runs if r["waits_for"] is not None]
    assert len(held) == 1
    ahead = next(r for r in runs if r["id"] == held[0]["waits_for"])
    keys = await fetch(dsn, "select key, ts from messages where key like 'RB-%/root'")
    await fake.wait_for(
        lambda f: "waits behind it" in incident_thread(f, keys, held[0]["incident_id"])
    )
    said = incident_thread(fake, keys, held[0]["incident_id"])
    assert f"RB-{ahead['incident_id']}'s rollback (run {ahead['id']}" in said
    assert f"run {held[0]['id']}" in said
    assert "The project is free" in said
    assert "waits behind it" not in incident_thread(fake, keys, ahead["incident_id"])


async def test_a_backup_asked_for_during_a_rollback_waits_for_it(start_bot, fake, tmp_path):
    bot = await start(start_bot, tmp_path)
    dsn = start_bot.dsn
    await backup(bot, fake, dsn)
    await answer(bot, fake, "declare critical slow broke")
    await click(bot, fake, APPROVER, "rollback_approve")
    await wait_rows(dsn, "select 1 from runs where kind = 'rollback' and state = 'running'")
    text = await answer(bot, fake, "backup")
    assert "Backup queued" in text and "another operation is active" in text, text
    held = await fetch(dsn, "select id, state, waits_for from runs where kind = 'backup'"
                       " order by id desc limit 1")  # fmt: skip
    assert held[0]["state"] == "held"
    await fake.wait_for(lambda f: any(
        "RB-1's rollback (run" in text_of(c.args) and "waits behind it" in text_of(c.args)
        for c in f.calls_to("chat.postMessage")
    ))  # fmt: skip
    rows = await wait_rows(
        dsn, "select r.state, b.ended_at as backup_started_after, r.started_at from runs r,"
        " runs b where r.id = $1 and b.id = $2", held[0]["id"], held[0]["waits_for"],
        check=lambda r: r[0]["state"] == "succeeded",
    )  # fmt: skip
    assert rows[0]["started_at"] >= rows[0]["backup_started_after"]


async def test_death_before_the_first_step_is_reported_with_resume_and_abort_and_can_close(
    start_bot, fake, tmp_path
):
    first = await start(start_bot, tmp_path, DUMP_SIZE="512M", ROLLBACK_RUN_LEASE="2")
    dsn = start_bot.dsn
    await backup(first, fake, dsn)
    await answer(first, fake, "declare critical restore broke")
    await click(first, fake, APPROVER, "rollback_approve")
    await wait_rows(dsn, "select 1 from runs where kind = 'rollback' and state = 'running'")
    dump = next(tmp_path.glob("dump_*.bin"))
    fds = f"/proc/{first.process.pid}/fd"
    for _ in range(20000):  # SIGKILL while the executor hashes the dump, before step 1
        if any(os.path.realpath(f"{fds}/{fd}") == str(dump) for fd in os.listdir(fds)):
            break
        await asyncio.sleep(0.002)
    else:
        raise AssertionError("the bot never opened the dump to check it")
    await first.stop(signal.SIGKILL)
    assert await fetch(dsn, "select * from step_results where run_id in"
                       " (select id from runs where kind = 'rollback')") == []  # fmt: skip
    # The default lease: the first bot's short one (the stored lease_until) is what makes
    # the takeover quick; a short one here could lapse on a busy machine mid-resume.
    second = await start_bot(rewrite=False)
    await fake.wait_for(lambda f: buttons(f, "run_resume"), timeout=40)
    assert buttons(fake, "run_abort")
    keys = await fetch(dsn, "select key, ts from messages where key like 'RB-%/root'")
    assert "stopped before its first step; Resume starts it" in incident_thread(fake, keys, 1)
    state = await fetch(dsn, "select state from incidents where id = 1")
    assert state[0]["state"] == "rollback_stopped"
    text = await answer(second, fake, "resolve RB-1 restored by hand", user=APPROVER)
    assert "RB-1 is resolved" in text, text
    rows = await fetch(dsn, "select i.state, r.state as run from incidents i join runs r"
                       " on r.incident_id = i.id")  # fmt: skip
    assert tuple(rows[0]) == ("resolved", "aborted")
    assert not (tmp_path / "ops.log").exists()  # no step ever ran


async def test_a_resolved_incident_stops_its_claimed_run_before_the_first_step(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path, DUMP_SIZE="512M")
    dsn = start_bot.dsn
    await backup(bot, fake, dsn)
    await answer(bot, fake, "declare critical restore broke")
    await click(bot, fake, APPROVER, "rollback_approve")
    await wait_rows(dsn, "select 1 from runs where kind = 'rollback' and state = 'running'")
    text = await answer(bot, fake, "resolve RB-1 false alarm", user=APPROVER)
    if "is resolved" not in text:  # the run had already started its first step: not this path
        return
    rows = await wait_rows(dsn, "select state from runs where kind = 'rollback'",
                           check=lambda r: r[0]["state"] != "running")  # fmt: skip
    assert rows[0]["state"] in ("cancelled", "aborted")
    assert not (tmp_path / "ops.log").exists()


async def test_a_stale_retry_or_skip_on_an_interrupted_run_is_refused_with_its_state(
    start_bot, fake, tmp_path
):
    first = await start(start_bot, tmp_path, ROLLBACK_RUN_LEASE="2")
    dsn = start_bot.dsn
    await answer(first, fake, "declare critical slow broke")
    await click(first, fake, APPROVER, "rollback_approve")
    await fake.wait_for(lambda f: (tmp_path / "ran.log").exists(), timeout=20)
    await first.stop(signal.SIGKILL)
    # The default lease: the first bot's short one (the stored lease_until) is what makes
    # the takeover quick; a short one here could lapse on a busy machine mid-resume.
    second = await start_bot(rewrite=False)
    found = await fake.wait_for(lambda f: buttons(f, "run_resume"), timeout=40)
    value, ts = found[-1]
    for action in ("run_retry", "run_skip"):  # from an older message, same run and step
        text = await click_value(second, fake, APPROVER, action, value, ts)
        assert "doesn't apply now" in text and "only Resume or Abort apply" in text, text
    rows = await fetch(dsn, "select state, next_step from runs")
    assert tuple(rows[0]) == ("interrupted", 0)
    kinds = [r["kind"] for r in await fetch(dsn, "select kind from events where run_id = 1")]
    assert "run_retry" not in kinds and "run_skip" not in kinds
    assert "Resume" in await click_value(second, fake, APPROVER, "run_resume", value, ts)
    await wait_rows(dsn, "select 1 from runs where state = 'running'")
    text = await click_value(second, fake, APPROVER, "run_resume", value, ts)  # a double click
    assert "doesn't apply now" in text and "This run is" in text, text


async def test_a_failed_backup_artifact_step_offers_no_skip_and_the_good_backup_stays(
    start_bot, fake, tmp_path
):
    bot = await start(start_bot, tmp_path)
    dsn = start_bot.dsn
    good = await backup(bot, fake, dsn)
    (tmp_path / "dump_fails").write_text("")
    failed = await backup(bot, fake, dsn)
    assert (await fetch(dsn, "select state from runs where id = $1", failed))[0][0] == "waiting"
    found = await fake.wait_for(lambda f: buttons(f, "run_retry"))
    assert buttons(fake, "run_abort") and not buttons(fake, "run_skip")
    value, ts = found[-1]
    text = await click_value(bot, fake, APPROVER, "run_skip", value, ts)  # a forged Skip
    assert "can't be skipped" in text, text
    rows = await fetch(dsn, "select state, next_step from runs where id = $1", failed)
    assert tuple(rows[0]) == ("waiting", 0)
    assert "Aborted" in await click_value(bot, fake, APPROVER, "run_abort", value, ts)
    latest = await fetch(dsn, "select id from runs where kind = 'backup' and state = 'succeeded'")
    assert [r["id"] for r in latest] == [good]
    assert await fetch(dsn, "select 1 from artifacts where run_id = $1", failed) == []
